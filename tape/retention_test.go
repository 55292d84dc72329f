package tape_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// duBytes is what every file under dir takes.
func duBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Retention by age removes the hours older than the bound, each flow file
// with its derived files, counts what went in the manifest, and leaves a
// recording that reads: every flow after the expired range, none before.
func TestRetentionByAge(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	flows := flowsOver(start, 4, 4000, "a") // 10:00 to 14:00, 1000 an hour
	writeSession(t, dir, "aaaa0001", flows, 300)
	tape.PutSessionForTest(t, dir, tape.Session{RecordingID: "aaaa0001", Status: "complete", Totals: tape.Totals{Flows: 4000}})

	d, err := tape.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// At 15:30 with 3 h of retention, hours 10 and 11 (ended by 12:30) go.
	now := start.Add(5*time.Hour + 30*time.Minute)
	got, _, err := d.Expire(tape.Retention{MaxAge: 3 * time.Hour}, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Flows != 2000 {
		t.Errorf("expired %d flows, want the 2000 of hours 10 and 11", got.Flows)
	}
	if got.LastFlow == nil || !got.LastFlow.Before(start.Add(2*time.Hour)) || got.LastFlow.Before(start.Add(2*time.Hour-time.Minute)) {
		t.Errorf("expired up to %v, want the last flow of hour 11", got.LastFlow)
	}
	left := uuidsIn(t, dir)
	delete(left, "") // the events
	if len(left) != 2000 {
		t.Errorf("%d flows left, want 2000", len(left))
	}
	for u := range left {
		if u < "a002000" {
			t.Errorf("flow %s of an expired hour is still read", u)
			break
		}
	}
	for _, kind := range append([]string{schema.KindFlows, schema.KindEvents}, schema.DerivedKinds...) {
		if hours, _ := filepath.Glob(filepath.Join(dir, kind, "date=*", "hour=1[01]", "*.parquet")); len(hours) > 0 {
			t.Errorf("%s files of expired hours are left: %v", kind, hours)
		}
	}
	m, err := tape.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Expired == nil || m.Expired.Flows != 2000 || m.Expired.Removals != 1 || m.Expired.Events != 2 {
		t.Errorf("manifest's expired = %+v, want 2000 flows and 2 events in one removal", m.Expired)
	}
	if m.Totals.Flows != 4000 || len(m.Sessions) != 1 {
		t.Errorf("manifest totals %d flows in %d sessions: the session whose newer files remain stays listed", m.Totals.Flows, len(m.Sessions))
	}
	// Nothing more is due: a second run removes nothing and writes nothing.
	again, _, err := d.Expire(tape.Retention{MaxAge: 3 * time.Hour}, now, 0)
	if err != nil || again.Files != 0 {
		t.Errorf("second run removed %+v (%v), want nothing", again, err)
	}
}

// Retention by size keeps the directory under the bound (with room for the
// caller's open files), oldest first, and folds the sessions whose files
// are all gone into the manifest's summary, so that it does not grow.
func TestRetentionBySizeFoldsExpiredSessions(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for i, id := range []string{"bbbb0001", "bbbb0002", "bbbb0003"} {
		writeSession(t, dir, id, flowsOver(start.Add(time.Duration(i)*time.Hour), 1, 3000, id[6:]+"-"), 1000)
		tape.PutSessionForTest(t, dir, tape.Session{RecordingID: id, Status: "complete", Totals: tape.Totals{Flows: 3000}})
	}
	total := duBytes(t, dir)
	bound, reserve := total*2/3, int64(1000)
	d, err := tape.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, after, err := d.Expire(tape.Retention{MaxBytes: bound}, start, reserve)
	if err != nil {
		t.Fatal(err)
	}
	if du := duBytes(t, dir); du != after.Bytes || du+reserve > bound {
		t.Errorf("%d bytes left (Expire says %d) with %d reserved: want under the bound %d", du, after.Bytes, reserve, bound)
	}
	if got.Flows < 3000 {
		t.Errorf("expired %d flows: want at least the oldest session's 3000", got.Flows)
	}
	left := uuidsIn(t, dir)
	delete(left, "") // the events
	if int64(len(left))+got.Flows != 9000 {
		t.Errorf("%d flows left and %d expired, want 9000 in all", len(left), got.Flows)
	}
	for u := range left {
		if strings.HasPrefix(u, "01-") {
			t.Errorf("flow %s of the oldest session is left while newer ones went", u)
			break
		}
	}
	m, err := tape.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Expired == nil || m.Expired.Sessions != 1 || m.Expired.SessionTotals.Flows != 3000 || len(m.Sessions) != 2 {
		t.Fatalf("manifest: %d sessions listed, expired %+v: want the oldest session folded into the summary", len(m.Sessions), m.Expired)
	}
	if m.Totals.Flows != 9000 {
		t.Errorf("manifest totals %d flows, want 9000: folded sessions still count as recorded", m.Totals.Flows)
	}
	if _, err := os.Stat(filepath.Join(dir, tape.ManifestFile)); err != nil {
		t.Fatal(err)
	}
}
