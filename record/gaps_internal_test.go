package record

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/tape"
)

// eventsOnly is a tape.Writer that keeps the events written.
type eventsOnly struct {
	events []*observerpb.GetFlowsResponse
}

func (w *eventsOnly) WriteFlow(*flowpb.Flow) error                { return nil }
func (w *eventsOnly) WriteFlowEncoded(*flowpb.Flow, []byte) error { return nil }
func (w *eventsOnly) WriteEvent(ev *observerpb.GetFlowsResponse) error {
	w.events = append(w.events, ev)
	return nil
}
func (w *eventsOnly) Sync() error       { return nil }
func (w *eventsOnly) Stats() tape.Stats { return tape.Stats{} }
func (w *eventsOnly) OnDisk() int64     { return 0 }

// ringClient serves, for any GetFlows, the oldest flows of its ring of the
// node the request's first filter names (req.Number of them).
type ringClient struct {
	observerpb.ObserverClient
	ring []*flowpb.Flow
}

func (c ringClient) GetFlows(_ context.Context, req *observerpb.GetFlowsRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[observerpb.GetFlowsResponse], error) {
	s := &ringStream{}
	for _, f := range c.ring {
		if uint64(len(s.resps)) < req.GetNumber() && slices.Contains(req.GetWhitelist()[0].GetNodeName(), f.GetNodeName()) {
			s.resps = append(s.resps, &observerpb.GetFlowsResponse{ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: f}})
		}
	}
	return s, nil
}

type ringStream struct {
	grpc.ClientStream
	resps []*observerpb.GetFlowsResponse
}

func (s *ringStream) Recv() (*observerpb.GetFlowsResponse, error) {
	if len(s.resps) == 0 {
		return nil, io.EOF
	}
	r := s.resps[0]
	s.resps = s.resps[1:]
	return r, nil
}

var gapBase = time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)

// gapAt is gapBase and s seconds.
func gapAt(s float64) time.Time { return gapBase.Add(time.Duration(s * float64(time.Second))) }

// ring is a ring's flows of each node: 100, rate a second from its
// oldest (s).
func ring(rate float64, oldest map[string]float64) []*flowpb.Flow {
	var out []*flowpb.Flow
	for i := range 100 {
		for node, o := range oldest {
			out = append(out, &flowpb.Flow{NodeName: node, Time: timestamppb.New(gapAt(o + float64(i)/rate))})
		}
	}
	return out
}

func gapRecorder(o Options) (*recorder, *eventsOnly) {
	w := &eventsOnly{}
	return &recorder{o: o, log: slog.New(slog.NewTextHandler(io.Discard, nil)), out: w, seen: newSeenFlows(time.Second),
		nodes: map[string]*nodeTrack{}, gaps: map[string]*openGap{}, totals: tape.Totals{LostEvents: map[string]uint64{}}}, w
}

// flowAt is the response of a flow of node at s seconds.
func flowAt(node string, s float64) *observerpb.GetFlowsResponse {
	f := &flowpb.Flow{Uuid: "5d4f0c8e-3a2b-4c1d-9e8f-7a6b5c4d3e2f", NodeName: node, Time: timestamppb.New(gapAt(s))}
	return &observerpb.GetFlowsResponse{NodeName: node, ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: f}}
}

