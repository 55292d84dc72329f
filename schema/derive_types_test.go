package schema_test

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/schema"
)

// Flows whose columns have other types than the writer's are refused, and
// the error names the column: a reindex must fail, not derive tables from
// empty values and publish them.
func TestDeriveRefusesWrongColumnTypes(t *testing.T) {
	enc := schema.Flows.NewEncoder(nil)
	defer enc.Release()
	for i := 0; i < 3; i++ {
		f := &flowpb.Flow{Time: timestamppb.Now(), NodeName: "n1", Type: flowpb.FlowType_L7,
			L7: &flowpb.Layer7{Type: flowpb.L7FlowType_REQUEST, Record: &flowpb.Layer7_Http{Http: &flowpb.HTTP{
				Method: "GET", Url: "http://a/", Headers: []*flowpb.HTTPHeader{{Key: "X-Request-Id", Value: "r1"}}}}}}
		if err := enc.Append(f); err != nil {
			t.Fatal(err)
		}
	}
	rec := enc.NewRecord()
	defer rec.Release()
	var d schema.Deriver
	if _, err := d.Add(rec, false); err != nil {
		t.Fatalf("the writer's own columns: %v", err)
	}
	int8s := func() arrow.Array {
		b := array.NewInt8Builder(memory.DefaultAllocator)
		defer b.Release()
		for i := 0; i < int(rec.NumRows()); i++ {
			b.Append(1)
		}
		return b.NewArray()
	}
	// headers as a list of {key} alone
	keysOnly := func() arrow.Array {
		b := array.NewListBuilder(memory.DefaultAllocator, arrow.StructOf(arrow.Field{Name: "key", Type: arrow.BinaryTypes.String}))
		defer b.Release()
		sb := b.ValueBuilder().(*array.StructBuilder)
		for i := 0; i < int(rec.NumRows()); i++ {
			b.Append(true)
			sb.Append(true)
			sb.FieldBuilder(0).(*array.StringBuilder).Append("X-Request-Id")
		}
		return b.NewArray()
	}
	for _, tc := range []struct {
		name  string
		wrong func() arrow.Array
	}{
		{"node_name", int8s}, {"http_url", int8s}, {"http_headers", int8s}, {"source_port", int8s}, {"l7_latency_ns", int8s},
		{"http_headers", keysOnly},
	} {
		name := tc.name
		t.Run(name, func(t *testing.T) {
			wrong := tc.wrong()
			defer wrong.Release()
			fields := rec.Schema().Fields()
			cols := rec.Columns()
			idx := rec.Schema().FieldIndices(name)
			if len(idx) != 1 {
				t.Fatalf("no column %s", name)
			}
			fields[idx[0]] = arrow.Field{Name: name, Type: wrong.DataType(), Nullable: true}
			cols = append([]arrow.Array(nil), cols...)
			cols[idx[0]] = wrong
			bad := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows())
			defer bad.Release()
			var d schema.Deriver
			if _, err := d.Add(bad, false); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("derive with %s of type %s: %v, want an error naming it", name, wrong.DataType(), err)
			}
		})
	}
}
