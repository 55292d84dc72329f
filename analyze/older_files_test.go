package analyze_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// derivedColumns are the columns flow files of a minor version lack, which
// the engine computes in SQL: those added after it, and http_request_id,
// which files stored only from 1.1 to 1.3 (schema.ViewColumns).
var derivedColumns = map[string][]string{
	"1.0": {"http_request_id", "l7_protocol", "source_endpoint", "destination_endpoint"},
	"1.1": {"source_endpoint", "destination_endpoint"},
	"1.3": {},
	"1.4": {"http_request_id"},
}

// Files of every minor schema version read with the derived columns the
// current writer stores (l7_protocol, source_endpoint, ...) or the
// derivation of the requests table computes (the request ID, which files
// no longer store), row by row, over flows that take every branch of the
// derivation.
func TestOlderFilesDeriveAsTheWriter(t *testing.T) {
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	var flows []*flowpb.Flow
	for _, r := range testutil.SampleResponses(t) {
		if f := r.GetFlow(); f != nil {
			flows = append(flows, f)
		}
	}
	flows = append(flows, sim.NewSource(sim.Scenarios["incident"], 3, 200, start).Take(3000)...)
	flows = append(flows, derivationFlows(start)...)

	dir := t.TempDir()
	current := filepath.Join(dir, "current.parquet")
	testutil.WriteParquet(t, current, schema.Flows, flows, tape.WriterOptions{})
	cols := derivedColumns["1.0"]
	want := derivedRows(t, "SELECT NULL, %s FROM read_parquet("+sqlString(current)+")", cols[1:])
	kinds := map[string]int{}
	ids := 0
	for i, r := range want {
		r = r[1:]
		if id := schema.RequestID(flows[i]); id != "" {
			want[i] = append([]any{id}, r...)
			ids++
		} else {
			want[i] = append([]any{nil}, r...)
		}
		kinds[fmt.Sprint(r[0])]++
	}
	for _, k := range []string{"http", "grpc", "dns", "kafka", "<nil>"} {
		if kinds[k] == 0 {
			t.Errorf("no flow of l7_protocol %s: the corpus misses a branch", k)
		}
	}
	if ids == 0 {
		t.Fatal("no flow has a request ID: the corpus misses a branch")
	}

	for _, version := range slices.Sorted(maps.Keys(derivedColumns)) {
		path := filepath.Join(dir, version+".parquet")
		lacks := derivedColumns[version]
		writeOld(t, path, version, flows, lacks)
		e, err := analyze.Open(context.Background(), []string{path}, analyze.Options{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Query(context.Background(), "SELECT coalesce(list(column_name ORDER BY column_name), []) FROM (DESCRIBE SELECT * FROM read_parquet("+sqlString(path)+")) WHERE column_name IN ('http_request_id', 'l7_protocol', 'source_endpoint', 'destination_endpoint')")
		if err != nil {
			t.Fatal(err)
		}
		var wantStored []any
		for _, c := range []string{"destination_endpoint", "http_request_id", "l7_protocol", "source_endpoint"} {
			if !slices.Contains(lacks, c) {
				wantStored = append(wantStored, c)
			}
		}
		if stored := res.Rows[0][0]; fmt.Sprint(stored) != fmt.Sprint(wantStored) {
			t.Fatalf("%s: the file stores %v, want %v", version, stored, wantStored)
		}
		got := engineRows(t, e, cols)
		e.Close()
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows, want %d", version, len(got), len(want))
		}
		bad := 0
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				if bad++; bad <= 10 {
					t.Errorf("%s row %d (%s): computed %v, the writer stores %v", version, i, describe(flows[i]), got[i], want[i])
				}
			}
		}
		if bad > 10 {
			t.Errorf("%s: %d rows differ in all", version, bad)
		}
	}
}