// A gap found at a reconnect (the ring's oldest flow when asked is newer
// than the node's last recorded one) ends at the first flow of the node
// the new stream delivers, whether the stream read the ring before the
// question or after; it is no gap where that flow is one recorded before
// it (a duplicate, dropped after the check); a flow of another node
// leaves it open; without a flow of the node it ends at the ring's
// oldest, from where a later reconnect looks for the next; and no gap
// runs past --until.
func TestGapEndsAtTheFirstFlowAfterIt(t *testing.T) {
	const node = "n1"
	cases := []struct {
		name      string
		until     float64 // --until (s); 0: none
		first     float64 // the node's first flow on the new stream (s); <0: none before the stream ends
		other     bool    // a flow of another node comes first
		wantEnd   float64 // the lost event's last (s); <0: no lost event
		wantLost  uint64
		wantCount float64 // where a later reconnect looks from (s); 0: unchanged
	}{
		{name: "the stream reached back to the last recorded flow", first: 9.5, wantEnd: -1},
		{name: "the stream's first flow is the last recorded one", first: 10, wantEnd: -1},
		{name: "the ring moved past flows the stream received", first: 14, wantEnd: 14, wantLost: 400},
		{name: "the stream read the ring after it was asked", first: 30, wantEnd: 30, wantLost: 2000},
		{name: "a flow of another node first", first: 14, other: true, wantEnd: 14, wantLost: 400},
		{name: "no flow of the node before the stream ends", first: -1, wantEnd: 20, wantLost: 1000, wantCount: 20},
		{name: "--until before the first flow", until: 12, first: 14, wantEnd: 12, wantLost: 200},
		{name: "--until before the gap", until: 9, first: 14, wantEnd: -1},
		{name: "--until before the ring's oldest, no flow of the node", until: 15, first: -1, wantEnd: 15, wantLost: 500, wantCount: 15},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{ResumeOverlap: time.Second}
			if tc.until > 0 {
				o.Until = gapAt(tc.until)
			}
			r, w := gapRecorder(o)
			// 100 flows a second recorded up to 10 s; the ring held flows
			// from 20 s on when asked.
			r.nodes[node] = &nodeTrack{last: gapAt(10).UnixNano(), rate: 100}
			r.nodes["n2"] = &nodeTrack{last: gapAt(10).UnixNano(), rate: 100}
			tr := r.nodes[node]
			r.gaps[node] = &openGap{from: gapAt(10).UnixNano(), oldest: gapAt(20).UnixNano(), flows: 3000, secs: 30}
			if tc.other {
				if _, err := r.handle(flowAt("n2", 13), nil); err != nil {
					t.Fatal(err)
				}
				if r.gaps[node] == nil {
					t.Fatal("a flow of another node closed the gap")
				}
			}
			if tc.first >= 0 {
				resp := flowAt(node, tc.first)
				if tc.first <= 10 {
					// recorded before the reconnect: a duplicate
					r.duplicate(resp.GetFlow(), resp.GetFlow().GetTime().AsTime().UnixNano())
				}
				if _, err := r.handle(resp, nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.closeGaps(); err != nil {
				t.Fatal(err)
			}
			if len(r.gaps) != 0 {
				t.Fatalf("gaps still open: %v", r.gaps)
			}
			if tc.wantEnd < 0 {
				if len(w.events) != 0 || len(r.totals.LostEvents) != 0 {
					t.Fatalf("recorded %v, %v: want no gap", w.events, r.totals.LostEvents)
				}
				return
			}
			if len(w.events) != 1 {
				t.Fatalf("recorded %d events, want one lost event", len(w.events))
			}
			l := w.events[0].GetLostEvents()
			if l.GetSource() != flowpb.LostEventSource_HUBBLE_RING_BUFFER || !l.GetFirst().AsTime().Equal(gapAt(10)) ||
				!l.GetLast().AsTime().Equal(gapAt(tc.wantEnd)) || l.GetNumEventsLost() != tc.wantLost {
				t.Errorf("lost event %v, want %d lost from 10 s to %v s", l, tc.wantLost, tc.wantEnd)
			}
			if got := r.totals.LostEvents["HUBBLE_RING_BUFFER"]; got != tc.wantLost {
				t.Errorf("counted %d lost, want %d", got, tc.wantLost)
			}
			if tc.wantCount > 0 && tr.counted != gapAt(tc.wantCount).UnixNano() {
				t.Errorf("a later reconnect looks for a gap from %v, want %v s", time.Unix(0, tr.counted).UTC(), tc.wantCount)
			}
		})
	}
}

// A gap starts no earlier than where the resumed stream starts: the
// stream that broke delivered every flow before that, so a node whose
// last recorded flow is older (its flows rarely match the recording's
// filters) lost nothing between; a node whose ring still reaches back to
// there has no gap.
func TestGapStartsWhereTheResumedStreamStarts(t *testing.T) {
	r, _ := gapRecorder(Options{})
	r.nodes = map[string]*nodeTrack{
		"sparse": {last: gapAt(1).UnixNano()},    // its last matching flow, long before the break
		"busy":   {last: gapAt(59.5).UnixNano()}, // the newest flow recorded
		"held":   {last: gapAt(30).UnixNano()},
	}
	since := gapAt(49.5) // the newest flow less the resume overlap
	got := r.detectGaps(t.Context(), ringClient{ring: ring(10, map[string]float64{"sparse": 55, "busy": 62, "held": 48})}, since)
	if want := []string{"busy", "sparse"}; !slices.Equal(got, want) {
		t.Fatalf("gaps in %v, want %v", got, want)
	}
	for node, want := range map[string][2]time.Time{"sparse": {since, gapAt(55)}, "busy": {gapAt(59.5), gapAt(62)}} {
		if g := r.gaps[node]; g == nil || g.from != want[0].UnixNano() || g.oldest != want[1].UnixNano() {
			t.Errorf("%s: gap %+v, want from %v to %v", node, g, want[0], want[1])
		}
	}
	if len(r.gaps) != 2 {
		t.Errorf("%d open gaps, want 2", len(r.gaps))
	}
}

