package record

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/internal/observer"
)

// nodeTrack is what the recorder knows of one node's flows: the newest it
// recorded, and its recent rate (in flow time) for estimating gaps.
type nodeTrack struct {
	last        int64 // newest recorded flow, ns
	windowStart int64
	windowCount int64
	rate        float64 // matching flows per second over the last full window
	// counted is where the last gap recorded without a flow after it
	// ended (see closeGaps; for a resumed recording, the previous
	// session's, see tape.ResumePoint.Counted): the flows before it are
	// recorded or counted lost.
	counted int64
}

// openGap is a gap in a node's flows that detectGaps found (the
// recorder's gaps, by node, until their end is known): the ring no longer
// held the newest flow recorded from the node when asked. It ends
// at the first flow of the node that the new stream delivers (see
// closeGap), not at the ring's oldest flow when asked: the stream may
// have read the ring before that (and received flows the ring then
// overwrote: on a loaded machine a gap to the ring's oldest ran up to a
// third longer than the flows lost) or after (a relay that connects to
// the node later: flows overwritten meanwhile would be in no gap).
type openGap struct {
	from   int64 // the newest flow recorded, or where the new stream starts (ns)
	oldest int64 // the ring's oldest flow when asked (ns): the end if no flow comes
	// the rate of matching flows on both sides: the recorded flows'
	// recent ones and the ring's oldest
	flows, secs float64
}

const rateWindow = int64(30 * time.Second)

func (n *nodeTrack) observe(at int64) {
	if at > n.last {
		n.last = at
	}
	if n.windowStart == 0 {
		n.windowStart = at
	}
	n.windowCount++
	if span := at - n.windowStart; span >= rateWindow {
		n.rate = float64(n.windowCount) / (float64(span) / 1e9)
		n.windowStart, n.windowCount = at, 0
	}
}

// sample is the node's recent traffic: flows and the seconds they span
// (the last full window, else what there is of the current one).
func (n *nodeTrack) sample() (flows, seconds float64) {
	if n.rate > 0 {
		w := float64(rateWindow) / 1e9
		return n.rate * w, w
	}
	if span := n.last - n.windowStart; n.windowStart != 0 && span > 0 {
		return float64(n.windowCount), float64(span) / 1e9
	}
	return 0, 0
}

// detectGaps runs after a reconnect: for every node whose ring buffer no
// longer reaches back to the newest flow recorded from it, the flows in
// between were overwritten while the recorder was away. Hubble does not
// report that to a new reader, so the recorder writes it as a lost event
// (source HUBBLE_RING_BUFFER, first/last bracketing the gap), with a count
// estimated from the node's rate of flows on both sides of the gap: its
// recent recorded flows, and the oldest flows the ring still holds that
// the recording's filters match (traffic changes during an incident; one
// side alone was off by 20% in tests). The event is written when the
// gap's end is known (see openGap, closeGap); the nodes are returned for
// the reconnect's note.
//
// A gap starts no earlier than since, where the new stream starts: the
// stream that broke delivered every flow before it (see
// Options.ResumeOverlap), so a node whose last recorded flow is older
// (a filter that matches its flows rarely) had no matching flow between.
//
// The nodes are asked ringQuestions at a time: the new stream waits
// meanwhile (its flows are handled after), and each question goes through
// the relay to an agent. Through the real hubble-relay to 20 simulated
// agents on this 2-core machine, node after node took 560-630 ms (about
// 30 ms a node), 16 at a time 340-380 ms (2026-12-07).
func (r *recorder) detectGaps(ctx context.Context, client observerpb.ObserverClient, since time.Time) []string {
	names := slices.Sorted(maps.Keys(r.nodes))
	type answer struct {
		oldest time.Time
		after  trafficSample
		err    error
	}
	answers := make([]answer, len(names))
	var g errgroup.Group
	g.SetLimit(ringQuestions)
	for i, node := range names {
		g.Go(func() error {
			a := &answers[i]
			a.oldest, a.after, a.err = oldestFlows(ctx, client, node, r.o.Allow, r.o.Deny, r.log)
			return nil
		})
	}
	_ = g.Wait() // (each answer holds its error)
	var nodes []string
	for i, node := range names {
		tr := r.nodes[node]
		flows, secs := tr.sample()
		// The window that counts the rate starts again: one that spanned
		// the outage would count its flows over the outage's time too.
		tr.windowStart, tr.windowCount = 0, 0
		oldest, after, err := answers[i].oldest, answers[i].after, answers[i].err
		if err != nil {
			r.log.Warn("cannot check for a gap after the reconnect", "node", node, "error", err)
			continue
		}
		from := max(tr.last, tr.counted)
		if !since.IsZero() {
			from = max(from, since.UnixNano())
		}
		if oldest.IsZero() || oldest.UnixNano() <= from {
			continue
		}
		// Both samples together, weighted by the time they span: the one
		// after the gap is short, and traffic is bursty.
		r.gaps[node] = &openGap{from: from, oldest: oldest.UnixNano(), flows: flows + after.flows, secs: secs + after.seconds}
		nodes = append(nodes, node)
	}
	return nodes
}

