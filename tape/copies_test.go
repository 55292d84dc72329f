package tape_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	observerpb "github.com/cilium/cilium/api/v1/observer"

	"github.com/flowtape/flowtape/tape"
)

// A recording given together with a copy of it (two directories, or a
// glob that matches both) is read once: its files are the same files,
// and read twice every count of one session's derived rows would double.
// A copy whose file was cut short is refused, naming both files.
func TestFindFilesReadsACopyOnce(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "rec")
	s, d := openLiveSink(t, rec, tape.SinkOptions{})
	flows := liveFlows(time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC), 0, 50)
	writeFlows(t, s, flows)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	d.Close()
	copied := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(copied, os.DirFS(rec)); err != nil {
		t.Fatal(err)
	}
	one, err := tape.FindFiles(rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, paths := range [][]string{{rec, copied}, {copied, rec}, {filepath.Join(filepath.Dir(copied), "*"), rec}} {
		files, err := tape.FindFiles(paths...)
		if err != nil {
			t.Fatal(err)
		}
		if len(files.Flows) != len(one.Flows) || len(files.Events) != len(one.Events) {
			t.Errorf("FindFiles(%v): %d flow and %d event files, want %d and %d: %v", paths, len(files.Flows), len(files.Events),
				len(one.Flows), len(one.Events), files.Flows)
		}
		if len(files.Copies) != len(one.Flows)+len(one.Events) {
			t.Errorf("FindFiles(%v): copies %v, want one for each of %d files", paths, files.Copies, len(one.Flows)+len(one.Events))
		}
		// the first given is the one read
		for _, f := range files.Flows {
			if !strings.HasPrefix(f, filepath.Dir(filepath.Clean(paths[0]))) {
				t.Errorf("FindFiles(%v) reads %s, not the first recording's file", paths, f)
			}
		}
		n := 0
		if err := tape.Scan(context.Background(), files, tape.Window{}, func(*observerpb.GetFlowsResponse) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != len(flows) {
			t.Errorf("FindFiles(%v): %d flows scanned, want %d", paths, n, len(flows))
		}
	}

	// the same file, cut short in the copy
	cut := filepath.Join(copied, strings.TrimPrefix(one.Flows[0], rec))
	fi, err := os.Stat(cut)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(cut, fi.Size()-10); err != nil {
		t.Fatal(err)
	}
	_, err = tape.FindFiles(rec, copied)
	if err == nil || !strings.Contains(err.Error(), one.Flows[0]) || !strings.Contains(err.Error(), cut) || !strings.Contains(err.Error(), "different sizes") {
		t.Errorf("a copy cut short: error %v, want one naming both files and their sizes", err)
	}
}

// A copy taken before the original went on (here: before it was
// compacted) holds files of the same session under other names: read
// with the original, some flows would count twice. It is refused, naming
// both recordings and the session.
func TestFindFilesRefusesACopyOfAnotherTime(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "rec")
	writeSession(t, rec, "aaaaaaaa", flowsOver(time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC), 1, 300, "a"), 50)
	copied := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(copied, os.DirFS(rec)); err != nil {
		t.Fatal(err)
	}
	if st, err := tape.Compact(context.Background(), rec, tape.CompactOptions{Writer: "test"}); err != nil || st.Files < 2 {
		t.Fatalf("compact: %+v, %v: the test needs files merged", st, err)
	}
	for _, paths := range [][]string{{rec, copied}, {copied, rec}} {
		_, err := tape.FindFiles(paths...)
		if err == nil || !strings.Contains(err.Error(), "same recording session (aaaaaaaa)") ||
			!strings.Contains(err.Error(), rec) || !strings.Contains(err.Error(), copied) {
			t.Errorf("FindFiles(%v): error %v, want one naming the session and both recordings", paths, err)
		}
	}
	for _, dir := range []string{rec, copied} {
		if _, err := tape.FindFiles(dir); err != nil {
			t.Errorf("FindFiles(%s) alone: %v", dir, err)
		}
	}
}