// After a gap that ended at the ring's oldest flow (no flow came), the
// next reconnect looks for a gap from there, not again from the last
// recorded flow.
func TestGapAfterAGapRecordedWithoutItsEnd(t *testing.T) {
	r, w := gapRecorder(Options{})
	r.nodes["n1"] = &nodeTrack{last: gapAt(10).UnixNano(), rate: 100}
	for _, oldest := range []float64{20, 20, 25} {
		r.detectGaps(t.Context(), ringClient{ring: ring(100, map[string]float64{"n1": oldest})}, time.Time{})
		if err := r.closeGaps(); err != nil {
			t.Fatal(err)
		}
	}
	// 10-20 s, nothing more while the ring held 20 s, then 20-25 s
	var spans [][2]time.Time
	for _, ev := range w.events {
		spans = append(spans, [2]time.Time{ev.GetLostEvents().GetFirst().AsTime(), ev.GetLostEvents().GetLast().AsTime()})
	}
	if want := [][2]time.Time{{gapAt(10), gapAt(20)}, {gapAt(20), gapAt(25)}}; !slices.Equal(spans, want) {
		t.Errorf("gaps %v, want %v", spans, want)
	}
}

// The rate a gap is estimated with counts the flows before the outage
// over their own time, not over the outage's: a window that an outage
// interrupts starts again at the reconnect; and a node of which only the
// last flow is known has the ring's rate, not none.
func TestGapRateLeavesOutTheOutage(t *testing.T) {
	r, _ := gapRecorder(Options{})
	tr := &nodeTrack{}
	r.nodes["n1"] = tr
	observe := func(from, to float64) {
		for s := from; s < to; s += 0.01 {
			tr.observe(gapAt(s).UnixNano())
		}
	}
	observe(0, 20) // 100 flows a second, then a reconnect without a gap
	r.detectGaps(t.Context(), ringClient{ring: ring(100, map[string]float64{"n1": 5})}, time.Time{})
	observe(140, 155) // after two minutes away, 100 a second again
	r.detectGaps(t.Context(), ringClient{ring: ring(100, map[string]float64{"n1": 160})}, time.Time{})
	g := r.gaps["n1"]
	if g == nil {
		t.Fatal("no gap")
	}
	if rate := g.flows / g.secs; rate < 90 || rate > 110 {
		t.Errorf("the gap's rate is %.1f flows a second (%.0f over %.1f s), want about 100", rate, g.flows, g.secs)
	}
	// A node a resumed recording knows only the last flow of (see
	// tape.LastSession): the ring's rate alone.
	r, _ = gapRecorder(Options{})
	r.nodes["n1"] = &nodeTrack{last: gapAt(100).UnixNano()}
	r.detectGaps(t.Context(), ringClient{ring: ring(100, map[string]float64{"n1": 160})}, time.Time{})
	if g := r.gaps["n1"]; g == nil || g.secs <= 0 || g.flows/g.secs < 90 || g.flows/g.secs > 110 {
		t.Errorf("the resumed node's gap %+v: want a rate of about 100 flows a second", g)
	}
}

