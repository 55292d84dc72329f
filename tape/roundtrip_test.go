package tape_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"
	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	relaypb "github.com/cilium/cilium/api/v1/relay"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// roundTrip writes msgs to a real Parquet file and reads them back.
func roundTrip[M proto.Message](t *testing.T, tbl *schema.Table[M], msgs []M) []M {
	// A small row group size so that multi-row-group files are exercised.
	return roundTripGroups(t, tbl, msgs, 7)
}

func roundTripGroups[M proto.Message](t *testing.T, tbl *schema.Table[M], msgs []M, rowGroupRows int) []M {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rows.parquet")
	testutil.WriteParquet(t, path, tbl, msgs, tape.WriterOptions{Writer: "test", RowGroupRows: rowGroupRows})
	var got []M
	info, err := tape.ReadFile(context.Background(), tbl, path, func(m M) error {
		got = append(got, m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if info.Rows != int64(len(msgs)) || info.SchemaVersion != schema.Version || info.Kind != tbl.Kind {
		t.Fatalf("footer = %+v, want %d rows of %s, version %s", info, len(msgs), tbl.Kind, schema.Version)
	}
	return got
}

func TestRoundTripRealSamples(t *testing.T) {
	for _, name := range testutil.SampleFiles {
		t.Run(name, func(t *testing.T) {
			resps := testutil.LoadResponses(t, testutil.Testdata("samples", name))
			var flows []*flowpb.Flow
			for _, r := range resps {
				if f := r.GetFlow(); f != nil {
					flows = append(flows, f)
				}
			}
			if len(flows) == 0 {
				t.Fatal("sample holds no flows")
			}
			testutil.SameMessages(t, "rows read back", roundTrip(t, schema.Flows, flows), flows)
		})
	}
}

// withUnknown appends a field this build does not know (as a newer Cilium
// would send) to m's unknown fields.
func withUnknown(m proto.Message, num protowire.Number, val string) {
	var b []byte
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendString(b, val)
	r := m.ProtoReflect()
	r.SetUnknown(append(r.GetUnknown(), b...))
}

func TestRoundTripEdgeCases(t *testing.T) {
	ts := timestamppb.New(timestamppb.Now().AsTime())
	unknownTop := &flowpb.Flow{Time: ts, Uuid: "u1", Verdict: flowpb.Verdict_FORWARDED,
		Source: &flowpb.Endpoint{Namespace: "default", PodName: "a"}}
	withUnknown(unknownTop, 4242, "from a newer cilium")
	withUnknown(unknownTop.Source, 99, "nested unknown")
	tcpEmptyFlags := &flowpb.Flow{L4: &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{Flags: &flowpb.TCPFlags{}}}}}
	tests := []struct {
		name string
		flow *flowpb.Flow
	}{
		{"empty flow", &flowpb.Flow{}},
		{"unknown fields at top level and nested", unknownTop},
		{"enum value this build does not know", &flowpb.Flow{Verdict: flowpb.Verdict(99), DropReasonDesc: flowpb.DropReason(9999)}},
		{"time at epoch zero", &flowpb.Flow{Time: &timestamppb.Timestamp{}}},
		{"time before the epoch", &flowpb.Flow{Time: &timestamppb.Timestamp{Seconds: -5, Nanos: 7}}},
		{"time out of int64 nanoseconds", &flowpb.Flow{Time: &timestamppb.Timestamp{Seconds: 1 << 40}}},
		{"invalid nanos", &flowpb.Flow{Time: &timestamppb.Timestamp{Seconds: 1, Nanos: -1}}},
		{"empty endpoint present", &flowpb.Flow{Source: &flowpb.Endpoint{}}},
		{"TCP with empty flags", tcpEmptyFlags},
		{"TCP without flags", &flowpb.Flow{L4: &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{SourcePort: 1, DestinationPort: 2}}}}},
		{"UDP zero ports", &flowpb.Flow{L4: &flowpb.Layer4{Protocol: &flowpb.Layer4_UDP{UDP: &flowpb.UDP{}}}}},
		{"SCTP", &flowpb.Flow{L4: &flowpb.Layer4{Protocol: &flowpb.Layer4_SCTP{SCTP: &flowpb.SCTP{SourcePort: 5, DestinationPort: 6, ChunkType: flowpb.SCTPChunkType_INIT}}}}},
		{"ICMPv6", &flowpb.Flow{L4: &flowpb.Layer4{Protocol: &flowpb.Layer4_ICMPv6{ICMPv6: &flowpb.ICMPv6{Type: 128}}}}},
		{"is_reply false", &flowpb.Flow{IsReply: wrapperspb.Bool(false)}},
		{"is_reply true", &flowpb.Flow{IsReply: wrapperspb.Bool(true), Reply: true}},
		{"two workloads", &flowpb.Flow{Destination: &flowpb.Endpoint{Workloads: []*flowpb.Workload{{Name: "a", Kind: "Deployment"}, {Name: "b"}}}}},
		{"workload without name", &flowpb.Flow{Destination: &flowpb.Endpoint{Workloads: []*flowpb.Workload{{Kind: "Pod"}}}}},
		{"HTTP with headers", &flowpb.Flow{L7: &flowpb.Layer7{Type: flowpb.L7FlowType_RESPONSE, LatencyNs: 12345, Record: &flowpb.Layer7_Http{Http: &flowpb.HTTP{
			Code: 503, Method: "POST", Url: "http://x/y", Protocol: "HTTP/2",
			Headers: []*flowpb.HTTPHeader{{Key: "X-Request-Id", Value: "1"}, {Key: "X-Request-Id", Value: "2"}, {Key: "", Value: ""}}}}}}},
		{"empty HTTP record", &flowpb.Flow{L7: &flowpb.Layer7{Record: &flowpb.Layer7_Http{Http: &flowpb.HTTP{}}}}},
		{"DNS", &flowpb.Flow{L7: &flowpb.Layer7{Type: flowpb.L7FlowType_RESPONSE, Record: &flowpb.Layer7_Dns{Dns: &flowpb.DNS{
			Query: "x.", Rcode: 3, Ips: []string{"1.2.3.4"}, Cnames: []string{"y."}, Qtypes: []string{"A"}, Rrtypes: []string{"A"}, Ttl: 30, ObservationSource: "proxy"}}}}},
		{"kafka (kept in extra)", &flowpb.Flow{L7: &flowpb.Layer7{Record: &flowpb.Layer7_Kafka{Kafka: &flowpb.Kafka{Topic: "t"}}}}},
		{"policies", &flowpb.Flow{
			IngressDeniedBy: []*flowpb.Policy{{Name: "deny", Namespace: "default", Kind: "CiliumNetworkPolicy", Revision: 7, Labels: []string{"a"}}},
			EgressAllowedBy: []*flowpb.Policy{{Name: "ccnp"}}}},
		{"rare fields", &flowpb.Flow{Tunnel: &flowpb.Tunnel{Protocol: flowpb.Tunnel_VXLAN, Vni: 2}, Aggregate: &flowpb.Aggregate{IngressFlowCount: 1},
			File: &flowpb.FileInfo{Name: "bpf_lxc.c", Line: 10}, IpTraceId: &flowpb.IPTraceID{TraceId: 3},
			Interface: &flowpb.NetworkInterface{Index: 0}, Emitter: &flowpb.Emitter{Name: "Hubble", Version: "1.20"},
			TraceContext: &flowpb.TraceContext{Parent: &flowpb.TraceParent{}}, SocketCookie: 9, CgroupId: 8, ProxyPort: 15001}},
		{"event type zero", &flowpb.Flow{EventType: &flowpb.CiliumEventType{}}},
		{"IP with zero fields", &flowpb.Flow{IP: &flowpb.IP{}}},
	}
	var flows []*flowpb.Flow
	for _, tt := range tests {
		flows = append(flows, tt.flow)
	}
	got := roundTrip(t, schema.Flows, flows)
	for i, tt := range tests {
		if !proto.Equal(tt.flow, got[i]) {
			t.Errorf("%s: round trip changed the flow:\nwant %v\ngot  %v", tt.name, tt.flow, got[i])
		}
	}
	// proto.Equal compares unknown fields as bytes; check they are really there.
	if !bytes.Contains(got[1].ProtoReflect().GetUnknown(), []byte("from a newer cilium")) ||
		!bytes.Contains(got[1].GetSource().ProtoReflect().GetUnknown(), []byte("nested unknown")) {
		t.Error("unknown fields were not kept")
	}
}

