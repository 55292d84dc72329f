package testutil

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/proto"

	"github.com/flowtape/flowtape/internal/observer"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// WriteRecording writes responses as a recording directory laid out as the
// recorder lays it out (one flows file, with its derived files, and one
// events file, named after id, in the partition of their first row),
// without going through record.
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
	name := tape.FileName(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), id, 1)
	if len(flows) > 0 {
		p := filepath.Join(dir, "flows", tape.Partition(flows[0].GetTime().AsTime()), name)
		if err := tape.WriteFile(schema.Flows, p, flows, tape.WriterOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(events) > 0 {
		p := filepath.Join(dir, "events", tape.Partition(events[0].GetTime().AsTime()), name)
		if err := tape.WriteFile(schema.Events, p, events, tape.WriterOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// WriteParquet writes rows of a table to a Parquet file, making its
// directory.
func WriteParquet[M proto.Message](t testing.TB, p string, tab *schema.Table[M], ms []M, o tape.WriterOptions) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	WriteRows(t, f, tab, ms, o)
}

// WriteRows writes rows of a table as a Parquet stream to w, and closes w
// if it is a closer.
func WriteRows[M proto.Message](t testing.TB, w io.Writer, tab *schema.Table[M], ms []M, o tape.WriterOptions) {
	t.Helper()
	fw, err := tape.NewFileWriter(tab, w, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if err := fw.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Close(); err != nil {
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
		out = append(out, observer.FlowResponse(f))
	}
}