// closeGap ends node's open gap at the time of the first flow of the node
// that the new stream delivered (at): none was lost where that flow is one
// recorded before the gap (the stream reached back to it). For a
// recording of every flow, that flow is the oldest the ring held when the
// stream read it; for a filtered one, the first the filters match after
// that, and the estimate counts, on average, about one flow more.
func (r *recorder) closeGap(node string, g *openGap, at int64) error {
	delete(r.gaps, node)
	if at <= g.from {
		r.log.Debug("the resumed stream reached back to the last recorded flow: no flow was overwritten", "node", node)
		return nil
	}
	return r.recordGap(node, g, at)
}

// closeGaps records the gaps still open when a stream breaks or the
// recorder stops: no flow of their node came to tell where they end, so
// they end at the ring's oldest flow when asked.
func (r *recorder) closeGaps() error {
	var errs []error
	for _, node := range slices.Sorted(maps.Keys(r.gaps)) {
		g := r.gaps[node]
		delete(r.gaps, node)
		if err := r.recordGap(node, g, g.oldest); err != nil {
			errs = append(errs, err)
			continue
		}
		// A later reconnect, or the next session, looks for a gap from
		// where this one ended.
		tr := r.nodes[node]
		tr.counted = max(tr.counted, r.untilBound(g.oldest))
	}
	return errors.Join(errs...)
}

// saveRingGaps writes where the nodes' last gaps ended (ringGapsEnd) into
// the session's manifest entry when that changed, after a stream broke
// with gaps open: a recorder killed later leaves it to the next session
// too. (Run writes it again when the session ends.)
func (r *recorder) saveRingGaps() {
	ends := r.ringGapsEnd()
	if r.dir == nil || maps.EqualFunc(ends, r.session.RingGapsEnd, time.Time.Equal) {
		return
	}
	s := r.session
	s.RingGapsEnd = ends
	if err := r.dir.PutSession(s); err != nil {
		r.log.Warn("cannot note where the gaps in the flows ended in the manifest", "error", err)
		return
	}
	r.session.RingGapsEnd = ends
}

// ringGapsEnd is where the nodes' last gaps recorded without a flow after
// them ended, past their newest recorded flow: what the session's
// manifest entry keeps for the next session (tape.Session.RingGapsEnd).
func (r *recorder) ringGapsEnd() map[string]time.Time {
	var out map[string]time.Time
	for node, tr := range r.nodes {
		if tr.counted > tr.last {
			if out == nil {
				out = map[string]time.Time{}
			}
			out[node] = time.Unix(0, tr.counted).UTC()
		}
	}
	return out
}

// untilBound is ns, or --until where that is earlier: no gap runs past it.
func (r *recorder) untilBound(ns int64) int64 {
	if r.o.Until.IsZero() {
		return ns
	}
	return min(ns, r.o.Until.UnixNano())
}

// recordGap writes a gap from g.from to end as a lost event, ended by
// --until where one is given.
func (r *recorder) recordGap(node string, g *openGap, end int64) error {
	if end = r.untilBound(end); end <= g.from {
		return nil
	}
	gap := time.Duration(end - g.from)
	rate := 0.0
	if g.secs > 0 {
		rate = g.flows / g.secs
	}
	lost := uint64(rate*gap.Seconds() + 0.5)
	if lost == 0 {
		if len(r.o.Allow) > 0 || len(r.o.Deny) > 0 {
			// the flows overwritten need not have matched the filters
			r.log.Debug("a ring moved past the last recorded flow, but at the filtered flows' rate none was lost", "node", node,
				"from", time.Unix(0, g.from).UTC(), "to", time.Unix(0, end).UTC())
			return nil
		}
		lost = 1 // the ring moved past what we had: something was there
	}
	first, last := time.Unix(0, g.from), time.Unix(0, end)
	ev := &observerpb.GetFlowsResponse{Time: timestamppb.New(last), NodeName: node,
		ResponseTypes: &observerpb.GetFlowsResponse_LostEvents{LostEvents: &flowpb.LostEvent{
			Source: flowpb.LostEventSource_HUBBLE_RING_BUFFER, NumEventsLost: lost,
			First: timestamppb.New(first), Last: timestamppb.New(last)}}}
	if err := r.out.WriteEvent(ev); err != nil {
		return fmt.Errorf("record the gap in the flows of %s from %s to %s: %w", node, first.UTC().Format(time.RFC3339Nano),
			last.UTC().Format(time.RFC3339Nano), err)
	}
	r.totals.LostEvents[flowpb.LostEventSource_HUBBLE_RING_BUFFER.String()] += lost
	r.o.Metrics.lost(flowpb.LostEventSource_HUBBLE_RING_BUFFER.String(), node, lost)
	r.log.Warn("flows were overwritten in a ring buffer while the recorder was away", "node", node,
		"from", first.UTC(), "to", last.UTC(), "gap", gap.Round(time.Millisecond), "estimated_lost", lost)
	return nil
}

