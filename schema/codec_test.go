package schema_test

import (
	"strings"
	"testing"

	flowpb "github.com/cilium/cilium/api/v1/flow"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/schema"
)

func TestCheckVersion(t *testing.T) {
	tests := []struct {
		version string
		wantErr string
	}{
		{schema.Version, ""},
		{"1.7", ""},
		{"2.0", "schema version 2.0 is not supported"},
		{"", "not a flowtape recording file"},
		{"x", "malformed"},
	}
	for _, tt := range tests {
		err := schema.CheckVersion(tt.version)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("CheckVersion(%q) = %v, want error containing %q", tt.version, err, tt.wantErr)
		}
	}
}

// The flat columns, not just the residual, must carry the values: analyses
// read them with SQL.
func TestColumnsHoldValues(t *testing.T) {
	resps := testutil.LoadResponses(t, testutil.Testdata("samples", "basic-sample-5-http-flows.json"))
	enc := schema.Flows.NewEncoder(nil)
	defer enc.Release()
	for _, r := range resps {
		if err := enc.Append(r.GetFlow()); err != nil {
			t.Fatal(err)
		}
	}
	rec := enc.NewRecord()
	defer rec.Release()
	value := func(col string, row int) string {
		i := schema.Flows.ColumnIndex(col)
		if i < 0 {
			t.Fatalf("no column %s", col)
		}
		return rec.Column(i).ValueStr(row)
	}
	f := resps[3].GetFlow() // the 503 response of the sample
	checks := map[string]string{
		"verdict":              f.GetVerdict().String(),
		"l7_type":              "RESPONSE",
		"http_code":            "503",
		"http_method":          "GET",
		"l7_latency_ns":        "999958359",
		"destination_pod_name": f.GetDestination().GetPodName(),
		"source_namespace":     "kube-system",
		"l4_protocol":          "TCP",
		"is_reply":             "true",
		"destination_app":      "prometheus",
		"node_name":            f.GetNodeName(),
		"time":                 f.GetTime().AsTime().Format("2006-01-02T15:04:05.999999999"),
	}
	for col, want := range checks {
		if got := value(col, 3); !strings.HasPrefix(got, want) {
			t.Errorf("column %s = %q, want %q", col, got, want)
		}
	}
	// Everything in these flows has a column except the deprecated reply
	// flag's presence skeletons; the residual must stay small.
	extra := rec.Column(schema.Flows.ColumnIndex(schema.ExtraColumn))
	for i := 0; i < int(rec.NumRows()); i++ {
		if n := len(extra.ValueStr(i)); n > 64 {
			t.Errorf("row %d: residual is %d bytes, the columns miss something", i, n)
		}
	}
}

// A file from a flowtape built on a newer Cilium may hold enum names this
// build does not know: reading it fails with a clear message, never drops them.
func TestUnknownEnumNameIsAnError(t *testing.T) {
	enc := schema.Flows.NewEncoder(nil)
	defer enc.Release()
	if err := enc.Append(&flowpb.Flow{Verdict: flowpb.Verdict_DROPPED}); err != nil {
		t.Fatal(err)
	}
	rec := enc.NewRecord()
	defer rec.Release()
	cols := rec.Columns()
	i := schema.Flows.ColumnIndex("verdict")
	b := array.NewStringBuilder(memory.DefaultAllocator)
	b.Append("VERDICT_FROM_THE_FUTURE")
	newer := b.NewArray()
	defer newer.Release()
	cols2 := append([]arrow.Array(nil), cols...)
	cols2[i] = newer
	rec2 := array.NewRecordBatch(rec.Schema(), cols2, 1)
	defer rec2.Release()
	_, err := schema.Flows.Decode(rec2, 0)
	if err == nil || !strings.Contains(err.Error(), "VERDICT_FROM_THE_FUTURE") || !strings.Contains(err.Error(), "upgrade flowtape") {
		t.Fatalf("decode = %v, want a clear refusal", err)
	}
}
