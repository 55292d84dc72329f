package replay_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/replay"
)

// gatedClock is a simulated clock whose Sleep first waits (on the wall
// clock, at most a few seconds, and only until a sleep has found it late)
// until the client holds every response due before the sleep ends: a paced
// replay must send what it has before it sleeps, not hold it in a batch
// until the batch fills.
type gatedClock struct {
	fakeClock // the simulated time, moved by Sleep once the client caught up
	mu        sync.Mutex
	start     time.Time
	due       []time.Duration // of the responses after NODE_CONNECTED, in order
	received  int             // by the client, NODE_CONNECTED included
	arrived   chan struct{}   // signalled when received grows
	late      []string
}

func newGatedClock(due []time.Duration) *gatedClock {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	return &gatedClock{fakeClock: fakeClock{now: now}, start: now, due: due, arrived: make(chan struct{}, 1)}
}

// receive counts a response the client has received.
func (c *gatedClock) receive() {
	c.mu.Lock()
	c.received++
	c.mu.Unlock()
	select {
	case c.arrived <- struct{}{}:
	default:
	}
}

// caughtUp says whether the client holds want responses, or a sleep has
// found it late already (the test fails then; later sleeps do not wait).
func (c *gatedClock) caughtUp(want int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.late) > 0 || c.received >= want
}

func (c *gatedClock) Sleep(ctx context.Context, d time.Duration) error {
	until := c.Now().Add(d).Sub(c.start)
	// The flow slept for is the first due at until; all before it were
	// handed over.
	want := 1
	for _, due := range c.due {
		if due < until {
			want++
		}
	}
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for !c.caughtUp(want) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.arrived:
		case <-deadline.C:
			c.mu.Lock()
			c.late = append(c.late, until.String())
			c.mu.Unlock()
		}
	}
	return c.fakeClock.Sleep(ctx, d)
}

// A paced replay sends each flow when it is due, though responses are
// marshalled in batches (replay/send.go): the client has every flow due
// before each of the server's sleeps, and the flows in their order.
func TestPacedFlowsAreSentBeforeTheServerSleeps(t *testing.T) {
	dir, all := fixture(t)
	from := at(10 * time.Second)
	want := within(all, from, at(20*time.Second))
	var due []time.Duration
	for _, r := range want {
		due = append(due, r.GetTime().AsTime().Sub(from))
	}
	clock := newGatedClock(due)
	c := serve(t, dir, replay.Options{Speed: 1, Clock: clock})
	stream, err := c.GetFlows(t.Context(), &observerpb.GetFlowsRequest{Follow: true,
		Since: timestamppb.New(from), Until: timestamppb.New(at(20 * time.Second))})
	if err != nil {
		t.Fatal(err)
	}
	var got []*observerpb.GetFlowsResponse
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
		clock.receive()
	}
	clock.mu.Lock()
	defer clock.mu.Unlock()
	if len(clock.late) > 0 {
		t.Fatalf("the sleep until +%s began before the client had the flows due before it", clock.late[0])
	}
	got = got[1:]
	testutil.SameMessages(t, "responses sent", got, want)
}

// After clients that went away in the middle of their streams, the server
// serves on: a whole request still gets every response in order. (That the
// gone client's request ends is TestSenderEndsWhenTheClientIsGone's.)
func TestClientGoneMidStream(t *testing.T) {
	dir, all := fixture(t)
	c := serve(t, dir, replay.Options{})
	for range 3 {
		ctx, cancel := context.WithCancel(t.Context())
		stream, err := c.GetFlows(ctx, &observerpb.GetFlowsRequest{Follow: true})
		if err != nil {
			t.Fatal(err)
		}
		for range 100 {
			if _, err := stream.Recv(); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
	}
	got, err := getFlows(t, c, &observerpb.GetFlowsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got = got[1:]
	testutil.SameMessages(t, "responses sent", got, all)
}

// A field mask holds over a whole recording (many batches marshalled at
// once, replay/send.go): each flow has its own masked values, in order,
// and the recorded lost event passes whole.
func TestFieldMaskOverTheWholeRecording(t *testing.T) {
	dir, all := fixture(t)
	c := serve(t, dir, replay.Options{})
	got, err := getFlows(t, c, &observerpb.GetFlowsRequest{
		FieldMask: &fieldmaskpb.FieldMask{Paths: []string{"time", "node_name", "verdict", "source.namespace"}}})
	if err != nil {
		t.Fatal(err)
	}
	var want []*observerpb.GetFlowsResponse
	for _, r := range all {
		if f := r.GetFlow(); f != nil {
			m := &flowpb.Flow{Time: f.GetTime(), NodeName: f.GetNodeName(), Verdict: f.GetVerdict(),
				Source: &flowpb.Endpoint{Namespace: f.GetSource().GetNamespace()}}
			r = &observerpb.GetFlowsResponse{Time: m.GetTime(), NodeName: m.GetNodeName(),
				ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: m}}
		}
		want = append(want, r)
	}
	testutil.SameMessages(t, "responses sent", got[1:], want) // after NODE_CONNECTED
}