// The ring is asked with the recording's filters, which stay as they
// are: they are the recording's stream's too.
func TestGapSamplingLeavesTheFiltersAlone(t *testing.T) {
	allow := []*flowpb.FlowFilter{{DestinationPod: []string{"default/cartservice"}}}
	before := proto.Clone(allow[0])
	oldest, _, err := oldestFlows(t.Context(), ringClient{ring: ring(100, map[string]float64{"n1": 5, "n2": 7})}, "n1", allow, nil,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || !oldest.Equal(gapAt(5)) {
		t.Fatalf("oldest %v (%v), want %v", oldest, err, gapAt(5))
	}
	if !proto.Equal(allow[0], before) {
		t.Errorf("the recording's filter is now %v, was %v", allow[0], before)
	}
}

// A recorder that stopped with a gap open recorded it up to the ring's
// oldest flow (no flow of the node came to end it); restarted, it looks
// for the next gap from there, not again from the node's last recorded
// flow: the span is counted lost once. Through a real recording: the
// first session's files and manifest entry, read back by tape.LastSession.
func TestRestartAfterAGapRecordedWithoutItsEnd(t *testing.T) {
	dir := t.TempDir()
	const server, id = "relay:80", "aaaa0001"
	d, err := tape.OpenSession(dir, id)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := tape.NewSink(tape.SinkOptions{Dir: dir, RecordingID: id, Writer: "test"})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := gapRecorder(Options{})
	r.out = sink
	// 100 flows a second of n1 up to 10 s; the ring held flows from 20 s
	// on at the reconnect, and the recorder stopped before a flow of n1
	// came.
	for i := range 1001 {
		f := &flowpb.Flow{Uuid: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), NodeName: "n1", Time: timestamppb.New(gapAt(float64(i) / 100))}
		if err := sink.WriteFlow(f); err != nil {
			t.Fatal(err)
		}
	}
	r.nodes["n1"] = &nodeTrack{last: gapAt(10).UnixNano(), rate: 100}
	r.detectGaps(t.Context(), ringClient{ring: ring(100, map[string]float64{"n1": 20})}, time.Time{})
	if err := r.closeGaps(); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	// As a stream break does (Run does it again when the session ends):
	// the manifest entry says where the gap ended, even if the recorder
	// is killed next, as this one is (its entry still says recording).
	r.dir, r.session = d, tape.Session{RecordingID: id, Status: "recording", Server: tape.ServerInfo{Address: server}}
	r.saveRingGaps()
	d.Close()

	const overlap = 2 * time.Second
	rp, ok, err := tape.LastSession(t.Context(), dir, server, "", overlap, resumeKey)
	if err != nil || !ok {
		t.Fatalf("LastSession: %v, %v", ok, err)
	}
	if !rp.Counted["n1"].Equal(gapAt(20)) {
		t.Errorf("the previous session counted n1's flows up to %v, want %v", rp.Counted["n1"], gapAt(20))
	}
	// The restarted recorder: the ring now holds flows from 40 s on.
	r2, w := gapRecorder(Options{ResumeOverlap: overlap})
	r2.resumeFrom(&rp)
	r2.detectGaps(t.Context(), ringClient{ring: ring(100, map[string]float64{"n1": 40})}, rp.Last.Add(-overlap))
	if _, err := r2.handle(flowAt("n1", 40), nil); err != nil {
		t.Fatal(err)
	}
	if len(w.events) != 1 {
		t.Fatalf("the restarted recorder recorded %d events, want one gap", len(w.events))
	}
	// 10-20 s counted before; 20-40 s now, at 100 flows a second
	if l := w.events[0].GetLostEvents(); !l.GetFirst().AsTime().Equal(gapAt(20)) || !l.GetLast().AsTime().Equal(gapAt(40)) ||
		l.GetNumEventsLost() != 2000 {
		t.Errorf("the restarted recorder's gap: %d lost from %v to %v, want 2000 from %v to %v", l.GetNumEventsLost(),
			l.GetFirst().AsTime(), l.GetLast().AsTime(), gapAt(20), gapAt(40))
	}
}

// failingEvents is a tape.Writer whose events cannot be written (a full
// disk).
type failingEvents struct{ eventsOnly }

func (w *failingEvents) WriteEvent(*observerpb.GetFlowsResponse) error {
	return errors.New("disk full")
}

// A gap that could not be written is not counted as recorded: the next
// reconnect (and the next session, from the manifest) looks for it again
// from the node's last flow.
func TestGapNotWrittenIsNotCounted(t *testing.T) {
	r, _ := gapRecorder(Options{})
	r.out = &failingEvents{}
	r.nodes["n1"] = &nodeTrack{last: gapAt(10).UnixNano(), rate: 100}
	r.gaps["n1"] = &openGap{from: gapAt(10).UnixNano(), oldest: gapAt(20).UnixNano(), flows: 3000, secs: 30}
	if err := r.closeGaps(); err == nil {
		t.Fatal("closeGaps: no error from a writer that fails")
	}
	if c := r.nodes["n1"].counted; c != 0 {
		t.Errorf("the node's flows are counted up to %v, want not at all", time.Unix(0, c).UTC())
	}
	if ends := r.ringGapsEnd(); len(ends) != 0 {
		t.Errorf("the manifest would say the gaps ended at %v, want nothing", ends)
	}
}

// heldRing is a ringClient whose answers wait until want questions are
// asked at once (or 10 s have passed); it keeps the most asked at once.
type heldRing struct {
	ringClient
	want              int32
	asked, most, done atomic.Int32
	all               chan struct{}
}

