package tape_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowtape/flowtape/tape"
)

func walsOf(t *testing.T, dir, id string) []string {
	t.Helper()
	wals, err := filepath.Glob(filepath.Join(dir, "flows", "*", "*", ".*"+id+"*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	return wals
}

// Several writers share a directory, each as a session of its own: a
// writer that starts recovers what a killed session left, and leaves the
// files of a live one alone; the recording then holds every flow of both
// once. Recover, which needs the directory to itself, is refused meanwhile.
func TestSessionsShareADirectory(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	open := func(id string) (*tape.Dir, *tape.Sink) {
		d, err := tape.OpenSession(dir, id)
		if err != nil {
			t.Fatal(err)
		}
		s, err := tape.NewSink(tape.SinkOptions{Dir: dir, RecordingID: id, Writer: "test", RowGroupRows: 64})
		if err != nil {
			t.Fatal(err)
		}
		return d, s
	}
	write := func(s *tape.Sink, flows int, prefix string) {
		for _, f := range flowsOver(start, 1, flows, prefix) {
			if err := s.WriteFlow(f); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	liveDir, live := open("aaaa0001")
	write(live, 500, "live-")
	// Rows written since its last flush: its pieces being written (the
	// flows' and the derived tables') are hidden files of its own.
	for _, f := range flowsOver(start.Add(10*time.Minute), 1, 200, "more-") {
		if err := live.WriteFlow(f); err != nil {
			t.Fatal(err)
		}
	}
	deadDir, dead := open("bbbb0002")
	write(dead, 300, "dead-")
	_ = dead        // killed: its files are left as they are
	deadDir.Close() // the process is gone, and its locks with it

	// Every hidden file but the killed session's is the live one's.
	var liveHidden []string
	all, _ := filepath.Glob(filepath.Join(dir, "*", "*", "*", ".*"))
	for _, p := range all {
		if !strings.Contains(filepath.Base(p), "bbbb0002") {
			liveHidden = append(liveHidden, p)
		}
	}
	if _, err := tape.Recover(dir, "test"); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("recover while a session writes: %v, want a refusal", err)
	}
	if _, err := tape.OpenSession(dir, "aaaa0001"); err == nil {
		t.Error("a second writer of a live session was let in")
	}
	third, err := tape.OpenSession(dir, "cccc0003")
	if err != nil {
		t.Fatal(err)
	}
	st, err := third.Recover("test")
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != 300 || len(walsOf(t, dir, "bbbb0002")) != 0 {
		t.Errorf("recovered %d rows, WALs of the killed session left: %v; want its 300", st.Rows, walsOf(t, dir, "bbbb0002"))
	}
	if len(walsOf(t, dir, "aaaa0001")) == 0 {
		t.Fatal("the live session's WAL was recovered from under it")
	}
	for _, p := range liveHidden {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("the live session's %s was removed by another's recovery", p)
		}
	}
	if len(liveHidden) < 8 {
		t.Errorf("the live session had %d hidden files: the test checks less than it should", len(liveHidden))
	}
	third.Close()
	// The live session goes on as if nothing happened.
	if err := live.Sync(); err != nil {
		t.Fatalf("the live session after another's recovery: %v", err)
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	liveDir.Close()
	seen := uuidsIn(t, dir)
	if len(seen) != 1000 {
		t.Errorf("%d flows in the recording, want 1000", len(seen))
	}
	for u, n := range seen {
		if n != 1 {
			t.Errorf("flow %s read %d times", u, n)
		}
	}
	if locks, _ := filepath.Glob(filepath.Join(dir, ".session-*")); len(locks) != 0 {
		t.Errorf("session locks left behind: %v", locks)
	}
	if _, err := os.Stat(filepath.Join(dir, ".lock")); err != nil {
		t.Error(err)
	}
}
