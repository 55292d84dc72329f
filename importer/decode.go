package importer

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/flowtape/flowtape/internal/observer"
)

// flowKeys are a Flow's members, by proto and JSON name, except those an
// envelope has too.
var flowKeys = func() map[string]bool {
	m := map[string]bool{}
	fields := (&flowpb.Flow{}).ProtoReflect().Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		m[string(fd.Name())], m[fd.JSONName()] = true, true
	}
	for k := range envelopeKeys {
		delete(m, k)
	}
	return m
}()

// Decoded is one line as a GetFlows response.
type Decoded struct {
	Response *observerpb.GetFlowsResponse
	Format   Format
	// Unknown is the number of JSON members this build does not know,
	// kept for export (see unknown.go).
	Unknown int
	// Mismatch reports an envelope whose time or node differs from its
	// flow's; the flow's are kept, as Hubble always sends them equal.
	Mismatch bool
}

// DecodeLine decodes one line of Hubble JSON: a GetFlowsResponse or
// ExportEvent (jsonpb) or a bare Flow (json). Agent and debug events of
// ExportEvent, which a GetFlowsResponse cannot hold, are kept as its unknown
// fields 4 and 5 (the field numbers are shared). Members unknown to this
// build are kept (see unknown.go).
func DecodeLine(line []byte) (Decoded, error) {
	line = bytes.TrimSpace(line)
	// Most lines are envelopes in the fast decoder's subset: no need to
	// look at their keys first.
	if ev := (&observerpb.ExportEvent{}); fastUnmarshal(line, ev) == nil && ev.GetResponseTypes() != nil {
		return fromEnvelope(ev, Decoded{Format: FormatJSONPB})
	}
	format, err := detect(line)
	if err != nil {
		return Decoded{}, fmt.Errorf("not Hubble JSON: %w", err)
	}
	d := Decoded{Format: format}
	if format == FormatJSON {
		f := &flowpb.Flow{}
		if d.Unknown, err = unmarshal(line, f, []string{"flow"}); err != nil {
			return d, err
		}
		if f.GetTime() == nil {
			return d, errNoTime
		}
		d.Response = observer.FlowResponse(f)
		return d, nil
	}
	ev := &observerpb.ExportEvent{}
	if d.Unknown, err = unmarshal(line, ev, nil); err != nil {
		return d, err
	}
	return fromEnvelope(ev, d)
}

// fromEnvelope makes the GetFlows response of an ExportEvent (or of a
// GetFlowsResponse read as one: they share their JSON and field numbers).
func fromEnvelope(ev *observerpb.ExportEvent, d Decoded) (Decoded, error) {
	r := &observerpb.GetFlowsResponse{Time: ev.GetTime(), NodeName: ev.GetNodeName()}
	switch t := ev.GetResponseTypes().(type) {
	case *observerpb.ExportEvent_Flow:
		r.ResponseTypes = &observerpb.GetFlowsResponse_Flow{Flow: t.Flow}
		f := t.Flow
		// Hubble sets both to the flow's; a flow without them takes the
		// envelope's, and a flow without any time cannot be placed.
		if f.GetTime() == nil {
			f.Time = r.Time
		}
		if f.GetNodeName() == "" {
			f.NodeName = r.NodeName
		}
		if f.GetTime() == nil {
			return d, errNoTime
		}
		d.Mismatch = (r.Time != nil && !proto.Equal(r.Time, f.GetTime())) || (r.NodeName != "" && r.NodeName != f.GetNodeName())
		// Members unknown to this build around the flow travel with it:
		// the flows table keeps the flow, not the envelope.
		f.ProtoReflect().SetUnknown(append(f.ProtoReflect().GetUnknown(), ev.ProtoReflect().GetUnknown()...))
		r.Time, r.NodeName = f.GetTime(), f.GetNodeName()
	case *observerpb.ExportEvent_NodeStatus:
		r.ResponseTypes = &observerpb.GetFlowsResponse_NodeStatus{NodeStatus: t.NodeStatus}
		r.ProtoReflect().SetUnknown(ev.ProtoReflect().GetUnknown())
	case *observerpb.ExportEvent_LostEvents:
		r.ResponseTypes = &observerpb.GetFlowsResponse_LostEvents{LostEvents: t.LostEvents}
		r.ProtoReflect().SetUnknown(ev.ProtoReflect().GetUnknown())
	default:
		// Agent and debug events, and response types newer than this
		// build: the binary form carries over with the same numbers.
		b, err := proto.Marshal(ev)
		if err == nil {
			err = proto.Unmarshal(b, r)
		}
		if err != nil {
			return d, fmt.Errorf("convert event: %w", err)
		}
	}
	if r.Time == nil {
		return d, errNoTime
	}
	d.Response = r
	return d, nil
}

// unmarshal decodes JSON into m: with the fast decoder when the line is in
// its subset, else with protojson. Members protojson does not
// know are taken out first and kept as m's unknown fields (unknown.go);
// prefix is the path of m in the GetFlowsResponse an export writes.
func unmarshal(line []byte, m proto.Message, prefix []string) (int, error) {
	if fastUnmarshal(line, m) == nil {
		return 0, nil
	}
	proto.Reset(m)
	err := protojson.Unmarshal(line, m)
	if err == nil {
		return 0, nil
	}
	// Whatever protojson refused, try again without what this build does
	// not know (members, enum names); protojson's first error stands if
	// that is not it.
	proto.Reset(m)
	known, unknown, serr := splitUnknown(line, m.ProtoReflect().Descriptor(), prefix)
	if serr != nil || len(unknown) == 0 {
		return 0, cleanErr(err)
	}
	if err := protojson.Unmarshal(known, m); err != nil {
		return 0, cleanErr(err)
	}
	keepUnknown(m, unknown)
	return len(unknown), nil
}

// cleanErr drops protojson's "proto: " prefix and its odd non-breaking
// spaces, which read badly in a one-line report.
func cleanErr(err error) error {
	s := strings.ReplaceAll(err.Error(), "\u00a0", " ")
	s = strings.TrimPrefix(s, "proto: ")
	// A line is one line: its position is the column.
	s = protojsonPos.ReplaceAllString(s, "(column $1)")
	return errors.New(s)
}

var protojsonPos = regexp.MustCompile(`\(line 1:(\d+)\)`)

var errNoTime = errors.New("no time: a flow or event must say when it happened")
