package record

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// A flow reaches the recorder as protobuf, which gRPC decodes; the
// segment's write-ahead log (tape/segment.go) keeps every flow as
// protobuf too. Encoding each flow again for the log took about a tenth
// of a recorder's CPU (proto.Marshal in a profile of 400k flows), so the
// stream's codec keeps each response's bytes as they came, and the log
// is given the flow's own bytes out of them (flowEncoding): 0.96-0.97x
// the CPU per flow in pairs of whole runs. A flow the
// recorder changes before writing it (redaction) is encoded again, from
// what is written.
//
// Guarded by TestWALHoldsTheFlowsAsWritten (what recover rebuilds from
// the log is what was written, flow for flow, and the received bytes are
// what the log was given), TestFlowEncodingIsTheFlows (the bytes, and
// gRPC's buffer kept past its own free) and TestStreamKeepsEachFlowsBytes
// (the codec on a real stream).

// keepingCodec is the proto codec of one GetFlows stream that also keeps
// the bytes of the message it decoded last. gRPC decodes a stream's
// messages in the goroutine that calls Recv, one at a time, so they are
// the bytes of the response Recv has just returned. They are gRPC's own
// buffer, not a copy (which would cost an allocation and a copy per flow
// to save an encoding): a reference is taken (encoding.CodecV2), which
// whoever takes them frees once written.
type keepingCodec struct {
	last kept
}

// kept is the bytes of a message and the buffers they are in (free
// returns them to gRPC's pool; not freeing them only leaves them to the
// garbage collector).
type kept struct {
	bytes []byte
	bufs  mem.BufferSlice
}

func (k kept) free() {
	if k.bufs != nil {
		k.bufs.Free()
	}
}

var _ encoding.CodecV2 = (*keepingCodec)(nil)

// Name is empty: gRPC takes a forced codec's name as the request's content
// subtype, and without one the content type stays application/grpc, as
// with its default codec (the codec is never registered, which would need
// a name). The wire is unchanged.
func (c *keepingCodec) Name() string { return "" }

func (c *keepingCodec) Marshal(v any) (mem.BufferSlice, error) {
	return encoding.GetCodecV2("proto").Marshal(v)
}

// Unmarshal decodes data into v and keeps it: a reference to its buffer,
// or a copy when the message spans several (a message over a frame).
func (c *keepingCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("decode: %T is not a protobuf message", v)
	}
	c.last.free() // not taken
	// (one buffer referenced; several copied into one of gRPC's pool, as
	// its own proto codec does)
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	c.last = kept{bytes: buf.ReadOnlyData(), bufs: mem.BufferSlice{buf}}
	return proto.Unmarshal(c.last.bytes, m)
}

// take returns the bytes of the last message, once; the caller frees them.
func (c *keepingCodec) take() kept {
	k := c.last
	c.last = kept{}
	return k
}

// flowField is the field number of flow in GetFlowsResponse (observer.proto:
// oneof response_types { flow.Flow flow = 1; ... }).
const flowField protowire.Number = 1

// flowEncoding returns the bytes of the flow in an encoded GetFlowsResponse,
// or nil when they are not the flow's whole encoding: no flow, a malformed
// message, or the flow in more than one piece (protobuf merges repeated
// occurrences of a message field; no Hubble server sends them, but the
// decoded flow would then differ from any one of them).
func flowEncoding(resp []byte) []byte {
	var flow []byte
	seen := 0
	for len(resp) > 0 {
		num, typ, n := protowire.ConsumeTag(resp)
		if n < 0 {
			return nil
		}
		resp = resp[n:]
		if num == flowField && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(resp)
			if m < 0 {
				return nil
			}
			flow, seen = v, seen+1
			resp = resp[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, resp)
		if m < 0 {
			return nil
		}
		resp = resp[m:]
	}
	if seen != 1 {
		return nil
	}
	return flow
}
