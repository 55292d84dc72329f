package record

import (
	"bytes"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
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
	// one buffer: gRPC's own, referenced, not copied
	buf := mem.NewBuffer(&withFlow, nil)
	if err := c.Unmarshal(mem.BufferSlice{buf}, &got); err != nil {
		t.Fatal(err)
	}
	if k := c.take(); &k.bytes[0] != &withFlow[0] {
		t.Fatal("the message's one buffer was copied")
	}
}
