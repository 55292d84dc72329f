package testutil

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/proto"

	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/sim"
)

// WriteRecording writes responses as a recording directory laid out as the
// recorder lays it out (one flows file and one events file, named after id,
// in the partition of their first row), without going through record.
func WriteRecording(t testing.TB, dir, id string, resps []*observerpb.GetFlowsResponse) {
	t.Helper()
	var flows []*flowpb.Flow
	var events []*observerpb.GetFlowsResponse
	for _, r := range resps {
		if f := r.GetFlow(); f != nil {
			flows = append(flows, f)
		} else {
			events = append(events, r)
		}
	}
	name := "20260101T000000Z-" + id + "-000001.parquet"
	if len(flows) > 0 {
		WriteParquet(t, filepath.Join(dir, "flows", schema.Partition(flows[0].GetTime().AsTime()), name), schema.Flows, flows, schema.WriterOptions{})
	}
	if len(events) > 0 {
		WriteParquet(t, filepath.Join(dir, "events", schema.Partition(events[0].GetTime().AsTime()), name), schema.Events, events, schema.WriterOptions{})
	}
}

// WriteParquet writes rows of a table to a Parquet file, making its
// directory.
func WriteParquet[M proto.Message](t testing.TB, p string, tab *schema.Table[M], ms []M, o schema.WriterOptions) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := schema.NewFileWriter(tab, f, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if err := w.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// SimResponses are the simulator's flows of a scenario from start until
// end, as GetFlows responses.
func SimResponses(scen sim.Scenario, seed uint64, rate float64, start, end time.Time) []*observerpb.GetFlowsResponse {
	src := sim.NewSource(scen, seed, rate, start)
	var out []*observerpb.GetFlowsResponse
	for {
		f := src.Next()
		if f.GetTime().AsTime().After(end) {
			return out
		}
		out = append(out, schema.FlowResponse(f))
	}
}
