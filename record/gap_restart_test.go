package record_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/internal/observer"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/record"
	"github.com/flowtape/flowtape/tape"
)

// ringServer is one node's Hubble server in scripted phases: the flows a
// followed stream sends (from its since on; then it waits, or with hangup
// ends the stream), and the ring's oldest flows, which questions with
// First get.
type ringServer struct {
	observerpb.UnimplementedObserverServer
	mu     sync.Mutex
	stream []*flowpb.Flow
	ring   []*flowpb.Flow
	hangup bool
	asked  atomic.Int64 // questions of the ring since set
	// the content type of the last GetFlows request
	contentType []string
}

func (s *ringServer) set(stream, ring []*flowpb.Flow, hangup bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stream, s.ring, s.hangup = stream, ring, hangup
	s.asked.Store(0)
}

func (s *ringServer) ServerStatus(context.Context, *observerpb.ServerStatusRequest) (*observerpb.ServerStatusResponse, error) {
	return &observerpb.ServerStatusResponse{NumFlows: 1, MaxFlows: 4095}, nil
}

func (s *ringServer) GetNodes(context.Context, *observerpb.GetNodesRequest) (*observerpb.GetNodesResponse, error) {
	return &observerpb.GetNodesResponse{}, nil
}

func (s *ringServer) GetFlows(req *observerpb.GetFlowsRequest, stream observerpb.Observer_GetFlowsServer) error {
	s.mu.Lock()
	md, _ := metadata.FromIncomingContext(stream.Context())
	s.contentType = md.Get("content-type")
	flows, hangup := s.stream, s.hangup
	if req.GetFirst() {
		flows, hangup = s.ring[:min(uint64(len(s.ring)), req.GetNumber())], true
		s.asked.Add(1)
	}
	s.mu.Unlock()
	// (headers at once, as Hubble sends them: the recorder is connected
	// before the first flow)
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for _, f := range flows {
		if req.GetSince() != nil && f.GetTime().AsTime().Before(req.GetSince().AsTime()) {
			continue
		}
		if err := stream.Send(observer.FlowResponse(f)); err != nil {
			return err
		}
	}
	if !hangup {
		<-stream.Context().Done()
	}
	return nil
}

// node1Flows are 100 flows a second of node n1, from from to to seconds
// after t0.
func node1Flows(from, to int) []*flowpb.Flow {
	var out []*flowpb.Flow
	for i := from * 100; i <= to*100; i++ {
		out = append(out, &flowpb.Flow{Uuid: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), NodeName: "n1",
			Time: timestamppb.New(t0.Add(time.Duration(i) * 10 * time.Millisecond)), Verdict: flowpb.Verdict_FORWARDED})
	}
	return out
}

// A recorder stops while a gap in a node's flows is open (after a
// reconnect the ring no longer held its last flow, and no flow of the node
// came): it records the gap up to the ring's oldest flow, and its
// manifest entry says so. Restarted into the directory, it counts the
// node's next gap from there, not again from its last recorded flow: over
// both sessions each lost flow is counted once.
func TestRestartedRecorderCountsAGapOnce(t *testing.T) {
	srv := &ringServer{}
	// flows up to 10 s, then the stream ends
	srv.set(node1Flows(0, 10), node1Flows(0, 10), true)
	addr := serveObserver(t, srv)
	ctx := context.Background()
	dir := t.TempDir()

	// The first session: back after the stream ended, the ring holds
	// flows from 20 s on, and no flow of n1 comes before it stops.
	rctx, stop := context.WithCancel(ctx)
	var reports atomic.Int64
	done := make(chan error, 1)
	go func() {
		_, err := record.Run(rctx, record.Options{Dialer: dialer(t, "--server", addr), Sink: tape.SinkOptions{Dir: dir, Writer: "test"},
			MinBackoff: 10 * time.Millisecond, Progress: func(record.Progress) { reports.Add(1) }})
		done <- err
	}()
	testutil.Eventually(t, 20*time.Second, "the recorder has 10 s of flows", func() bool {
		n, _ := readRecordingQuiet(dir)
		return n >= 1001
	})
	srv.set(nil, node1Flows(20, 30), false)
	// The recorder asks the ring after a reconnect before it reads on
	// (and reports progress): a report after the question comes after
	// the gap is open.
	testutil.Eventually(t, 20*time.Second, "the recorder is back and asks the ring", func() bool { return srv.asked.Load() > 0 })
	seen := reports.Load()
	testutil.Eventually(t, 20*time.Second, "the recorder reports progress", func() bool { return reports.Load() > seen })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m, err := tape.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Sessions[0].RingGapsEnd["n1"]; !got.Equal(t0.Add(20 * time.Second)) {
		t.Fatalf("the session's manifest entry says n1's last gap ended at %v, want %v", got, t0.Add(20*time.Second))
	}

	// The second session: the ring holds flows from 40 s on, and the
	// stream delivers them.
	srv.set(node1Flows(40, 50), node1Flows(40, 50), false)
	if _, err := record.Run(ctx, record.Options{Dialer: dialer(t, "--server", addr), Sink: tape.SinkOptions{Dir: dir, Writer: "test"},
		MaxFlows: 1001}); err != nil {
		t.Fatal(err)
	}
	_, events := readRecording(t, dir)
	var spans []string
	var lost uint64
	for _, e := range events {
		if l := e.GetLostEvents(); l != nil {
			spans = append(spans, fmt.Sprintf("%s-%s: %d", l.GetFirst().AsTime().Sub(t0), l.GetLast().AsTime().Sub(t0), l.GetNumEventsLost()))
			lost += l.GetNumEventsLost()
		}
	}
	t.Logf("gaps %v, %d lost in all", spans, lost)
	// 10-20 s in the first session, 20-40 s in the second, at 100 flows
	// a second
	if len(spans) != 2 || lost < 2950 || lost > 3050 {
		t.Errorf("gaps %v, %d lost in all: want 10s-20s and 20s-40s, about 3000", spans, lost)
	}
}