func (c *heldRing) GetFlows(ctx context.Context, req *observerpb.GetFlowsRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[observerpb.GetFlowsResponse], error) {
	n := c.asked.Add(1)
	defer c.asked.Add(-1)
	for m := c.most.Load(); n > m && !c.most.CompareAndSwap(m, n); m = c.most.Load() {
	}
	release := func() {
		if c.done.Add(1) == 1 {
			close(c.all)
		}
	}
	if n == c.want {
		release()
	}
	select {
	case <-c.all:
	case <-time.After(10 * time.Second):
		release() // (they are not asked together: the rest go on at once)
	}
	return c.ringClient.GetFlows(ctx, req, opts...)
}

// The nodes' rings are asked several at a time, at most ringQuestions:
// the new stream waits meanwhile, and through a relay each question takes
// tens of milliseconds.
func TestGapQuestionsAreAskedTogether(t *testing.T) {
	oldest := map[string]float64{}
	r, _ := gapRecorder(Options{})
	for i := range 2 * ringQuestions {
		node := fmt.Sprintf("n%02d", i)
		oldest[node] = 20
		r.nodes[node] = &nodeTrack{last: gapAt(10).UnixNano(), rate: 100}
	}
	c := &heldRing{ringClient: ringClient{ring: ring(100, oldest)}, want: ringQuestions, all: make(chan struct{})}
	if got := r.detectGaps(t.Context(), c, time.Time{}); len(got) != len(oldest) {
		t.Fatalf("gaps in %d nodes, want %d", len(got), len(oldest))
	}
	if m := c.most.Load(); m != ringQuestions {
		t.Errorf("at most %d questions at once, want %d", m, ringQuestions)
	}
}

// askedRing is a ringClient that keeps the requests it was sent.
type askedRing struct {
	ringClient
	asked []*observerpb.GetFlowsRequest
}

func (c *askedRing) GetFlows(ctx context.Context, req *observerpb.GetFlowsRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[observerpb.GetFlowsResponse], error) {
	c.asked = append(c.asked, req)
	return c.ringClient.GetFlows(ctx, req, opts...)
}

// The matching flows after a gap are the node's: each filter of the
// recording is asked for the node's flows alone, and a filter that names
// other nodes (--node-name, patterns as Hubble matches them) is left out,
// as it matches none of the node's flows.
func TestGapSampleIsTheNodesMatchingFlows(t *testing.T) {
	pod := []string{"default/cartservice"}
	cases := []struct {
		name  string
		allow []*flowpb.FlowFilter
		want  []*flowpb.FlowFilter // the sample's allowlist; nil: no sample asked
	}{
		{"no node named", []*flowpb.FlowFilter{{DestinationPod: pod}},
			[]*flowpb.FlowFilter{{DestinationPod: pod, NodeName: []string{"c1/n1"}}}},
		{"the node and others named", []*flowpb.FlowFilter{{DestinationPod: pod, NodeName: []string{"c1/n1", "c1/n2"}}},
			[]*flowpb.FlowFilter{{DestinationPod: pod, NodeName: []string{"c1/n1"}}}},
		{"a pattern", []*flowpb.FlowFilter{{DestinationPod: pod, NodeName: []string{"c1/n*"}}},
			[]*flowpb.FlowFilter{{DestinationPod: pod, NodeName: []string{"c1/n1"}}}},
		{"another node's filter left out", []*flowpb.FlowFilter{{NodeName: []string{"c1/n2"}}, {DestinationPod: pod}},
			[]*flowpb.FlowFilter{{DestinationPod: pod, NodeName: []string{"c1/n1"}}}},
		{"only other nodes named", []*flowpb.FlowFilter{{NodeName: []string{"c1/n2"}}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &askedRing{ringClient: ringClient{ring: ring(100, map[string]float64{"c1/n1": 5, "c1/n2": 7})}}
			oldest, _, err := oldestFlows(t.Context(), c, "c1/n1", tc.allow, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil || !oldest.Equal(gapAt(5)) {
				t.Fatalf("oldest %v (%v), want %v", oldest, err, gapAt(5))
			}
			// the first question is the ring's oldest flow, whatever the filters
			if tc.want == nil {
				if len(c.asked) != 1 {
					t.Errorf("asked %d questions, want the ring's oldest flow alone", len(c.asked))
				}
				return
			}
			if len(c.asked) != 2 {
				t.Fatalf("asked %d questions, want 2", len(c.asked))
			}
			testutil.SameMessages(t, "the sample's filters", c.asked[1].GetWhitelist(), tc.want)
		})
	}
}
