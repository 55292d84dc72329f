package tape_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"
	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// A read with since/until opens only the files of the hours it overlaps
// and reads only the row groups whose times it overlaps: what lies outside
// is never read, which the test proves by making it unreadable.
func TestScanReadsOnlyWhatTheWindowOverlaps(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	flowsAt := func(from time.Time, n int) []*flowpb.Flow {
		var out []*flowpb.Flow
		for i := range n {
			out = append(out, &flowpb.Flow{Time: timestamppb.New(from.Add(time.Duration(i) * time.Second)), NodeName: "n1", Verdict: flowpb.Verdict_FORWARDED})
		}
		return out
	}
	// Hour 13: two row groups, 13:00:00-13:00:09 and 13:00:10-13:00:19.
	early := filepath.Join(dir, "flows", tape.Partition(start), "20261125T130000Z-rec1-000001.parquet")
	testutil.WriteParquet(t, early, schema.Flows, flowsAt(start, 20), tape.WriterOptions{RowGroupRows: 10})
	// Hour 14: a file that is not Parquet at all.
	late := filepath.Join(dir, "flows", tape.Partition(start.Add(time.Hour)), "20261125T140000Z-rec1-000002.parquet")
	testutil.WriteParquet(t, late, schema.Flows, flowsAt(start.Add(time.Hour), 5), tape.WriterOptions{RowGroupRows: 10})
	if err := os.WriteFile(late, []byte("not parquet"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The second row group of hour 13: garbage where its pages start.
	rdr, err := file.OpenParquetFile(early, false)
	if err != nil {
		t.Fatal(err)
	}
	rg := rdr.MetaData().RowGroup(1)
	var offsets []int64
	for c := 0; c < rg.NumColumns(); c++ {
		cc, err := rg.ColumnChunk(c)
		if err != nil {
			t.Fatal(err)
		}
		offsets = append(offsets, cc.DataPageOffset())
		if cc.HasDictionaryPage() {
			offsets = append(offsets, cc.DictionaryPageOffset())
		}
	}
	rdr.Close()
	f, err := os.OpenFile(early, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range offsets {
		if _, err := f.WriteAt([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	files, err := tape.FindFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	scan := func(w tape.Window) (int, error) {
		n := 0
		err := tape.Scan(context.Background(), files, w, func(*observerpb.GetFlowsResponse) error {
			n++
			return nil
		})
		return n, err
	}
	n, err := scan(tape.Window{Since: start.Add(2 * time.Second), Until: start.Add(5 * time.Second)})
	if err != nil || n != 4 {
		t.Errorf("window inside the first row group: %d flows, error %v; want 4 and no error (nothing else read)", n, err)
	}
	if _, err := scan(tape.Window{Since: start.Add(2 * time.Second), Until: start.Add(12 * time.Second)}); err == nil {
		t.Error("a window into the damaged row group read no damage: the test proves nothing")
	}
	if _, err := scan(tape.Window{Since: start.Add(time.Hour)}); err == nil {
		t.Error("a window into the damaged hour read no damage: the test proves nothing")
	}
}
