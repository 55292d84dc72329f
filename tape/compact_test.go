package tape_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/tape"
)

// writeSession records flows (and a lost event per hour) as one session
// whose files end every rotate rows.
func writeSession(t *testing.T, dir, id string, flows []*flowpb.Flow, rotate int64) {
	t.Helper()
	d, err := tape.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s, err := tape.NewSink(tape.SinkOptions{Dir: dir, RecordingID: id, Writer: "test", RotateRows: rotate})
	if err != nil {
		t.Fatal(err)
	}
	hours := map[int]bool{}
	for i, f := range flows {
		if err := s.WriteFlow(f); err != nil {
			t.Fatal(err)
		}
		if h := f.GetTime().AsTime().Hour(); !hours[h] {
			hours[h] = true
			ev := &observerpb.GetFlowsResponse{NodeName: "n1", Time: f.GetTime(), ResponseTypes: &observerpb.GetFlowsResponse_LostEvents{
				LostEvents: &flowpb.LostEvent{Source: flowpb.LostEventSource_HUBBLE_RING_BUFFER, NumEventsLost: uint64(i + 1)}}}
			if err := s.WriteEvent(ev); err != nil {
				t.Fatal(err)
			}
		}
		if i%50 == 49 {
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// flowsOver are n flows spread over hours from start.
func flowsOver(start time.Time, hours, n int, prefix string) []*flowpb.Flow {
	out := make([]*flowpb.Flow, n)
	step := time.Duration(hours) * time.Hour / time.Duration(n)
	for i := range out {
		out[i] = &flowpb.Flow{Uuid: fmt.Sprintf("%s%06d", prefix, i), Time: timestamppb.New(start.Add(time.Duration(i) * step)),
			NodeName: "n1", Verdict: flowpb.Verdict_FORWARDED, Summary: prefix}
	}
	return out
}

// readAll reads a recording as a reader does: every response, sorted.
func readAll(t *testing.T, dir string) ([]*observerpb.GetFlowsResponse, tape.Files) {
	t.Helper()
	files, err := tape.FindFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []*observerpb.GetFlowsResponse
	if err := tape.Scan(context.Background(), files, tape.Window{}, func(r *observerpb.GetFlowsResponse) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(out, func(a, b *observerpb.GetFlowsResponse) int {
		return strings.Compare(a.String(), b.String())
	})
	return out, files
}

// Compaction merges each session's files of an hour into one, leaves other
// sessions' and foreign files apart, and changes no row.
func TestCompactMergesEachSessionsFilesOfAnHour(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	writeSession(t, dir, "aaaaaaaa", flowsOver(start, 2, 900, "a"), 100)
	writeSession(t, dir, "bbbbbbbb", flowsOver(start.Add(30*time.Minute), 1, 300, "b"), 120)
	before, filesBefore := readAll(t, dir)
	if n := len(filesBefore.Flows); n < 10 {
		t.Fatalf("%d flow files: the test needs many", n)
	}
	st, err := tape.Compact(context.Background(), dir, tape.CompactOptions{Writer: "test"})
	if err != nil {
		t.Fatal(err)
	}
	after, filesAfter := readAll(t, dir)
	testutil.SameMessages(t, "rows after compaction", after, before)
	// Session a: hours 13 and 14; session b: 13 and 14 (30 min from 13:30).
	if got := len(filesAfter.Flows); got != 4 {
		t.Errorf("%d flow files after compaction, want one per session and hour (4): %v", got, filesAfter.Flows)
	}
	if got, want := tape.Sessions(filesAfter.Flows), tape.Sessions(filesBefore.Flows); got != want {
		t.Errorf("%d sessions after compaction, %d before", got, want)
	}
	if st.Rows != 1200 { // the flows; each session has one event file per hour
		t.Errorf("stats %+v: %d rows written, want 1200", st, st.Rows)
	}
	if st.Removed != st.Files {
		t.Errorf("stats %+v: with no grace, every merged file is removed", st)
	}
	if hidden, _ := filepath.Glob(filepath.Join(dir, "*", "*", "*", ".*")); len(hidden) > 0 {
		t.Errorf("hidden files left: %v", hidden)
	}
	// Again: nothing to do.
	if st, err := tape.Compact(context.Background(), dir, tape.CompactOptions{Writer: "test"}); err != nil || st.Files != 0 {
		t.Errorf("second compaction: %+v, %v", st, err)
	}
}

// A reader looping while compaction switches partition after partition
// always counts every flow once, and never fails: the replaced files stay
// for the grace.
func TestReaderDuringCompactionCountsEachFlowOnce(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	const n = 4800
	writeSession(t, dir, "aaaaaaaa", flowsOver(start, 24, n, "a"), 40)
	var stop atomic.Bool
	var reads atomic.Int64
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			// count(*) as a reader gets it: from the footers of the
			// files it finds (and each file's rows once, see
			// TestCompactMergesEachSessionsFilesOfAnHour).
			files, infos, err := tape.FindAndStat(dir)
			var got int
			for _, p := range files.Flows {
				got += int(infos[p].Rows)
			}
			mu.Lock()
			if err != nil {
				failures = append(failures, err.Error())
			} else if got != n {
				failures = append(failures, fmt.Sprintf("a reader counted %d flows of %d", got, n))
			}
			mu.Unlock()
			reads.Add(1)
		}
	}()
	now := time.Now()
	clock := func() time.Time { return now }
	st, err := tape.Compact(context.Background(), dir, tape.CompactOptions{Writer: "test", Grace: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if st.Partitions != 24 || st.Kept == 0 || st.Removed != 0 {
		t.Errorf("within the grace: %+v, want 24 partitions switched and the merged files kept", st)
	}
	stop.Store(true)
	wg.Wait()
	// Past the grace, no reader can be reading them.
	now = now.Add(2 * time.Minute)
	st, err = tape.Compact(context.Background(), dir, tape.CompactOptions{Writer: "test", Grace: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if st.Removed == 0 || st.Kept != 0 {
		t.Errorf("after the grace: %+v, want the merged files removed", st)
	}
	for _, f := range failures[:min(10, len(failures))] {
		t.Error(f)
	}
	if files, err := tape.FindFiles(dir); err != nil || len(files.Flows) != 24 {
		t.Errorf("after compaction: %d flow files (%v), want one per hour", len(files.Flows), err)
	}
	if reads.Load() < 10 {
		t.Errorf("only %d reads during compaction: the test proves little", reads.Load())
	}
	t.Logf("%d reads during compaction", reads.Load())
}

// Every state a crash can leave compaction in reads as every flow once,
// and the next compaction finishes it.
func TestCompactionCrashStates(t *testing.T) {
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	const n = 300
	setup := func(t *testing.T) (dir, part string) {
		dir = t.TempDir()
		writeSession(t, dir, "aaaaaaaa", flowsOver(start, 1, n, "a"), 60)
		return dir, filepath.Join(dir, "flows", tape.Partition(start))
	}
	count := func(t *testing.T, dir, when string) {
		t.Helper()
		rows, _ := readAll(t, dir)
		flows := 0
		for _, r := range rows {
			if r.GetFlow() != nil {
				flows++
			}
		}
		if flows != n {
			t.Errorf("%s: %d flows read, want %d", when, flows, n)
		}
	}
	compactOnce := func(t *testing.T, dir string) {
		t.Helper()
		if _, err := tape.Compact(context.Background(), dir, tape.CompactOptions{Writer: "test", Grace: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("before the switch", func(t *testing.T) {
		dir, part := setup(t)
		// A compacted copy and its note are there, the copy still hidden.
		other := t.TempDir()
		writeSession(t, other, "aaaaaaaa", flowsOver(start, 1, n, "a"), 1000)
		src, _ := filepath.Glob(filepath.Join(other, "flows", "*", "*", "*.parquet"))
		b, _ := os.ReadFile(src[0])
		os.WriteFile(filepath.Join(part, ".compact-1.parquet.tmp"), b, 0o600)
		names, _ := filepath.Glob(filepath.Join(part, "*.parquet"))
		var note strings.Builder
		for _, p := range names {
			note.WriteString(filepath.Base(p) + "\n")
		}
		final := "20261125T130000Z-aaaaaaaa-000001-000005.parquet"
		os.WriteFile(filepath.Join(part, "."+final+".replaces"), []byte(note.String()), 0o600)
		count(t, dir, "crashed before the switch")
		compactOnce(t, dir)
		count(t, dir, "compacted after the crash")
	})
	t.Run("after the switch", func(t *testing.T) {
		dir, _ := setup(t)
		compactOnce(t, dir) // the replaced files stay for the grace: as if it died before removing them
		count(t, dir, "crashed after the switch")
		if st, err := tape.Compact(context.Background(), dir, tape.CompactOptions{Writer: "test"}); err != nil || st.Removed == 0 {
			t.Errorf("the next compaction: %+v, %v; want the replaced files removed", st, err)
		}
		count(t, dir, "after the next compaction")
	})
}

// A session compacted again while its last compaction still keeps the
// files it replaced waits for them to go: otherwise removing the older
// note's file first would bring back the files it named. A note that
// cannot be read stops readers rather than letting them count both.
func TestCompactionOverCompactedFiles(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	writeSession(t, dir, "aaaaaaaa", flowsOver(start.Add(10*time.Minute), 1, 200, "a")[:100], 25)
	now := time.Now()
	clock := func() time.Time { return now }
	compact := func(when string) tape.CompactStats {
		t.Helper()
		st, err := tape.Compact(context.Background(), dir, tape.CompactOptions{Writer: "test", Grace: time.Minute, Now: clock})
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		return st
	}
	compact("first")
	// More files of the session arrive (a late flow among them, earlier
	// than the compacted file's first), while the first compaction's
	// replaced files are kept.
	d, _ := tape.OpenDir(dir)
	s, _ := tape.NewSink(tape.SinkOptions{Dir: dir, RecordingID: "aaaaaaaa", Writer: "test", RotateRows: 25})
	for _, f := range append(flowsOver(start, 1, 200, "b")[:1], flowsOver(start.Add(30*time.Minute), 1, 200, "c")[:50]...) {
		if err := s.WriteFlow(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if st := compact("while the first keeps its files"); st.Waiting == 0 || st.Written != 0 {
		t.Errorf("compacted again within the grace: %+v, want the session to wait", st)
	}
	now = now.Add(2 * time.Minute)
	compact("after the grace")
	now = now.Add(2 * time.Minute)
	compact("after the next grace")
	rows, files := readAll(t, dir)
	flows := 0
	for _, r := range rows {
		if r.GetFlow() != nil {
			flows++
		}
	}
	if flows != 151 {
		t.Errorf("%d flows read, want 151", flows)
	}
	if len(files.Flows) != 1 {
		t.Errorf("flow files %v, want one", files.Flows)
	}
	// An unreadable note of a present file: readers refuse, naming it.
	notes, _ := filepath.Glob(filepath.Join(dir, "flows", "*", "*", "*.parquet"))
	note := filepath.Join(filepath.Dir(notes[0]), "."+filepath.Base(notes[0])+".replaces")
	if err := os.Mkdir(note, 0o700); err != nil { // a directory: reading it fails
		t.Fatal(err)
	}
	if _, err := tape.FindFiles(dir); err == nil || !strings.Contains(err.Error(), "unreadable") {
		t.Errorf("FindFiles with an unreadable note: %v", err)
	}
}
