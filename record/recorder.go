// Package record is flowtape's live Hubble client: it follows GetFlows
// from hubble-relay or an agent (dialed as the hubble CLI dials, see
// internal/hubblecli) across reconnects without gaps or duplicates, records
// what it misses as lost events (gaps.go), redacts what it is told to
// (redact.go), and writes the recording through tape's crash-safe Sink.
package record

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	relaypb "github.com/cilium/cilium/api/v1/relay"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// Dialer connects to a Hubble server (hubblecli.Dialer: as the hubble CLI
// does).
type Dialer interface {
	Dial(context.Context) (*grpc.ClientConn, error)
	Server() string
	TLS() bool
	Timeout() time.Duration
}

// Options configure a recording.
type Options struct {
	Dialer Dialer
	// Node is the node a per-node recording reads (RunPerNode): its own
	// reports (the stream broke, resumed) name the node, so that coverage
	// counts them for it; empty, they are the whole recording's.
	Node        string
	Allow, Deny []*flowpb.FlowFilter
	RawFilters  string
	// Since backfills from the ring buffers first; zero follows from now.
	Since time.Time
	// Until, MaxFlows (and the caller's context, for --duration) end the
	// recording cleanly.
	Until    time.Time
	MaxFlows uint64
	Sink     tape.SinkOptions
	// Retention removes the oldest finished files of the directory (see
	// tape.Retention); with MaxBytes, the files being written take at
	// most an eighth of it (Sink.MaxOpenBytes, unless set).
	Retention tape.Retention
	// FlushInterval bounds what a killed recorder loses.
	FlushInterval time.Duration
	Redact        Redaction
	// MinBackoff and MaxBackoff bound the wait between reconnects.
	MinBackoff, MaxBackoff time.Duration
	// ResumeOverlap is how far before the last recorded flow a resumed
	// stream starts, so that flows of slower nodes are not skipped; what
	// comes twice is dropped by uuid.
	ResumeOverlap time.Duration
	// NoResume starts from now even when the directory holds an earlier
	// session of the same server and filters (which Run otherwise goes on
	// from, as after a reconnect).
	NoResume bool
	// Progress, when set, is called about once a second.
	Progress func(Progress)
	// Metrics, when set, count what the recorder does (see Metrics).
	Metrics *Metrics
	// noDiskWalk leaves the directory's size to the caller (RunPerNode).
	noDiskWalk bool
	Log        *slog.Logger
}

// Progress is a snapshot of a running recording.
type Progress struct {
	Elapsed    time.Duration
	Flows      uint64
	Lost       uint64
	Files      int64
	Bytes      int64
	Reconnects uint64
	Connected  bool
}

// Result is what a recording did.
type Result struct {
	Session tape.Session
}

// ErrNoServer wraps failures to reach the server when the recording starts.
var ErrNoServer = errors.New("cannot reach the Hubble server")

type recorder struct {
	o       Options
	log     *slog.Logger
	dir     *tape.Dir
	sink    *tape.Sink
	out     tape.Writer // sink, as the loop writes it
	session tape.Session
	totals  tape.Totals
	seen    *seenFlows // the flows a resumed stream may send again
	nodes   map[string]*nodeTrack
	gaps    map[string]*openGap // by node, until their end is known (see detectGaps)
	first   int64               // time of the oldest flow recorded (ns)
	last    int64               // time of the newest flow recorded (ns)
	started time.Time
	// Retention: when it last ran, and the files published then.
	expiredAt    time.Time
	expiredFiles int64
	retention    retentionRun
	// published is what the metrics counted of the sink's stats.
	published tape.Stats
	// resume is where the previous session stopped, when this one goes
	// on from it.
	resume *tape.ResumePoint
}

