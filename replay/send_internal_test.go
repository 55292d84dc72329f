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
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
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
		// r is the wire form (unknown fields): read as a client does
		b, err := proto.Marshal(r)
		if err != nil {
			return err
		}
		got := &observerpb.GetFlowsResponse{}
		if err := proto.Unmarshal(b, got); err != nil {
			return err
		}
		sent <- got
		return nil
	}, fieldmask.FieldMask{}, clock)
	r := &observerpb.GetFlowsResponse{Time: timestamppb.New(clock.Now()), NodeName: "n1",
		ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: &flowpb.Flow{NodeName: "n1", Verdict: flowpb.Verdict_DROPPED}}}
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
	clock.step(sendHold)
	tick(tickRows)
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
