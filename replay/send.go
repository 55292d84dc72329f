package replay

import (
	"runtime"
	"sync"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"github.com/cilium/cilium/pkg/hubble/parser/fieldmask"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Responses are marshalled on several goroutines and sent in order by one.
//
// Why: marshalling a flow costs about as much as reading and decoding it
// (a third of replay's CPU in a profile of BenchmarkReplay), and gRPC does
// it inside Send, on the one goroutine that also merges the recording's
// files and applies the filters. While it ran there, a replay at full speed
// kept the second core partly idle. Here the goroutine that scans hands
// responses over in batches; each batch is marshalled by a goroutine of its
// own (at most one per core at once) into one buffer, and a sending
// goroutine passes the batches to gRPC in order, each response as the
// bytes of the message it was (unknown fields of an empty response, which
// protobuf writes out as they are: the client reads the same message).
//
// The trade-off: a batch waits for its last response. So a paced replay
// flushes the batch before it sleeps (idle), and a scan that finds few
// matching flows flushes one held about sendHold while the scan goes on
// (tick); and every response is copied once more, into gRPC's buffer.
// The tests of send_test.go and send_internal_test.go guard this file (the
// pacing, the hold, a client gone, a marshal error, order and field masks
// over many batches); BenchmarkReplay measures the rate.

// sendBatch is how many responses are marshalled together: enough that a
// goroutine per batch is cheap, few enough that a client sees them soon.
const sendBatch = 64

// sendHold is how long a response may wait for its batch to fill while the
// scan goes on (a filter that matches few flows of a large recording): a
// client sees it about as soon as it was found. It is checked every
// tickRows rows scanned, to keep reading the clock off the rows' path.
const (
	sendHold = 50 * time.Millisecond
	tickRows = 256
)

// batch is a run of consecutive responses, marshalled into buf once ready
// is closed (ends[i] is where response i ends in buf), or err.
type batch struct {
	msgs  []*observerpb.GetFlowsResponse
	buf   []byte
	ends  []int
	err   error
	ready chan struct{}
}

var batchPool = sync.Pool{New: func() any {
	return &batch{msgs: make([]*observerpb.GetFlowsResponse, 0, sendBatch), ends: make([]int, 0, sendBatch)}
}}

// sender sends a GetFlows request's responses, with only the masked fields
// of flows. add, tick, flush and close are called by the request's goroutine;
// close must be called before the request returns, whatever happened.
type sender struct {
	send  func(*observerpb.GetFlowsResponse) error
	mask  fieldmask.FieldMask // applied when Active
	clock Clock
	cur   *batch
	held  time.Time     // when cur's first response was added
	rows  int           // ticks, for tickRows
	queue chan *batch   // to the sending goroutine, in order
	slots chan struct{} // bounds the batches being marshalled at once
	done  chan struct{} // closed when the sending goroutine has returned
	err   error         // why it returned early; read once done is closed
	// the goroutines marshalling batches, which close waits for
	marshalling sync.WaitGroup
}

func newSender(send func(*observerpb.GetFlowsResponse) error, mask fieldmask.FieldMask, clock Clock) *sender {
	n := runtime.GOMAXPROCS(0)
	o := &sender{send: send, mask: mask, clock: clock, queue: make(chan *batch, n+1),
		slots: make(chan struct{}, n), done: make(chan struct{})}
	go o.run()
	return o
}

// add queues r to be sent; an error is that of an earlier send (the client
// gone): the request ends with it.
func (o *sender) add(r *observerpb.GetFlowsResponse) error {
	if o.cur == nil {
		o.cur = batchPool.Get().(*batch)
		o.held = o.clock.Now()
	}
	o.cur.msgs = append(o.cur.msgs, r)
	if len(o.cur.msgs) == sendBatch {
		return o.flush()
	}
	return nil
}

// tick is called for every row of the window scanned, matching or not: it
// flushes a batch held longer than sendHold, looking at the clock every
// tickRows rows. Its error is that of an earlier send.
func (o *sender) tick() error {
	if o.rows++; o.rows < tickRows {
		return nil
	}
	o.rows = 0
	if o.cur != nil && o.clock.Now().Sub(o.held) >= sendHold {
		return o.flush()
	}
	return o.failed()
}

// flush hands over the responses queued so far, to be sent without waiting
// for more: before a paced replay sleeps, and at the end.
func (o *sender) flush() error {
	b := o.cur
	if err := o.failed(); b == nil || err != nil {
		return err
	}
	o.cur = nil
	b.ready = make(chan struct{})
	select {
	case o.slots <- struct{}{}:
	case <-o.done:
		return o.err
	}
	o.marshalling.Add(1)
	go func() {
		defer o.marshalling.Done()
		o.marshal(b)
		<-o.slots
		close(b.ready)
	}()
	select {
	case o.queue <- b:
		return nil
	case <-o.done:
		return o.err
	}
}

// failed is the sending goroutine's error once it has stopped.
func (o *sender) failed() error {
	select {
	case <-o.done:
		return o.err
	default:
		return nil
	}
}

// close sends what is queued and waits until it is sent (or sending
// failed), and until no goroutine of the sender runs. The responses before
// an error are sent, as they were before the error: the request's error
// (a damaged file) and one marshalling a response.
func (o *sender) close() error {
	err := o.flush()
	close(o.queue)
	<-o.done
	o.marshalling.Wait()
	if err != nil {
		return err
	}
	return o.err
}

// marshal marshals b's responses into b.buf, until one fails (b.err).
func (o *sender) marshal(b *batch) {
	opts := proto.MarshalOptions{}
	for _, r := range b.msgs {
		if f := r.GetFlow(); f != nil && o.mask.Active() {
			// A new one for each flow: Copy leaves a oneof that the flow
			// does not set as it was, so a reused one would carry another
			// flow's values (as a Hubble agent's does).
			masked := &flowpb.Flow{}
			o.mask.Alloc(masked.ProtoReflect())
			o.mask.Copy(masked.ProtoReflect(), f.ProtoReflect())
			// As a Hubble agent does: the response carries the masked
			// flow's time and node.
			r = &observerpb.GetFlowsResponse{Time: masked.GetTime(), NodeName: masked.GetNodeName(),
				ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: masked}}
		}
		buf, err := opts.MarshalAppend(b.buf, r)
		if err != nil {
			// gRPC's code for a message it cannot marshal
			b.err = status.Errorf(codes.Internal, "marshal a response: %v", err)
			return
		}
		b.buf = buf
		b.ends = append(b.ends, len(b.buf))
	}
}

// run sends the batches in order until the queue is closed or a send fails.
func (o *sender) run() {
	defer close(o.done)
	// The response sent: its fields are those of the message marshalled,
	// as unknown fields, which protobuf marshals as they are.
	wire := &observerpb.GetFlowsResponse{}
	for b := range o.queue {
		<-b.ready
		start := 0
		for _, end := range b.ends {
			wire.ProtoReflect().SetUnknown(b.buf[start:end])
			if err := o.send(wire); err != nil {
				o.err = err
				return
			}
			start = end
		}
		// after the responses marshalled before it
		if b.err != nil {
			o.err = b.err
			return
		}
		clear(b.msgs)
		b.msgs, b.buf, b.ends, b.err, b.ready = b.msgs[:0], b.buf[:0], b.ends[:0], nil, nil
		batchPool.Put(b)
	}
}
