package record

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/internal/observer"
	"github.com/flowtape/flowtape/internal/testutil"
)

// The bytes the write-ahead log is given for a flow are that flow's
// encoding, or nil where they would not be.
func TestFlowEncodingIsTheFlows(t *testing.T) {
	flow := &flowpb.Flow{Uuid: "u1", NodeName: "n1", Time: timestamppb.New(time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)), Summary: "TCP Flags: SYN",
		L7: &flowpb.Layer7{Record: &flowpb.Layer7_Http{Http: &flowpb.HTTP{Url: "http://a/b?c=d", Headers: []*flowpb.HTTPHeader{{Key: "x", Value: "y"}}}}}}
	flowBytes, err := proto.Marshal(flow)
	if err != nil {
		t.Fatal(err)
	}
	resp := func(r *observerpb.GetFlowsResponse) []byte {
		b, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	withFlow := resp(&observerpb.GetFlowsResponse{NodeName: "n1", Time: timestamppb.New(time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)),
		ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: flow}})
	// the flow's field a second time: protobuf merges the two
	twice := protowire.AppendTag(bytes.Clone(withFlow), flowField, protowire.BytesType)
	twice = protowire.AppendBytes(twice, nil) // (an empty flow)
	for _, tc := range []struct {
		name string
		resp []byte
		want []byte
	}{
		{"a flow", withFlow, flowBytes},
		{"a lost event", resp(&observerpb.GetFlowsResponse{ResponseTypes: &observerpb.GetFlowsResponse_LostEvents{
			LostEvents: &flowpb.LostEvent{NumEventsLost: 3}}}), nil},
		{"the flow in two pieces", twice, nil},
		{"cut short", withFlow[:len(withFlow)/2], nil},
		{"empty", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := flowEncoding(tc.resp); !bytes.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
				t.Fatalf("flowEncoding = %x, want %x", got, tc.want)
			}
		})
	}

	// The codec decodes as gRPC's own and keeps the bytes of the last
	// message, once.
	c := &keepingCodec{}
	var got observerpb.GetFlowsResponse
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(withFlow[:10]), mem.SliceBuffer(withFlow[10:])}, &got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got.GetFlow(), flow) {
		t.Fatalf("decoded %v, want %v", got.GetFlow(), flow)
	}
	if k := c.take(); !bytes.Equal(k.bytes, withFlow) {
		t.Fatalf("kept %x, want the message's bytes %x", k.bytes, withFlow)
	}
	if k := c.take(); k.bytes != nil {
		t.Fatalf("kept %x a second time", k.bytes)
	}
	// One buffer of gRPC's pool (a message over 1 KB): referenced, not
	// copied, and still the message's after gRPC frees it (its reference
	// goes back to the pool, where the next message would overwrite it).
	large := proto.Clone(flow).(*flowpb.Flow)
	large.Summary = strings.Repeat("x", 4096)
	largeResp := resp(&observerpb.GetFlowsResponse{ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: large}})
	pool := mem.DefaultBufferPool()
	b := pool.Get(len(largeResp))
	copy(*b, largeResp)
	data := mem.BufferSlice{mem.NewBuffer(b, pool)}
	if err := c.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	data.Free() // as gRPC does once Unmarshal returns
	k := c.take()
	if &k.bytes[0] != &(*b)[0] {
		t.Fatal("the message's one buffer was copied")
	}
	if !bytes.Equal(k.bytes, largeResp) {
		t.Fatal("the kept bytes changed once gRPC freed its buffer")
	}
	k.free() // the last reference: a buffer freed twice panics
}

// listServer sends its flows to every GetFlows, then waits.
type listServer struct {
	observerpb.UnimplementedObserverServer
	flows []*flowpb.Flow
}

func (s *listServer) GetFlows(_ *observerpb.GetFlowsRequest, stream observerpb.Observer_GetFlowsServer) error {
	for _, f := range s.flows {
		if err := stream.Send(observer.FlowResponse(f)); err != nil {
			return err
		}
	}
	<-stream.Context().Done()
	return nil
}

// On a real stream each flow reaches the writer with its bytes as
// received: the path that spares the WAL's second encoding is taken, for
// small and large flows (a response over a frame's 16 KB comes in
// several buffers).
func TestStreamKeepsEachFlowsBytes(t *testing.T) {
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	var sent []*flowpb.Flow
	for i := range 200 {
		f := &flowpb.Flow{Uuid: fmt.Sprintf("u%d", i), NodeName: "n1", Time: timestamppb.New(start.Add(time.Duration(i) * time.Millisecond))}
		if i%50 == 0 {
			f.Summary = strings.Repeat("x", 40<<10)
		}
		sent = append(sent, f)
	}
	addr := testutil.FreeAddr(t)
	g := observer.NewServer()
	observerpb.RegisterObserverServer(g, &listServer{flows: sent})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go observer.Serve(ctx, g, testutil.Listen(t, addr)) //nolint:errcheck
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := &recorder{}
	events := make(chan streamEvent, len(sent)+1)
	go r.receive(ctx, observerpb.NewObserverClient(conn), time.Time{}, false, events)
	for i := 0; i < len(sent); {
		ev := <-events
		if ev.err != nil {
			t.Fatal(ev.err)
		}
		if ev.resp == nil {
			continue // the headers
		}
		var f flowpb.Flow
		if ev.flow == nil {
			t.Fatalf("flow %s came without its bytes", ev.resp.GetFlow().GetUuid())
		}
		if err := proto.Unmarshal(ev.flow, &f); err != nil || !proto.Equal(&f, sent[i]) || !proto.Equal(ev.resp.GetFlow(), sent[i]) {
			t.Fatalf("flow %d: its bytes decode to %v (%v), want %v", i, &f, err, sent[i])
		}
		ev.raw.free()
		i++
	}
}