// Run records until ctx ends or a stop condition is met. A broken stream is
// resumed; the error returned is for what cannot be recovered from (the
// server unreachable at start, the disk).
func Run(ctx context.Context, o Options) (Result, error) {
	o.FlushInterval = defaults.Positive(o.FlushInterval, defaults.FlushInterval)
	o.MinBackoff = defaults.Positive(o.MinBackoff, defaults.MinBackoff)
	o.MaxBackoff = defaults.Positive(o.MaxBackoff, defaults.MaxBackoff)
	o.ResumeOverlap = defaults.Positive(o.ResumeOverlap, defaults.ResumeOverlap)
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Sink.RecordingID == "" {
		o.Sink.RecordingID = tape.NewRecordingID()
	}
	if o.Retention.MaxBytes > 0 && o.Sink.MaxOpenBytes == 0 {
		o.Sink.MaxOpenBytes = o.Retention.MaxBytes / openShare
	}
	r := &recorder{o: o, log: o.Log, seen: newSeenFlows(o.ResumeOverlap), nodes: map[string]*nodeTrack{}, gaps: map[string]*openGap{}, started: time.Now(),
		totals: tape.Totals{LostEvents: map[string]uint64{}}}
	var res Result

	dir, err := tape.OpenSession(o.Sink.Dir, o.Sink.RecordingID)
	if err != nil {
		return res, err
	}
	defer dir.Close()
	r.dir = dir
	// What a killed recorder left here becomes valid files first.
	st0, err := dir.Recover(o.Sink.Writer)
	if err != nil {
		r.log.Error("could not recover everything an interrupted recording left; run flowtape recover", "dir", o.Sink.Dir, "error", err)
	} else if st0.Files > 0 {
		r.log.Info("recovered files left by an interrupted recording", "files", st0.Files, "rows", st0.Rows)
	}
	if id, busy := dir.Recording(o.Dialer.Server(), o.RawFilters); busy {
		return res, fmt.Errorf("%s is being recorded from %s with the same filters by another recorder (session %s): a second one would write every flow twice",
			o.Sink.Dir, o.Dialer.Server(), id)
	}
	conn, err := o.Dialer.Dial(ctx)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrNoServer, err)
	}
	defer conn.Close()
	client := observerpb.NewObserverClient(conn)
	startCtx, cancel := context.WithTimeout(ctx, max(o.Dialer.Timeout(), 5*time.Second))
	st, err := client.ServerStatus(startCtx, &observerpb.ServerStatusRequest{}, grpc.WaitForReady(true))
	cancel()
	if err != nil {
		return res, fmt.Errorf("%w at %s: %w", ErrNoServer, o.Dialer.Server(), err)
	}
	nodes, _ := client.GetNodes(ctx, &observerpb.GetNodesRequest{})

	// A recorder restarted into its directory resumes where its previous
	// session of this server stopped (see tape.LastSession), unless told
	// where to start.
	if o.Since.IsZero() && o.Until.IsZero() && !o.NoResume {
		rp, ok, err := tape.LastSession(ctx, o.Sink.Dir, o.Dialer.Server(), o.RawFilters, o.ResumeOverlap, resumeKey)
		if err != nil {
			r.log.Warn("cannot tell where the previous recording stopped; recording from now", "dir", o.Sink.Dir, "error", err)
		}
		if ok {
			r.resumeFrom(&rp)
		}
	}
	if r.sink, err = tape.NewSink(o.Sink); err != nil {
		return res, err
	}
	r.out = r.sink
	r.session = tape.Session{RecordingID: o.Sink.RecordingID, Tool: o.Sink.Writer, SchemaVersion: schema.Version,
		Status: "recording", Server: tape.ServerInfo{Address: o.Dialer.Server(), TLS: o.Dialer.TLS()},
		Filters: tape.Filters{Raw: o.RawFilters}, Retention: o.Retention.Policy(), Start: r.started.UTC(),
		StatusAtStart: protoJSON(st), NodesAtStart: protoJSON(nodes)}
	if !o.Since.IsZero() {
		s := o.Since.UTC()
		r.session.Filters.Since = &s
	}
	if !o.Until.IsZero() {
		u := o.Until.UTC()
		r.session.Filters.Until = &u
	}
	if err := dir.PutSession(r.session); err != nil {
		return res, err
	}

	r.o.Metrics.setStream(o.Dialer.Server(), false, nil)
	runErr := r.loop(ctx, client)

	closeErr := r.sink.Close()
	if err := errors.Join(runErr, closeErr); err != nil {
		r.o.Metrics.writeFailed()
		r.o.Metrics.setStream(o.Dialer.Server(), false, err)
	} else {
		r.o.Metrics.endStream(o.Dialer.Server())
	}
	r.o.Metrics.published(r.published, r.sink.Stats())
	end := time.Now().UTC()
	r.session.End = &end
	endCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	if st, err := client.ServerStatus(endCtx, &observerpb.ServerStatusRequest{}); err == nil {
		r.session.StatusAtEnd = protoJSON(st)
	}
	if n, err := client.GetNodes(endCtx, &observerpb.GetNodesRequest{}); err == nil {
		r.session.NodesAtEnd = protoJSON(n)
	}
	cancel()
	ss := r.sink.Stats()
	r.totals.Files, r.totals.Bytes = ss.Files, ss.Bytes
	if r.totals.Flows > 0 {
		first, last := time.Unix(0, r.first).UTC(), time.Unix(0, r.last).UTC()
		r.totals.FirstFlow, r.totals.LastFlow = &first, &last
	}
	r.session.Totals = r.totals
	r.session.RingGapsEnd = r.ringGapsEnd()
	r.session.Status = "complete"
	if err := errors.Join(runErr, closeErr); err != nil {
		r.session.Status, r.session.Error = "failed", err.Error()
		// What its files hold is not sure: the next session may count a
		// gap again, never skip one.
		r.session.RingGapsEnd = nil
	}
	merr := dir.PutSession(r.session)
	res.Session = r.session
	// One error: the first thing that went wrong. What failed after it
	// (closing files, the manifest on a full disk) follows from it.
	for _, err := range []error{runErr, closeErr, merr} {
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// streamEvent is what the receiving goroutine hands to the writing loop.
type streamEvent struct {
	resp *observerpb.GetFlowsResponse
	// flow is the encoding of resp's flow as received (see encoded.go);
	// nil when it is not known. raw holds it, and is freed once handled.
	flow []byte
	raw  kept
	err  error
	eof  bool // the server ended the stream
	hdr  metadata.MD
}

// loop follows the stream, resuming it when it breaks, until a stop
// condition; only errors writing the recording end it early.
func (r *recorder) loop(ctx context.Context, client observerpb.ObserverClient) error {
	tick := time.NewTicker(r.o.FlushInterval)
	defer tick.Stop()
	progress := time.NewTicker(time.Second)
	defer progress.Stop()
	// An --until in the past is a bounded query of what the ring buffers
	// hold, which ends with the stream; one in the future is followed live
	// and ends with the first later flow, or shortly after it on a quiet stream.
	history := !r.o.Until.IsZero() && r.o.Until.Before(time.Now())
	var untilTimer <-chan time.Time
	if !r.o.Until.IsZero() && !history {
		t := time.NewTimer(time.Until(r.o.Until) + 5*time.Second)
		defer t.Stop()
		untilTimer = t.C
	}
	backoff := r.o.MinBackoff
	since := r.o.Since
	connected := false
	// outage: the stream broke and has delivered no new flow since.
	outage := false
	var disconnectedAt, connectedAt time.Time
	if rp := r.resume; rp != nil {
		// The recorder itself was away: an outage like a broken stream,
		// whose gaps the first connection looks for.
		// Not before the previous session's first flow: what it did not
		// record then is not this one's to add.
		since, disconnectedAt = rp.Last.Add(-r.o.ResumeOverlap), rp.Last
		if since.Before(rp.First) {
			since = rp.First
		}
		r.recorderEvent(relaypb.NodeState_NODE_UNAVAILABLE, fmt.Sprintf("the recorder was not running after the last flow of session %s at %s",
			rp.Session, rp.Last.Format(time.RFC3339Nano)))
		r.log.Info("resuming the previous recording of this server", "session", rp.Session, "last_flow", rp.Last.Format(time.RFC3339Nano))
	}
	for {
		sctx, cancel := context.WithCancel(ctx)
		// Responses decoded ahead of the writer: enough to keep both busy;
		// each holds its flow and gRPC's buffer of it (see encoded.go):
		// with 1024 the live heap after a collection averaged about 7 MB
		// more than with 256 (a recorder at full speed keeps it full).
		events := make(chan streamEvent, 256)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.receive(sctx, client, since, history, events)
		}()
		stop, err := func() (bool, error) {
			defer func() {
				cancel()
				wg.Wait()
			}()
			for {
				select {
				case <-ctx.Done():
					return true, r.drain(events)
				case <-untilTimer:
					return true, r.drain(events)
				case <-tick.C:
					if err := r.flush(); err != nil {
						return true, err
					}
				case <-progress.C:
					r.report(connected)
				case ev := <-events:
					if ev.hdr != nil {
						r.noteVersions(ev.hdr)
						if !connected {
							connected, connectedAt = true, time.Now()
							r.o.Metrics.setStream(r.o.Dialer.Server(), true, nil)
							if !disconnectedAt.IsZero() {
								gaps := r.detectGaps(ctx, client, since)
								r.recorderEvent(relaypb.NodeState_NODE_CONNECTED,
									fmt.Sprintf("reconnected to %s after %s; resumed from %s; %s", r.o.Dialer.Server(),
										time.Since(disconnectedAt).Round(time.Millisecond), since.UTC().Format(time.RFC3339Nano), joinNotes(gaps)))
							}
						}
						continue
					}
					if ev.eof && history {
						return true, nil
					}
					if ev.err != nil {
						if ctx.Err() != nil {
							return true, nil
						}
						return false, ev.err
					}
					before := r.totals.Flows
					done, err := r.handleEvent(ev)
					if err != nil || done {
						return true, err
					}
					if r.totals.Flows > before {
						// Only a stream that delivers new flows resets the
						// backoff: a server that answers with its ring (all
						// duplicates) and hangs up is not hammered.
						backoff = r.o.MinBackoff
						if outage {
							outage = false
							r.log.Info("stream from hubble server delivers again", "server", r.o.Dialer.Server(), "reconnects", r.totals.Reconnects)
						}
					}
				}
			}
		}()
		if stop {
			return errors.Join(err, r.closeGaps())
		}
		// The stream broke: note it, wait, resume from the last flow.
		if err := r.closeGaps(); err != nil {
			return err
		}
		connected = false
		disconnectedAt = time.Now()
		r.totals.Reconnects++
		if outage && time.Since(connectedAt) > r.o.MaxBackoff {
			// The stream had stayed up (a filter that matched nothing for
			// a while delivers no new flow): this is a new outage.
			outage, backoff = false, r.o.MinBackoff
		}
		r.o.Metrics.reconnected(r.o.Dialer.Server())
		r.o.Metrics.setStream(r.o.Dialer.Server(), false, nil)
		// One line per outage, not per attempt: a server that keeps
		// hanging up logs once until it delivers again.
		if !outage {
			outage = true
			r.log.Warn("stream from hubble server broke; reconnecting", "server", r.o.Dialer.Server(), "error", err, "retry_in", backoff)
		} else {
			r.log.Debug("stream from hubble server broke again", "server", r.o.Dialer.Server(), "error", err, "retry_in", backoff)
		}
		r.recorderEvent(relaypb.NodeState_NODE_UNAVAILABLE, fmt.Sprintf("stream from %s broke: %v", r.o.Dialer.Server(), errMessage(err)))
		switch {
		case r.last > 0:
			since = time.Unix(0, r.last).Add(-r.o.ResumeOverlap)
		case since.IsZero():
			// Nothing matched yet: what matches while we are away is
			// still in the ring buffers when we are back.
			since = r.started.Add(-r.o.ResumeOverlap)
		}
		// What was received before the break is synced on schedule while
		// we wait, so a crash now loses no more than the flush interval.
		if err := r.out.Sync(); err != nil {
			return err
		}
		r.saveRingGaps()
		wait := time.NewTimer(backoff)
	waiting:
		for {
			select {
			case <-ctx.Done():
				wait.Stop()
				return nil
			case <-tick.C:
				if err := r.flush(); err != nil {
					wait.Stop()
					return err
				}
			case <-progress.C:
				r.report(false)
			case <-wait.C:
				break waiting
			}
		}
		backoff = min(backoff*2, r.o.MaxBackoff)
	}
}

