package replay

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"github.com/cilium/cilium/pkg/hubble/parser/fieldmask"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/internal/testutil"
)

// steppedClock is a clock that only moves when told to.
type steppedClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *steppedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *steppedClock) Sleep(context.Context, time.Duration) error {
	return errors.New("no sleeping here")
}

func (c *steppedClock) step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// A response found by a scan that finds little else goes out once it has
// waited sendHold, while the scan goes on: not when its batch fills or the
// scan ends. What is sent decodes to the response added.
func TestSenderHoldsNoResponseLong(t *testing.T) {
	clock := &steppedClock{now: time.Unix(1700000000, 0)}
	sent := make(chan *observerpb.GetFlowsResponse, 1)
	out := newSender(func(r *observerpb.GetFlowsResponse) error {
		got, err := asClient(r)
		if err == nil {
			sent <- got
		}
		return err
	}, fieldmask.FieldMask{}, clock)
	r := flowAt(0, &flowpb.Flow{Verdict: flowpb.Verdict_DROPPED})
	if err := out.add(r); err != nil {
		t.Fatal(err)
	}
	tick := func(n int) {
		for range n {
			if err := out.tick(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// rows scanned while the clock stands: the response is held
	tick(3 * tickRows)
	if out.cur == nil || len(out.cur.msgs) != 1 {
		t.Fatal("the response was not held for its batch while the clock stood")
	}
	clock.step(sendHold)
	tick(tickRows)
	if out.cur != nil {
		t.Fatalf("the response was held %v while the scan went on", sendHold)
	}
	select {
	case got := <-sent:
		if !proto.Equal(got, r) {
			t.Fatalf("sent %v, want %v", got, r)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the response was not sent %v after it was found, while the scan went on", sendHold)
	}
	if err := out.close(); err != nil {
		t.Fatal(err)
	}
	if len(sent) != 0 {
		t.Fatal("a response was sent twice")
	}
}

// asClient is what a client decodes of r, a response in its wire form (the
// marshalled message as unknown fields).
func asClient(r *observerpb.GetFlowsResponse) (*observerpb.GetFlowsResponse, error) {
	b, err := proto.Marshal(r)
	if err != nil {
		return nil, err
	}
	m := &observerpb.GetFlowsResponse{}
	return m, proto.Unmarshal(b, m)
}

// collect is a send function that keeps what a client would decode, and
// fails from the call after ok calls on (ok < 0: never).
func collect(ok int) (func(*observerpb.GetFlowsResponse) error, func() []*observerpb.GetFlowsResponse) {
	var mu sync.Mutex
	var got []*observerpb.GetFlowsResponse
	return func(r *observerpb.GetFlowsResponse) error {
			mu.Lock()
			defer mu.Unlock()
			if ok >= 0 && len(got) >= ok {
				return errors.New("client gone")
			}
			m, err := asClient(r)
			if err == nil {
				got = append(got, m)
			}
			return err
		}, func() []*observerpb.GetFlowsResponse {
			mu.Lock()
			defer mu.Unlock()
			return got
		}
}

func flowAt(i int, f *flowpb.Flow) *observerpb.GetFlowsResponse {
	f.Time = timestamppb.New(time.Unix(1700000000, int64(i)))
	f.NodeName = "n1"
	return &observerpb.GetFlowsResponse{Time: f.Time, NodeName: f.NodeName, ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: f}}
}

// A response that cannot be marshalled ends the request with gRPC's code
// for it, after the responses before it, as when Send marshalled them.
func TestSenderSendsWhatPrecedesAMarshalError(t *testing.T) {
	send, got := collect(-1)
	out := newSender(send, fieldmask.FieldMask{}, &steppedClock{})
	var want []*observerpb.GetFlowsResponse
	for i := range 3 {
		r := flowAt(i, &flowpb.Flow{Verdict: flowpb.Verdict_FORWARDED})
		want = append(want, r)
		if err := out.add(r); err != nil {
			t.Fatal(err)
		}
	}
	bad := flowAt(3, &flowpb.Flow{})
	bad.GetFlow().NodeName = "n\xff" // not UTF-8: protobuf refuses it
	if err := out.add(bad); err != nil {
		t.Fatal(err)
	}
	err := out.close()
	if status.Code(err) != codes.Internal {
		t.Fatalf("close: %v, want gRPC's Internal", err)
	}
	testutil.SameMessages(t, "responses sent before the error", got(), want)
}

// Once a send fails (the client is gone), the request ends: add returns the
// error, though many batches were queued, and close returns once no
// goroutine of the sender runs.
func TestSenderEndsWhenTheClientIsGone(t *testing.T) {
	send, got := collect(100)
	out := newSender(send, fieldmask.FieldMask{}, &steppedClock{})
	ended := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < 1000*sendBatch && err == nil; i++ {
			err = out.add(flowAt(i, &flowpb.Flow{}))
		}
		ended <- err
	}()
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("every add succeeded after the client was gone")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the request did not end after the client was gone")
	}
	if err := out.close(); err == nil {
		t.Fatal("close: no error after the client was gone")
	}
	if n := len(got()); n != 100 {
		t.Fatalf("sent %d responses, want the 100 before the client went", n)
	}
}

// A field mask gives each flow only its own values: a UDP flow after a TCP
// one does not carry the TCP flow's port.
func TestSenderMasksEachFlowAlone(t *testing.T) {
	mask, err := fieldmask.New(&fieldmaskpb.FieldMask{Paths: []string{"time", "node_name", "l4.TCP.source_port"}})
	if err != nil {
		t.Fatal(err)
	}
	send, got := collect(-1)
	out := newSender(send, mask, &steppedClock{})
	tcp := flowAt(0, &flowpb.Flow{L4: &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{SourcePort: 80, DestinationPort: 8080}}}})
	udp := flowAt(1, &flowpb.Flow{L4: &flowpb.Layer4{Protocol: &flowpb.Layer4_UDP{UDP: &flowpb.UDP{SourcePort: 53}}}})
	for _, r := range []*observerpb.GetFlowsResponse{tcp, udp} {
		if err := out.add(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := out.close(); err != nil {
		t.Fatal(err)
	}
	g := got()
	if len(g) != 2 {
		t.Fatalf("sent %d responses, want 2", len(g))
	}
	if p := g[0].GetFlow().GetL4().GetTCP(); p.GetSourcePort() != 80 || p.GetDestinationPort() != 0 {
		t.Errorf("the TCP flow masked: %v, want its source port only", g[0].GetFlow())
	}
	if p := g[1].GetFlow().GetL4().GetTCP().GetSourcePort(); p != 0 {
		t.Errorf("the UDP flow masked carries source port %d of the TCP flow before it", p)
	}
	if !proto.Equal(g[1].GetFlow().GetTime(), udp.GetTime()) || g[1].GetNodeName() != "n1" {
		t.Errorf("the UDP flow masked: %v", g[1])
	}
}
