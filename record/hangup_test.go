package record_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	relaypb "github.com/cilium/cilium/api/v1/relay"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/internal/observer"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/record"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// hangupServer answers every GetFlows with the same ring of flows and ends
// the stream at once: a relay being restarted, or a simulator whose run
// is over.
type hangupServer struct {
	observerpb.UnimplementedObserverServer
	ring  []*flowpb.Flow
	calls atomic.Int64
}

func (s *hangupServer) ServerStatus(context.Context, *observerpb.ServerStatusRequest) (*observerpb.ServerStatusResponse, error) {
	return &observerpb.ServerStatusResponse{NumFlows: uint64(len(s.ring)), MaxFlows: uint64(len(s.ring))}, nil
}

func (s *hangupServer) GetNodes(context.Context, *observerpb.GetNodesRequest) (*observerpb.GetNodesResponse, error) {
	return &observerpb.GetNodesResponse{}, nil
}

func (s *hangupServer) GetFlows(_ *observerpb.GetFlowsRequest, stream observerpb.Observer_GetFlowsServer) error {
	s.calls.Add(1)
	for _, f := range s.ring {
		if err := stream.Send(observer.FlowResponse(f)); err != nil {
			return err
		}
	}
	return nil
}

// A server that answers and hangs up at once is not hammered: the ring it
// sends again on every reconnect holds no new flow, so the wait between
// reconnects grows to its bound; the recording holds the ring once, its
// events a reconnect pair per attempt (no more than the backoff allows),
// and the log one warning, not one per reconnect.
func TestServerThatHangsUpIsNotHammered(t *testing.T) {
	srv := &hangupServer{}
	for i := range 500 {
		srv.ring = append(srv.ring, &flowpb.Flow{Uuid: "ring-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), Time: timestamppb.New(t0.Add(time.Duration(i) * time.Millisecond)),
			NodeName: "node-1", Verdict: flowpb.Verdict_FORWARDED})
	}
	addr := serveObserver(t, srv)

	var logs bytes.Buffer
	dir := filepath.Join(t.TempDir(), "rec")
	// 3 s with waits of 10 ms doubling to 400 ms: 10 attempts; a backoff
	// that resets on every ring would make about 200.
	const run, minBackoff, maxBackoff = 3 * time.Second, 10 * time.Millisecond, 400 * time.Millisecond
	rctx, rcancel := context.WithTimeout(context.Background(), run)
	defer rcancel()
	res, err := record.Run(rctx, record.Options{Dialer: dialer(t, "--server", addr), Sink: tape.SinkOptions{Dir: dir},
		MinBackoff: minBackoff, MaxBackoff: maxBackoff, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	tot := res.Session.Totals
	maxAttempts := uint64(0)
	for wait, left := minBackoff, run; left > 0; wait = min(wait*2, maxBackoff) {
		maxAttempts++
		left -= wait
	}
	if tot.Reconnects > maxAttempts+1 {
		t.Errorf("%d reconnects in %s (server called %d times): want at most %d, the backoff growing while no new flow arrives",
			tot.Reconnects, run, srv.calls.Load(), maxAttempts+1)
	}
	if tot.Reconnects < 3 {
		t.Errorf("%d reconnects: the recorder gave up on a server that keeps answering", tot.Reconnects)
	}
	if tot.Flows != uint64(len(srv.ring)) {
		t.Errorf("recorded %d flows, want the ring's %d once", tot.Flows, len(srv.ring))
	}
	flows, events := readRecording(t, dir)
	if len(flows) != len(srv.ring) {
		t.Errorf("the recording holds %d flows, want %d", len(flows), len(srv.ring))
	}
	var broke int
	for _, ev := range events {
		if ev.GetNodeName() == schema.RecorderNode && ev.GetNodeStatus().GetStateChange() == relaypb.NodeState_NODE_UNAVAILABLE {
			broke++
		}
	}
	if uint64(broke) > maxAttempts+1 {
		t.Errorf("%d stream-broke events: want at most one per reconnect the backoff allows (%d)", broke, maxAttempts+1)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n > 2 {
		t.Errorf("%d warnings logged for one outage, want one (and at most one more when it ends):\n%s", n, logs.String())
	}
}

// serveObserver serves srv's Observer API on a loopback address until the
// test ends, and returns the address.
func serveObserver(t *testing.T, srv observerpb.ObserverServer) string {
	t.Helper()
	addr := testutil.FreeAddr(t)
	g := observer.NewServer()
	observerpb.RegisterObserverServer(g, srv)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go observer.Serve(ctx, g, testutil.Listen(t, addr)) //nolint:errcheck
	return addr
}