// derivationFlows are flows made for each branch of l7Protocol,
// httpHeader and endpointName.
func derivationFlows(start time.Time) []*flowpb.Flow {
	at := func(i int) *timestamppb.Timestamp {
		return timestamppb.New(start.Add(time.Duration(i) * time.Millisecond))
	}
	httpFlow := func(h *flowpb.HTTP) *flowpb.Flow {
		return &flowpb.Flow{
			Type: flowpb.FlowType_L7, IP: &flowpb.IP{Source: "10.0.0.1", Destination: "10.0.0.2"},
			Source: &flowpb.Endpoint{PodName: "client-1"}, Destination: &flowpb.Endpoint{PodName: "server-1"},
			L7: &flowpb.Layer7{Type: flowpb.L7FlowType_REQUEST, Record: &flowpb.Layer7_Http{Http: h}},
		}
	}
	hdr := func(kv ...string) []*flowpb.HTTPHeader {
		var out []*flowpb.HTTPHeader
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, &flowpb.HTTPHeader{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	kafkaFlow := func(k *flowpb.Kafka) *flowpb.Flow {
		return &flowpb.Flow{
			Type: flowpb.FlowType_L7, Verdict: flowpb.Verdict_FORWARDED, NodeName: "kind/worker",
			Ethernet: &flowpb.Ethernet{Source: "aa:bb:cc:dd:ee:ff"},
			IP:       &flowpb.IP{Source: "10.0.0.3", Destination: "10.0.0.4", IpVersion: flowpb.IPVersion_IPv4},
			L4:       &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{SourcePort: 40000, DestinationPort: 9092, Flags: &flowpb.TCPFlags{PSH: true}}}},
			// a second workload: no column holds it, so the residual has
			// the source endpoint, before l7
			Source:      &flowpb.Endpoint{Identity: 1234, Workloads: []*flowpb.Workload{{Name: "producer"}, {Name: "second", Kind: "Job"}}},
			Destination: &flowpb.Endpoint{Identity: 5678, Labels: []string{"k8s:app=kafka"}},
			SourceNames: []string{"producer.example.com."},
			L7:          &flowpb.Layer7{Type: flowpb.L7FlowType_REQUEST, LatencyNs: 5, Record: &flowpb.Layer7_Kafka{Kafka: k}},
		}
	}
	unknown := func(f *flowpb.Flow, num protowire.Number) *flowpb.Flow {
		b := protowire.AppendTag(nil, num, protowire.BytesType)
		f.ProtoReflect().SetUnknown(protowire.AppendBytes(b, []byte("newer cilium")))
		return f
	}
	endpoint := func(ep *flowpb.Endpoint, names []string, ip string) *flowpb.Flow {
		return &flowpb.Flow{Type: flowpb.FlowType_L3_L4, Verdict: flowpb.Verdict_FORWARDED,
			IP: &flowpb.IP{Source: ip, Destination: "10.9.9.9"}, Source: ep, SourceNames: names,
			Destination: &flowpb.Endpoint{Identity: 2}}
	}
	long := make([]*flowpb.Workload, 40)
	for i := range long {
		long[i] = &flowpb.Workload{Name: fmt.Sprintf("workload-with-a-long-name-%02d", i), Kind: "Deployment"}
	}
	l7NoRecord := &flowpb.Flow{Type: flowpb.FlowType_L7, L7: &flowpb.Layer7{Type: flowpb.L7FlowType_SAMPLE, LatencyNs: 1}}
	l7UnknownRecord := &flowpb.Flow{Type: flowpb.FlowType_L7, L7: &flowpb.Layer7{Type: flowpb.L7FlowType_REQUEST}}
	l7UnknownRecord.L7.ProtoReflect().SetUnknown(protowire.AppendBytes(protowire.AppendTag(nil, 103, protowire.BytesType), []byte{0x0a, 0x01, 'x'}))

	flows := []*flowpb.Flow{
		// gRPC by content-type, whatever the rest says
		httpFlow(&flowpb.HTTP{Method: "GET", Protocol: "HTTP/1.1", Url: "http://a/b", Headers: hdr("Content-Type", "application/grpc+proto", "x-request-id", "id-1")}),
		httpFlow(&flowpb.HTTP{Headers: hdr("content-type", "application/grpc")}),
		// only the first content-type counts; a value is case-sensitive
		httpFlow(&flowpb.HTTP{Method: "POST", Headers: hdr("content-type", "text/plain", "content-type", "application/grpc")}),
		httpFlow(&flowpb.HTTP{Method: "POST", Headers: hdr("content-type", "Application/gRPC")}),
		// gRPC by HTTP/2 POST to /package.Service/Method only
		httpFlow(&flowpb.HTTP{Method: "POST", Protocol: "HTTP/2", Url: "http://cart:7070/hipstershop.CartService/GetCart"}),
		httpFlow(&flowpb.HTTP{Method: "POST", Protocol: "HTTP/2", Url: "http://cart:7070/hipstershop.CartService/GetCart/extra"}),
		httpFlow(&flowpb.HTTP{Method: "GET", Protocol: "HTTP/2", Url: "http://cart:7070/hipstershop.CartService/GetCart"}),
		httpFlow(&flowpb.HTTP{Method: "POST", Protocol: "HTTP/1.1", Url: "http://cart:7070/hipstershop.CartService/GetCart"}),
		httpFlow(&flowpb.HTTP{Method: "POST", Protocol: "HTTP/2", Url: "http://cart:7070/NoPackage/GetCart"}),
		httpFlow(&flowpb.HTTP{Method: "POST", Protocol: "HTTP/2", Url: "HTTP://cart:7070/hipstershop.CartService/GetCart"}),
		httpFlow(&flowpb.HTTP{Method: "POST", Protocol: "HTTP/2", Url: "http://cart:7070/hipstershop.CartService/GetCart\n"}),
		// plain HTTP; request IDs by any case of the header name, the
		// first one, empty ones NULL; Unicode letters Go folds onto ASCII
		// (long s, Kelvin sign) and one it does not (dotted capital I)
		httpFlow(&flowpb.HTTP{Code: 200, Method: "GET", Protocol: "HTTP/1.1", Url: "http://frontend/cart?x=1", Headers: hdr("X-Request-ID", "id-2", "x-request-id", "id-3")}),
		httpFlow(&flowpb.HTTP{Code: 503, Method: "GET", Url: "http://frontend/", Headers: hdr("x-request-id", "", "x-request-id", "id-4")}),
		httpFlow(&flowpb.HTTP{Method: "GET", Headers: hdr("x-reque\u017ft-id", "id-5")}),
		httpFlow(&flowpb.HTTP{Method: "GET", Headers: hdr("X-REQUEST-ID", "id-6", "\u212a", "kelvin")}),
		httpFlow(&flowpb.HTTP{Method: "GET", Headers: hdr("x-request-\u0130d", "id-7", "content-type", "application/grpc")}),
		httpFlow(&flowpb.HTTP{Method: "GET", Headers: hdr("x-request-id-not", "id-8")}),
		// an HTTP record without method, and an empty one
		httpFlow(&flowpb.HTTP{Code: 200, Url: "http://frontend/"}),
		httpFlow(&flowpb.HTTP{}),
		// DNS
		{Type: flowpb.FlowType_L7, L7: &flowpb.Layer7{Type: flowpb.L7FlowType_RESPONSE, Record: &flowpb.Layer7_Dns{Dns: &flowpb.DNS{Query: "cart.default.svc.cluster.local.", Rcode: 3}}}},
		{Type: flowpb.FlowType_L7, L7: &flowpb.Layer7{Record: &flowpb.Layer7_Dns{Dns: &flowpb.DNS{}}}},
		// kafka: with a record, an empty record, fields before l7 (one
		// longer than 127 bytes: a two-byte length) and unknown fields after
		kafkaFlow(&flowpb.Kafka{ApiKey: "produce", Topic: "orders", CorrelationId: 7}),
		kafkaFlow(&flowpb.Kafka{}),
		func() *flowpb.Flow { f := kafkaFlow(&flowpb.Kafka{Topic: "big"}); f.Source.Workloads = long; return f }(),
		unknown(kafkaFlow(&flowpb.Kafka{Topic: "t"}), 999),
		{L7: &flowpb.Layer7{Record: &flowpb.Layer7_Kafka{Kafka: &flowpb.Kafka{Topic: "bare"}}}},
		// L7 without a record, or with one unknown to this build
		l7NoRecord,
		unknown(&flowpb.Flow{Type: flowpb.FlowType_L7, L7: &flowpb.Layer7{}}, 998),
		l7UnknownRecord,
		// no L7, with and without a residual
		{Type: flowpb.FlowType_L3_L4, Source: &flowpb.Endpoint{Workloads: []*flowpb.Workload{{Name: "a"}, {Name: "b"}}}},
		unknown(&flowpb.Flow{Type: flowpb.FlowType_L3_L4}, 15000),
		{},
		// naming: workload, app label (in preference order, an empty
		// value counting as none), pod, DNS name, IP, nothing
		endpoint(&flowpb.Endpoint{Workloads: []*flowpb.Workload{{Name: "checkout"}}, Labels: []string{"k8s:app=other"}, PodName: "checkout-1", Identity: 2}, []string{"x."}, "10.1.1.1"),
		endpoint(&flowpb.Endpoint{Workloads: []*flowpb.Workload{{Name: ""}}, Labels: []string{"k8s:app=cart", "k8s:app.kubernetes.io/name=cart-svc"}, PodName: "cart-1"}, nil, "10.1.1.2"),
		endpoint(&flowpb.Endpoint{Labels: []string{"k8s:k8s-app=kube-dns", "k8s:name=dns"}, PodName: "coredns-1"}, nil, "10.1.1.3"),
		endpoint(&flowpb.Endpoint{Labels: []string{"app=", "k8s:name=named"}, PodName: "pod-only"}, nil, "10.1.1.4"),
		endpoint(&flowpb.Endpoint{Labels: []string{"k8s:io.kubernetes.pod.namespace=default"}, PodName: "pod-2", Identity: 1}, nil, "10.1.1.5"),
		endpoint(&flowpb.Endpoint{Identity: 16777217}, []string{"api.example.com.", "other."}, "203.0.113.1"),
		endpoint(&flowpb.Endpoint{}, []string{"..."}, "203.0.113.2"),
		endpoint(&flowpb.Endpoint{}, []string{""}, "203.0.113.3"),
		endpoint(nil, []string{"nameonly.example."}, ""),
		endpoint(nil, nil, "203.0.113.4"),
		endpoint(nil, nil, ""),
		{Source: &flowpb.Endpoint{}, Destination: &flowpb.Endpoint{}},
	}
	// each reserved identity, one past them, and none, on both sides
	for id := uint32(0); id <= 11; id++ {
		flows = append(flows, &flowpb.Flow{Type: flowpb.FlowType_L3_L4,
			IP:     &flowpb.IP{Source: "192.0.2.1", Destination: "192.0.2.2"},
			Source: &flowpb.Endpoint{Identity: id}, Destination: &flowpb.Endpoint{Identity: 11 - id},
			DestinationNames: []string{"dest.example."}})
	}
	for i, f := range flows {
		f.Time = at(i)
	}
	return flows
}

