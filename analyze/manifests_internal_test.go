package analyze

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowtape/flowtape/tape"
)

// A recording and a copy of it (taken now or earlier: its manifest names
// the same session) count what the recording lost (expired by retention,
// dropped by a full spool) once, the newer manifest's, as their files are
// read once (tape.Files.Copies); two recordings' losses add up.
func TestManifestLossesOfACopyCountOnce(t *testing.T) {
	manifest := func(id string, expired int64) string {
		dir := t.TempDir()
		m := `{"tool": "flowtape", "schema_version": "1.4", "sessions": [{"recording_id": "` + id + `"}], "expired": {"flows": ` +
			fmt.Sprint(expired) + `}, "spool_dropped": {"flows": 3}}`
		if err := os.WriteFile(filepath.Join(dir, tape.ManifestFile), []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	rec, older, other := manifest("a", 100), manifest("a", 80), manifest("b", 5)
	copied := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(copied, os.DirFS(rec)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		paths            []string
		expired, dropped int64
	}{
		{[]string{rec}, 100, 3},
		{[]string{rec, copied}, 100, 3},
		{[]string{rec, other}, 105, 6},
		{[]string{rec, copied, other}, 105, 6},
		{[]string{rec, older}, 100, 3},
		{[]string{older, rec, other}, 105, 6},
	} {
		expired, dropped := manifestLosses(manifestsOf(c.paths))
		if expired.Flows != c.expired || dropped.Flows != c.dropped {
			t.Errorf("%d recordings: expired %d and dropped %d flows, want %d and %d", len(c.paths), expired.Flows, dropped.Flows, c.expired, c.dropped)
		}
	}
}

// The manifests read are those of the recordings the files come from, so
// that a glob, or a file given alone, still says what its recording lost.
func TestManifestsOfTheFilesRecordings(t *testing.T) {
	rec := t.TempDir()
	m := `{"tool": "flowtape", "schema_version": "1.4", "sessions": [{"recording_id": "a"}], "expired": {"flows": 7}}`
	if err := os.WriteFile(filepath.Join(rec, tape.ManifestFile), []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	f := filepath.Join(rec, "flows", tape.Partition(at), tape.FileName(at, "a", 1))
	expired, _ := manifestLosses(filesManifests(tape.Files{Flows: []string{f}}))
	if expired.Flows != 7 {
		t.Errorf("the manifest of %s's recording: %d flows expired, want 7", f, expired.Flows)
	}
}