// retentionEvery is how often retention by age runs when no file was
// published since it last ran (hours expire while the recorder idles).
// Under a disk bound it runs at every flush: a walk of the directory's
// files (about 10 ms for a week of 5-minute files).
const retentionEvery = time.Minute

// Under a disk bound (Retention.MaxBytes, B), the files being written end
// at B/openShare (M), and retention keeps the finished files under
// B - openReserve*M: between two flushes the open files grow, a file
// being finished exists twice for a moment (its write-ahead log and
// pieces, and the file), and the pieces of ended files wait for readers
// (at most M/2, see tape.SinkOptions.MaxOpenBytes). Guarded by
// TestRecordWithRetention, which samples the directory's size all along.
const (
	openShare   = 8
	openReserve = 2
)

// flush syncs what was received (see Options.FlushInterval) and runs
// retention when a file was published since it last ran.
func (r *recorder) flush() error {
	if err := r.out.Sync(); err != nil {
		return err
	}
	st := r.out.Stats()
	r.o.Metrics.published(r.published, st)
	r.published = st
	if r.dir == nil || (!r.o.Retention.Enabled() && (r.o.Metrics == nil || r.o.noDiskWalk)) {
		return nil
	}
	// Without a disk bound, retention by age (and the metrics of the
	// directory's size) need no walk of it at every flush.
	files := st.Files
	if r.o.Retention.MaxBytes == 0 && files == r.expiredFiles && time.Since(r.expiredAt) < retentionEvery {
		return nil
	}
	r.expiredAt, r.expiredFiles = time.Now(), files
	r.retention.run(r.dir, r.o, openReserve*r.o.Sink.MaxOpenBytes)
	return nil
}