// writeOld writes flows as a flowtape of schema version would have: the
// current writer's columns without those the version lacks, and
// http_request_id where it stored it (1.1 to 1.3), as the current
// derivation computes it.
func writeOld(t *testing.T, path, version string, flows []*flowpb.Flow, lacks []string) {
	t.Helper()
	enc := schema.Flows.NewEncoder(nil)
	defer enc.Release()
	ids := array.NewStringBuilder(memory.DefaultAllocator)
	defer ids.Release()
	for _, f := range flows {
		if err := enc.Append(f); err != nil {
			t.Fatal(err)
		}
		if id := schema.RequestID(f); id != "" {
			ids.Append(id)
		} else {
			ids.AppendNull()
		}
	}
	rec := enc.NewRecord()
	defer rec.Release()
	idCol := ids.NewArray()
	defer idCol.Release()
	var fields []arrow.Field
	var cols []arrow.Array
	for i, fd := range rec.Schema().Fields() {
		if !slices.Contains(lacks, fd.Name) {
			fields = append(fields, fd)
			cols = append(cols, rec.Column(i))
		}
	}
	if !slices.Contains(lacks, "http_request_id") {
		fields = append(fields, arrow.Field{Name: "http_request_id", Type: arrow.BinaryTypes.String, Nullable: true})
		cols = append(cols, idCol)
	}
	md := arrow.NewMetadata([]string{schema.MetaSchemaVersion, schema.MetaKind, schema.MetaWriter}, []string{version, schema.KindFlows, "flowtape " + version})
	sch := arrow.NewSchema(fields, &md)
	old := array.NewRecordBatch(sch, cols, rec.NumRows())
	defer old.Release()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(sch, f, nil, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range md.Keys() {
		if err := w.AppendKeyValueMetadata(k, md.Values()[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Write(old); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// derivedRows reads columns of a Parquet file in DuckDB without the
// engine, in file order.
func derivedRows(t *testing.T, q string, cols []string) [][]any {
	t.Helper()
	db := analyze.OpenDuckDB(t)
	rows, err := db.Query(fmt.Sprintf(q, strings.Join(cols, ", ")))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	res, err := analyze.ScanTable(rows)
	if err != nil {
		t.Fatal(err)
	}
	return res.Rows
}

// engineRows reads columns of flows_all, every row of the files once, in
// file order.
func engineRows(t *testing.T, e *analyze.Engine, cols []string) [][]any {
	t.Helper()
	res, err := e.Query(context.Background(), "SELECT "+strings.Join(cols, ", ")+" FROM flows_all")
	if err != nil {
		t.Fatal(err)
	}
	return res.Rows
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// describe says enough of a flow to find it.
func describe(f *flowpb.Flow) string {
	s := fmt.Sprintf("l7 %v, source %v, destination %v", f.GetL7(), f.GetSource(), f.GetDestination())
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// ClickHouse finds a flow's request ID as DuckDB does, in flow files that
// store it (schema 1.3) and in those that do not (1.4 on), both in the
// directory of one hour, which ClickHouse reads as one glob with the
// columns of one of its files.
func TestClickHouseRequestIDOfEveryVersion(t *testing.T) {
	testutil.NeedCHDB(t)
	ctx := context.Background()
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	flows := append(sim.NewSource(sim.Scenarios["incident"], 5, 200, start).Take(1500), derivationFlows(start)...)
	dir := t.TempDir()
	hour := filepath.Join(dir, "flows", "date=2026-11-25", "hour=13")
	if err := os.MkdirAll(hour, 0o755); err != nil {
		t.Fatal(err)
	}
	half := len(flows) / 2
	for i, part := range []struct {
		version string
		lacks   []string
		flows   []*flowpb.Flow
	}{{"1.3", derivedColumns["1.3"], flows[:half]}, {"1.4", derivedColumns["1.4"], flows[half:]}} {
		writeOld(t, filepath.Join(hour, fmt.Sprintf("20261125T130000Z-s%d-000001.parquet", i)), part.version, part.flows, part.lacks)
	}
	const q = "SELECT count(*), count(http_request_id), count(DISTINCT http_request_id) FROM flows"
	ids := 0
	for _, f := range flows {
		if schema.RequestID(f) != "" {
			ids++
		}
	}
	duck, err := open(t, dir).Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	got, err := openCHDB(t, dir).Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(duck.Rows[0][:2]) != fmt.Sprint([]any{int64(len(flows)), int64(ids)}) {
		t.Errorf("DuckDB: %v flows and request IDs, want %d and %d", duck.Rows[0][:2], len(flows), ids)
	}
	if fmt.Sprint(got.Rows) != fmt.Sprint(duck.Rows) {
		t.Errorf("ClickHouse: %v, DuckDB: %v", got.Rows, duck.Rows)
	}
}
