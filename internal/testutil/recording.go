package testutil

import (
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
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
// recorder lays it out (a flows file per hour partition, with its derived
// files, and events alike, each row in the partition of its own time, see
// tape.Partition; named after id), without going through record.
func WriteRecording(t testing.TB, dir, id string, resps []*observerpb.GetFlowsResponse) {
	t.Helper()
	flows := map[string][]*flowpb.Flow{}
	events := map[string][]*observerpb.GetFlowsResponse{}
	for _, r := range resps {
		part := tape.Partition(r.GetTime().AsTime())
		if f := r.GetFlow(); f != nil {
			part = tape.Partition(f.GetTime().AsTime())
			flows[part] = append(flows[part], f)
		} else {
			events[part] = append(events[part], r)
		}
	}
	writeByHour(t, filepath.Join(dir, "flows"), id, schema.Flows, flows)
	writeByHour(t, filepath.Join(dir, "events"), id, schema.Events, events)
}

// writeByHour writes each hour's rows to a file of that partition under
// base, the files in hour order, numbered as a session numbers them.
func writeByHour[M proto.Message](t testing.TB, base, id string, tab *schema.Table[M], byHour map[string][]M) {
	t.Helper()
	for i, part := range slices.Sorted(maps.Keys(byHour)) {
		name := tape.FileName(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), id, i+1)
		if err := tape.WriteFile(tab, filepath.Join(base, part, name), byHour[part], tape.WriterOptions{}); err != nil {
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