func errMessage(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Code().String() + ": " + s.Message()
	}
	return err.Error()
}

// receive runs one GetFlows stream, handing its responses to the loop.
func (r *recorder) receive(ctx context.Context, client observerpb.ObserverClient, since time.Time, history bool, out chan<- streamEvent) {
	req := &observerpb.GetFlowsRequest{Follow: !history, Whitelist: r.o.Allow, Blacklist: r.o.Deny}
	if !since.IsZero() {
		req.Since = timestamppb.New(since)
	}
	if history {
		req.Until = timestamppb.New(r.o.Until)
	}
	send := func(ev streamEvent) bool {
		select {
		case out <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	// Waiting for the connection lets a restarting server come back
	// without failed attempts piling up.
	codec := &keepingCodec{}
	stream, err := client.GetFlows(ctx, req, grpc.WaitForReady(true), grpc.ForceCodecV2(codec))
	if err != nil {
		send(streamEvent{err: err})
		return
	}
	hdr, err := stream.Header()
	if err != nil {
		send(streamEvent{err: err})
		return
	}
	if hdr == nil {
		hdr = metadata.MD{}
	}
	if !send(streamEvent{hdr: hdr}) {
		return
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			ev := streamEvent{err: err}
			if errors.Is(err, io.EOF) {
				ev = streamEvent{err: status.Error(codes.Unavailable, "server ended the stream"), eof: true}
			}
			send(ev)
			return
		}
		ev := streamEvent{resp: resp, raw: codec.take()}
		if resp.GetFlow() != nil {
			ev.flow = flowEncoding(ev.raw.bytes)
		}
		if !send(ev) {
			return
		}
	}
}

// drain writes what was received before the stop.
func (r *recorder) drain(events <-chan streamEvent) error {
	for {
		select {
		case ev := <-events:
			if ev.resp != nil {
				if done, err := r.handleEvent(ev); err != nil || done {
					return err
				}
			}
		default:
			return nil
		}
	}
}

// handleEvent records a received response (handle) and then frees gRPC's
// buffer of it, which the write-ahead log was given.
func (r *recorder) handleEvent(ev streamEvent) (done bool, err error) {
	defer ev.raw.free()
	return r.handle(ev.resp, ev.flow)
}

// handle records one response; done reports a stop condition. encoded is
// the encoding of its flow as received, or nil.
func (r *recorder) handle(resp *observerpb.GetFlowsResponse, encoded []byte) (done bool, err error) {
	if f := resp.GetFlow(); f != nil {
		at := f.GetTime().AsTime().UnixNano()
		// (before the duplicates are dropped: a flow recorded before shows
		// the stream reached back to it)
		if g := r.gaps[f.GetNodeName()]; g != nil {
			if err := r.closeGap(f.GetNodeName(), g, at); err != nil {
				return true, err
			}
		}
		if !r.o.Until.IsZero() && at > r.o.Until.UnixNano() {
			return true, nil
		}
		// Redacted first: a flow without uuid is known by its hash, which
		// must be that of the flow as written (see tape.LastSession).
		if r.o.Redact.apply(f) {
			encoded = nil // no longer the flow written
		}
		dup := r.duplicate(f, at)
		r.o.Metrics.received(f.GetNodeName(), dup)
		if dup {
			r.totals.Duplicates++
			return false, nil
		}
		if err := r.writeFlow(f, encoded); err != nil {
			return true, err
		}
		r.o.Metrics.flowWritten(f.GetNodeName(), time.Unix(0, at))
		r.totals.Flows++
		if at > r.last {
			r.last = at
		}
		if r.first == 0 || at < r.first {
			r.first = at
		}
		tr := r.nodes[f.GetNodeName()]
		if tr == nil {
			tr = &nodeTrack{}
			r.nodes[f.GetNodeName()] = tr
		}
		tr.observe(at)
		return r.o.MaxFlows > 0 && r.totals.Flows >= r.o.MaxFlows, nil
	}
	switch {
	case resp.GetLostEvents() != nil:
		l := resp.GetLostEvents()
		r.totals.LostEvents[l.GetSource().String()] += l.GetNumEventsLost()
		r.o.Metrics.lost(l.GetSource().String(), resp.GetNodeName(), l.GetNumEventsLost())
		r.log.Warn("the server reports lost events", "source", l.GetSource().String(), "lost", l.GetNumEventsLost(), "node", resp.GetNodeName())
	case resp.GetNodeStatus() != nil:
		r.totals.NodeStatusChanges++
		ns := resp.GetNodeStatus()
		r.log.Info("node status", "state", ns.GetStateChange().String(), "nodes", ns.GetNodeNames(), "message", ns.GetMessage())
	}
	if resp.GetTime() == nil {
		resp.Time = timestamppb.Now()
	}
	return false, r.out.WriteEvent(resp)
}

// writeFlow writes a flow, with its encoding as received when known.
func (r *recorder) writeFlow(f *flowpb.Flow, encoded []byte) error {
	if encoded != nil {
		return r.out.WriteFlowEncoded(f, encoded)
	}
	return r.out.WriteFlow(f)
}

// resumeKey names a flow in a tape.ResumePoint: the bytes of its flowKey.
func resumeKey(f *flowpb.Flow) string { k := flowKey(f); return string(k[:]) }

// resumeFrom makes the recorder go on where a previous session stopped
// (see tape.LastSession): the flows of the overlap are known, so that none
// is written twice, and each node's newest flow and where its last gap
// ended, so that the gaps of the first connection start there.
func (r *recorder) resumeFrom(rp *tape.ResumePoint) {
	r.resume = rp
	for k, at := range rp.Flows {
		var id flowID
		copy(id[:], k) // the 16 bytes of flowKey (resumeKey)
		r.seen.add(id, at, 0)
	}
	for node, at := range rp.Nodes {
		tr := &nodeTrack{last: at.UnixNano()}
		if c, ok := rp.Counted[node]; ok {
			tr.counted = c.UnixNano()
		}
		r.nodes[node] = tr
	}
}

func (r *recorder) recorderEvent(state relaypb.NodeState, msg string) {
	node, names := schema.RecorderNode, []string{r.o.Dialer.Server()}
	if r.o.Node != "" {
		node, names = r.o.Node, []string{r.o.Node}
	}
	ev := &observerpb.GetFlowsResponse{Time: timestamppb.Now(), NodeName: node,
		ResponseTypes: &observerpb.GetFlowsResponse_NodeStatus{NodeStatus: &relaypb.NodeStatusEvent{
			StateChange: state, NodeNames: names, Message: msg}}}
	if err := r.out.WriteEvent(ev); err != nil {
		r.log.Error("cannot record event", "error", err)
	}
}

func (r *recorder) noteVersions(md metadata.MD) {
	if v := md.Get("hubble-server-version"); len(v) > 0 {
		r.session.Server.ServerVersion = v[0]
	}
	if v := md.Get("hubble-relay-version"); len(v) > 0 {
		r.session.Server.RelayVersion = v[0]
	}
}

func (r *recorder) report(connected bool) {
	if r.o.Progress == nil {
		return
	}
	ss := r.out.Stats()
	var lost uint64
	for _, n := range r.totals.LostEvents {
		lost += n
	}
	r.o.Progress(Progress{Elapsed: time.Since(r.started), Flows: r.totals.Flows, Lost: lost, Files: ss.Files,
		Bytes: r.out.OnDisk(), Reconnects: r.totals.Reconnects, Connected: connected})
}

// protoJSON renders a server response (ServerStatus, GetNodes) for the
// manifest; a nil response (the call failed) is left out.
func protoJSON(m proto.Message) json.RawMessage {
	if m == nil || !m.ProtoReflect().IsValid() {
		return nil
	}
	b, _ := protojson.Marshal(m)
	return b
}