// ringQuestions is how many nodes' rings detectGaps asks at once.
const ringQuestions = 16

// rateSample is how many of the oldest flows of a ring give the rate after
// a gap: enough to average over bursts, few enough to fetch at once.
const rateSample = 500

// trafficSample is a number of flows over a time span.
type trafficSample struct{ flows, seconds float64 }

// oldestFlows asks for the oldest flow a node's ring buffer still holds,
// and how many of the oldest flows the recording's filters (allow, deny)
// match span how long (none when too few to tell): a recording of some
// flows loses those at their own rate, not at the ring's (4.3x the flows
// lost, in tests, of a recording of 6% of the flows).
func oldestFlows(ctx context.Context, client observerpb.ObserverClient, node string, allow, deny []*flowpb.FlowFilter,
	log *slog.Logger) (time.Time, trafficSample, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	nodeOnly := []*flowpb.FlowFilter{{NodeName: []string{node}}}
	if len(allow) == 0 && len(deny) == 0 {
		return firstFlows(ctx, client, &observerpb.GetFlowsRequest{First: true, Number: rateSample, Whitelist: nodeOnly}, node)
	}
	// the ring's oldest flow, whatever the filters
	oldest, _, err := firstFlows(ctx, client, &observerpb.GetFlowsRequest{First: true, Number: 1, Whitelist: nodeOnly}, node)
	if err != nil || oldest.IsZero() {
		return time.Time{}, trafficSample{}, err
	}
	// The node's flows the filters match: each filter asks for the node's
	// flows alone; one that names nodes (--node-name, patterns as Hubble
	// matches them) that this node is not among matches none of its
	// flows, and is left out. (The filters are the recording's: changed,
	// they would change its stream.)
	var match []*flowpb.FlowFilter
	if len(allow) == 0 {
		match = nodeOnly // (a deny list alone)
	}
	for _, f := range allow {
		if names := f.GetNodeName(); len(names) > 0 {
			m, err := observer.NewFilters(ctx, []*flowpb.FlowFilter{{NodeName: names}}, nil)
			if err != nil || !m.Match(&flowpb.Flow{NodeName: node}) {
				continue
			}
		}
		f = proto.Clone(f).(*flowpb.FlowFilter)
		f.NodeName = []string{node}
		match = append(match, f)
	}
	if len(match) == 0 {
		// none of the filters matches the node's flows: the gap's rate
		// is the recorded flows' alone
		return oldest, trafficSample{}, nil
	}
	_, ts, err := firstFlows(ctx, client, &observerpb.GetFlowsRequest{First: true, Number: rateSample, Whitelist: match, Blacklist: deny}, node)
	if err != nil {
		// the gap is known; its rate is the recorded flows' alone
		log.Debug("cannot sample the matching flows a ring holds after a gap", "node", node, "error", err)
		return oldest, trafficSample{}, nil
	}
	return oldest, ts, nil
}

// firstFlows runs req, a query of the oldest flows, and gives the time of
// the first flow of node and how many of them span how long (none when
// too few to tell).
func firstFlows(ctx context.Context, client observerpb.ObserverClient, req *observerpb.GetFlowsRequest, node string) (time.Time, trafficSample, error) {
	stream, err := client.GetFlows(ctx, req)
	if err != nil {
		return time.Time{}, trafficSample{}, err
	}
	var first, last time.Time
	n := 0
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if n > 0 {
				break // a slow server: what came is enough to go on
			}
			return time.Time{}, trafficSample{}, err
		}
		if f := resp.GetFlow(); f != nil && f.GetNodeName() == node {
			at := f.GetTime().AsTime()
			if n == 0 {
				first = at
			}
			last = at
			n++
		}
	}
	var ts trafficSample
	if span := last.Sub(first).Seconds(); n >= 10 && span > 0 {
		ts = trafficSample{flows: float64(n - 1), seconds: span}
	}
	return first, ts, nil
}

// joinNotes is the reconnect's note on the nodes detectGaps found.
func joinNotes(nodes []string) string {
	if len(nodes) == 0 {
		return "no flows were overwritten meanwhile"
	}
	return "the ring buffers of " + strings.Join(nodes, ", ") + " no longer held the last flows recorded from them " +
		"(each gap is recorded as a lost event once its end is known)"
}
