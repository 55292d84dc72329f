package tape_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// liveFlows are n flows of one hour with uuids from "f<first>" on.
func liveFlows(start time.Time, first, n int) []*flowpb.Flow {
	out := make([]*flowpb.Flow, n)
	for i := range out {
		k := first + i
		out[i] = &flowpb.Flow{Uuid: fmt.Sprintf("f%07d", k), Time: timestamppb.New(start.Add(time.Duration(k) * time.Millisecond)),
			NodeName: "n1", Verdict: flowpb.Verdict_FORWARDED}
	}
	return out
}

func openLiveSink(t *testing.T, dir string, o tape.SinkOptions) (*tape.Sink, *tape.Dir) {
	t.Helper()
	d, err := tape.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	o.Dir, o.RecordingID, o.Writer = dir, "0123abcd", "test"
	s, err := tape.NewSink(o)
	if err != nil {
		d.Close()
		t.Fatal(err)
	}
	return s, d
}

// uuidsIn reads every flow of a recording as a reader would.
func uuidsIn(t *testing.T, dir string) map[string]int {
	t.Helper()
	files, err := tape.FindFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	if err := tape.Scan(context.Background(), files, tape.Window{}, func(r *observerpb.GetFlowsResponse) error {
		seen[r.GetFlow().GetUuid()]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return seen
}

func parquetFiles(t *testing.T, dir string) (pieces, files int) {
	t.Helper()
	return kindFiles(t, dir, "flows")
}

// kindFiles counts the pieces and other files of one kind of a recording.
func kindFiles(t *testing.T, dir, kind string) (pieces, files int) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(dir, kind), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".parquet") || strings.HasPrefix(d.Name(), ".") {
			return err
		}
		if strings.Contains(d.Name(), ".p0") {
			pieces++
		} else {
			files++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pieces, files
}

// What a live recorder has flushed is readable at once, each flow once:
// in pieces before its file ends, in the file after; the pieces go when
// the recorder closes.
func TestLiveRecordingIsReadableAfterEachFlush(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	s, d := openLiveSink(t, dir, tape.SinkOptions{RotateRows: 250})
	defer d.Close()
	write := func(fs []*flowpb.Flow) {
		for _, f := range fs {
			if err := s.WriteFlow(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(when string, want int, wantPieces, wantFiles int) {
		t.Helper()
		seen := uuidsIn(t, dir)
		if len(seen) != want {
			t.Errorf("%s: a reader sees %d flows, want %d", when, len(seen), want)
		}
		for u, n := range seen {
			if n != 1 {
				t.Errorf("%s: %s read %d times", when, u, n)
			}
		}
		if p, f := parquetFiles(t, dir); p != wantPieces || f != wantFiles {
			t.Errorf("%s: %d pieces and %d files on disk, want %d and %d", when, p, f, wantPieces, wantFiles)
		}
	}
	write(liveFlows(start, 0, 100))
	if _, err := tape.FindFiles(dir); err == nil {
		t.Error("flows are visible before a flush")
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	check("after the first flush", 100, 1, 0)
	write(liveFlows(start, 100, 100))
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	check("after the second flush", 200, 2, 0)
	// The 250th row ends the file: it holds the pieces' rows and the 50
	// rows never flushed as a piece; the pieces stay for readers that
	// listed them, but no reader counts them.
	write(liveFlows(start, 200, 60))
	check("after the file ended", 250, 2, 1)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	check("after the next flush", 260, 3, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check("after close", 260, 0, 2)
	if hidden, _ := filepath.Glob(filepath.Join(dir, "flows", "*", "*", ".*")); len(hidden) > 0 {
		t.Errorf("after close, unfinished files are left: %v", hidden)
	}
}

// A reader looping while the recorder writes, flushes and ends files never
// counts a flow twice, nor misses one flushed before it listed the files.
func TestReaderDuringRotationCountsEachFlowOnce(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	s, d := openLiveSink(t, dir, tape.SinkOptions{RotateRows: 700})
	defer d.Close()
	var flushed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, errs atomic.Int64
	var mu sync.Mutex
	var failures []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			atLeast := flushed.Load()
			files, err := tape.FindFiles(dir)
			if err != nil {
				continue // nothing flushed yet
			}
			seen := map[string]int{}
			err = tape.Scan(context.Background(), files, tape.Window{}, func(r *observerpb.GetFlowsResponse) error {
				seen[r.GetFlow().GetUuid()]++
				return nil
			})
			if err != nil {
				// A piece listed just before the writer closed; the
				// writer keeps them while it runs, so only at close.
				errs.Add(1)
				continue
			}
			reads.Add(1)
			mu.Lock()
			if int64(len(seen)) < atLeast {
				failures = append(failures, fmt.Sprintf("saw %d flows, %d were flushed before the listing", len(seen), atLeast))
			}
			for u, n := range seen {
				if n != 1 {
					failures = append(failures, fmt.Sprintf("%s read %d times", u, n))
				}
			}
			mu.Unlock()
		}
	}()
	const batches, batch = 60, 97
	for i := 0; i < batches; i++ {
		for _, f := range liveFlows(start, i*batch, batch) {
			if err := s.WriteFlow(f); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		flushed.Store(int64((i + 1) * batch))
		time.Sleep(2 * time.Millisecond) // let the reader take turns
	}
	close(stop)
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range failures[:min(len(failures), 10)] {
		t.Error(f)
	}
	if reads.Load() < 5 {
		t.Fatalf("the reader read only %d times: the test proves nothing", reads.Load())
	}
	if errs.Load() > 0 {
		t.Errorf("%d reads failed while the writer ran", errs.Load())
	}
	if seen := uuidsIn(t, dir); len(seen) != batches*batch {
		t.Errorf("after close: %d flows, want %d", len(seen), batches*batch)
	}
	t.Logf("%d reads", reads.Load())
}

// After a crash, recovery publishes each segment's file from its WAL and
// removes the segment's pieces: the rows are there once.
func TestRecoverReplacesPiecesWithTheirFile(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	s, d := openLiveSink(t, dir, tape.SinkOptions{})
	for _, f := range liveFlows(start, 0, 300) {
		if err := s.WriteFlow(f); err != nil {
			t.Fatal(err)
		}
		if f.GetUuid() == "f0000149" {
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	// The process dies here: nothing is closed.
	d.Close()
	if p, f := parquetFiles(t, dir); p != 2 || f != 0 {
		t.Fatalf("before recovery: %d pieces and %d files, want 2 and 0", p, f)
	}
	st, err := tape.Recover(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	// Each flow piece had its derived pieces, which go too.
	if want := 2 * (1 + len(schema.DerivedKinds)); st.Files != 1 || st.Rows != 300 || st.Removed != want {
		t.Errorf("recovery: %+v, want 1 file of 300 rows, %d pieces removed", st, want)
	}
	for _, kind := range append([]string{"flows"}, schema.DerivedKinds...) {
		if p, f := kindFiles(t, dir, kind); p != 0 || f != 1 {
			t.Errorf("after recovery: %d pieces and %d files of %s, want 0 and 1", p, f, kind)
		}
	}
	if seen := uuidsIn(t, dir); len(seen) != 300 {
		t.Errorf("after recovery: %d flows, want 300", len(seen))
	}
}

// A flush whose derived pieces cannot all be published publishes none of
// them and no flow piece; the segment's pieces stop, and its file holds
// every row.
func TestLivePiecesAllOrNone(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	s, d := openLiveSink(t, dir, tape.SinkOptions{})
	defer d.Close()
	write := func(first, n int) {
		for _, f := range liveFlows(start, first, n) {
			if err := s.WriteFlow(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(0, 100)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	// The second pods piece's name is taken (by a directory).
	pods, _ := filepath.Glob(filepath.Join(dir, "pods", "*", "*", "*.p000001.parquet"))
	if len(pods) != 1 {
		t.Fatalf("%d pods pieces, want 1", len(pods))
	}
	if err := os.Mkdir(strings.Replace(pods[0], ".p000001", ".p000002", 1), 0o755); err != nil {
		t.Fatal(err)
	}
	write(100, 100)
	if err := s.Sync(); err == nil || !strings.Contains(err.Error(), "p000002") {
		t.Fatalf("sync: %v, want an error naming the piece", err)
	}
	for _, kind := range append([]string{"flows"}, schema.DerivedKinds...) {
		if p, _ := kindFiles(t, dir, kind); p != 1 {
			t.Errorf("%s: %d pieces, want the first only", kind, p)
		}
	}
	write(200, 100)
	if err := s.Sync(); err != nil {
		t.Fatalf("sync after the pieces stopped: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if seen := uuidsIn(t, dir); len(seen) != 300 {
		t.Errorf("%d flows, want 300", len(seen))
	}
	for _, kind := range schema.DerivedKinds {
		if _, f := kindFiles(t, dir, kind); f != 1 {
			t.Errorf("%s: %d files, want 1", kind, f)
		}
	}
}

// A crash between publishing a segment's derived files and its flow file,
// and a WAL that cannot be recovered: the flow pieces stay, and so do
// their derived pieces (the derived files without a flow file go).
func TestRecoverKeepsDerivedPiecesOfFlowPieces(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	s, d := openLiveSink(t, dir, tape.SinkOptions{})
	for _, f := range liveFlows(start, 0, 100) {
		if err := s.WriteFlow(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	d.Close()
	// The derived finals published, the WAL lost.
	for _, kind := range schema.DerivedKinds {
		pieces, _ := filepath.Glob(filepath.Join(dir, kind, "*", "*", "*.p0*.parquet"))
		if len(pieces) != 1 {
			t.Fatalf("%s: %d pieces, want 1", kind, len(pieces))
		}
		b, err := os.ReadFile(pieces[0])
		if err != nil {
			t.Fatal(err)
		}
		final := pieces[0][:strings.LastIndex(pieces[0], ".p0")] + ".parquet"
		if err := os.WriteFile(final, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wals, _ := filepath.Glob(filepath.Join(dir, "flows", "*", "*", ".*.wal"))
	for _, w := range wals {
		os.Remove(w)
	}
	if _, err := tape.Recover(dir, "test"); err != nil {
		t.Fatal(err)
	}
	for _, kind := range append([]string{"flows"}, schema.DerivedKinds...) {
		if p, f := kindFiles(t, dir, kind); p != 1 || f != 0 {
			t.Errorf("after recovery: %d pieces and %d files of %s, want the piece only", p, f, kind)
		}
	}
}

func TestFileNamesOfOneSession(t *testing.T) {
	at := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	seg := tape.FileName(at, "0123abcd", 7)
	for _, c := range []struct {
		files []string
		want  int
	}{
		{[]string{seg, strings.TrimSuffix(seg, ".parquet") + ".p000001.parquet"}, 1},
		{[]string{seg, "20261125T130000Z-0123abcd-000001-000006.parquet"}, 1},
		{[]string{seg, "20261125T130000Z-99999999-000001.parquet"}, 2},
		{[]string{"flows.p000001.parquet", "flows.parquet"}, 2}, // not flowtape's names
	} {
		if got := tape.Sessions(c.files); got != c.want {
			t.Errorf("Sessions(%v) = %d, want %d", c.files, got, c.want)
		}
	}
}

// atFirstFinish copies dir where a segment first starts completing its
// file: what a crash there leaves. recovered returns that copy, recovered.
func atFirstFinish(t *testing.T, dir string) (recovered func() string) {
	t.Helper()
	var crashed string
	t.Cleanup(tape.SetCrashPoint(func(string) {
		if crashed != "" {
			return
		}
		crashed = filepath.Join(t.TempDir(), "crashed")
		if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
			t.Error(err)
		}
	}))
	return func() string {
		t.Helper()
		if crashed == "" {
			t.Fatal("no file was finished")
		}
		if _, err := tape.Recover(crashed, "test"); err != nil {
			t.Fatal(err)
		}
		return crashed
	}
}

func writeFlows(t *testing.T, s *tape.Sink, flows []*flowpb.Flow) {
	t.Helper()
	for _, f := range flows {
		if err := s.WriteFlow(f); err != nil {
			t.Fatal(err)
		}
	}
}

// wantEachOnce fails unless the recording in dir holds each of flows once.
func wantEachOnce(t *testing.T, dir string, flows []*flowpb.Flow, what string) {
	t.Helper()
	seen := uuidsIn(t, dir)
	for _, f := range flows {
		if seen[f.GetUuid()] != 1 {
			t.Fatalf("flow %s of %s: %d times after the crash, want once", f.GetUuid(), what, seen[f.GetUuid()])
		}
	}
}

// A crash while a file is being completed (at an hour's end, while the
// next hour's file already holds newer flows) loses none of its rows: its
// WAL holds them all, not only those of the last flush.
func TestCrashWhileFinishingLosesNoRows(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 59, 0, 0, time.UTC)
	s, d := openLiveSink(t, dir, tape.SinkOptions{})
	defer d.Close()
	recovered := atFirstFinish(t, dir)
	writeFlows(t, s, liveFlows(start, 0, 100))
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	// 50 more of 13:59, not flushed; then one of 14:00, after which the
	// next sync ends the 13:00 file.
	writeFlows(t, s, liveFlows(start, 100, 50))
	writeFlows(t, s, liveFlows(start, 60_000, 1))
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	wantEachOnce(t, recovered(), liveFlows(start, 0, 150), "the file being finished")
}

// The same when a file ends at its row limit while an older hour's file is
// still open for late flows: that file's unflushed rows are not lost behind
// the newer ones.
func TestCrashWhileFinishingKeepsOlderHours(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 59, 0, 0, time.UTC)
	s, d := openLiveSink(t, dir, tape.SinkOptions{RotateRows: 100})
	defer d.Close()
	recovered := atFirstFinish(t, dir)
	writeFlows(t, s, liveFlows(start, 0, 50))
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	// 30 more of 13:59, not flushed; then 100 of 14:00: the 14:00 file
	// ends at its 100th row, while the 13:00 one is still open.
	writeFlows(t, s, liveFlows(start, 50, 30))
	writeFlows(t, s, liveFlows(start, 60_000, 100))
	wantEachOnce(t, recovered(), liveFlows(start, 0, 80), "the older hour")
}