func TestRoundTripEvents(t *testing.T) {
	now := timestamppb.Now()
	events := []*observerpb.GetFlowsResponse{
		{NodeName: "c/n1", Time: now, ResponseTypes: &observerpb.GetFlowsResponse_LostEvents{LostEvents: &flowpb.LostEvent{
			Source: flowpb.LostEventSource_HUBBLE_RING_BUFFER, NumEventsLost: 42, Cpu: wrapperspb.Int32(0), First: now, Last: now}}},
		{Time: now, ResponseTypes: &observerpb.GetFlowsResponse_LostEvents{LostEvents: &flowpb.LostEvent{Source: flowpb.LostEventSource_PERF_EVENT_RING_BUFFER, NumEventsLost: 1}}},
		{Time: now, ResponseTypes: &observerpb.GetFlowsResponse_NodeStatus{NodeStatus: &relaypb.NodeStatusEvent{
			StateChange: relaypb.NodeState_NODE_UNAVAILABLE, NodeNames: []string{"c/n2", "c/n3"}, Message: "connection refused"}}},
		{ResponseTypes: &observerpb.GetFlowsResponse_NodeStatus{NodeStatus: &relaypb.NodeStatusEvent{}}},
	}
	withUnknown(events[3], 77, "newer response type")
	testutil.SameMessages(t, "rows read back", roundTrip(t, schema.Events, events), events)
}

func TestReaderRefusesNewerMajorVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "future.parquet")
	testutil.WriteParquet(t, path, schema.Flows, []*flowpb.Flow{{Uuid: "x"}},
		tape.WriterOptions{Metadata: map[string]string{schema.MetaSchemaVersion: "2.0"}})
	_, err := tape.ReadFile(context.Background(), schema.Flows, path, func(*flowpb.Flow) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "schema version 2.0 is not supported") || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want a one-line refusal naming the file and version", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
}

func TestRoundTripSimulator(t *testing.T) {
	src := sim.NewSource(sim.Scenarios["incident"], 11, 2000, time.Date(2026, 11, 25, 13, 1, 50, 0, time.UTC))
	// Minute 2 of the incident scenario: drops, errors and policy attribution included.
	flows := src.Take(60000)
	testutil.SameMessages(t, "rows read back", roundTripGroups(t, schema.Flows, flows, 16384), flows)
}

// A writer encodes rows in batches smaller than a row group (to hold less
// memory as Arrow builders) but still writes full row groups: readers
// prune and compress by row group.
func TestRowGroupsFullFromBatches(t *testing.T) {
	if defaults.EncodeBatchRows >= defaults.RowGroupRows {
		t.Fatalf("EncodeBatchRows %d must be below RowGroupRows %d for this test", defaults.EncodeBatchRows, defaults.RowGroupRows)
	}
	src := sim.NewSource(sim.Scenarios["steady"], 3, 2000, time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC))
	n := 2*defaults.RowGroupRows + defaults.EncodeBatchRows + 100
	flows := src.Take(n)
	path := filepath.Join(t.TempDir(), "rows.parquet")
	testutil.WriteParquet(t, path, schema.Flows, flows, tape.WriterOptions{Writer: "test"})
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	var groups []int64
	for i := 0; i < rdr.NumRowGroups(); i++ {
		groups = append(groups, rdr.MetaData().RowGroup(i).NumRows())
	}
	rdr.Close()
	want := []int64{defaults.RowGroupRows, defaults.RowGroupRows, int64(defaults.EncodeBatchRows + 100)}
	if !slices.Equal(groups, want) {
		t.Errorf("row groups of %d rows: %v, want %v", n, groups, want)
	}
	testutil.SameMessages(t, "rows read back", readFlowFile(t, path), flows)
}

// readFlowFile reads a flow file's flows.
func readFlowFile(t *testing.T, path string) []*flowpb.Flow {
	t.Helper()
	var got []*flowpb.Flow
	if _, err := tape.ReadFile(context.Background(), schema.Flows, path, func(f *flowpb.Flow) error {
		got = append(got, f)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// Files a recording keeps are compressed harder than the pieces a live
// recorder publishes until their file is (defaults.CompressionLevel): the
// option reaches the pages, and still reads back the same flows.
func TestKeptFilesCompressHarder(t *testing.T) {
	flows := sim.NewSource(sim.Scenarios["incident"], 3, 2000, time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)).Take(20000)
	size := func(level int) int64 {
		path := filepath.Join(t.TempDir(), "flows.parquet")
		testutil.WriteParquet(t, path, schema.Flows, flows, tape.WriterOptions{Writer: "test", CompressionLevel: level})
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		testutil.SameMessages(t, "rows read back", readFlowFile(t, path), flows)
		return fi.Size()
	}
	kept, piece := size(0), size(defaults.PieceCompressionLevel)
	if kept >= piece {
		t.Errorf("a kept file takes %d bytes, a piece's level %d bytes: want it smaller", kept, piece)
	}
	t.Logf("%.2f against %.2f bytes per flow", float64(kept)/float64(len(flows)), float64(piece)/float64(len(flows)))
}
