package analyze_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// Coverage says what retention removed: the flows, and up to when, beside
// what the recording still holds.
func TestCoverageShowsWhatExpired(t *testing.T) {
	dir := t.TempDir()
	old := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	recent := old.Add(3 * time.Hour)
	oldResps := testutil.SimResponses(sim.Scenarios["steady"], 1, 20, old, old.Add(5*time.Minute))
	testutil.WriteRecording(t, dir, "old00001", oldResps)
	testutil.WriteRecording(t, dir, "new00001", testutil.SimResponses(sim.Scenarios["steady"], 2, 20, recent, recent.Add(5*time.Minute)))
	var oldFlows int64
	var oldLast time.Time
	for _, r := range oldResps {
		if f := r.GetFlow(); f != nil {
			oldFlows++
			if at := f.GetTime().AsTime(); at.After(oldLast) {
				oldLast = at
			}
		}
	}
	d, err := tape.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	expired, _, err := d.Expire(tape.Retention{MaxAge: time.Hour}, recent.Add(30*time.Minute), 0)
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	if expired.Flows != oldFlows {
		t.Fatalf("expired %d flows, want the old hour's %d", expired.Flows, oldFlows)
	}
	res, err := open(t, dir).Run(context.Background(), "coverage", analyze.Params{})
	if err != nil {
		t.Fatal(err)
	}
	all := res.Select("node", "expired_flows", "expired_until").Rows[0]
	want := fmt.Sprint([]any{"(all)", oldFlows, oldLast.Format(time.RFC3339Nano)})
	if fmt.Sprint(all) != want {
		t.Errorf("coverage's first row: %v, want %v", all, want)
	}
	first, err := time.Parse(time.RFC3339Nano, fmt.Sprint(res.Select("first_flow").Rows[0][0]))
	if err != nil || first.Before(recent) {
		t.Errorf("the recording's first flow is %v, before the expired range ended", first)
	}
}

// Coverage counts the flows a full spool dropped before they reached the
// bucket as lost (SPOOL_DROPPED on the "(all)" row, with when), and the
// recording as incomplete; a window after the drop does not show them.
func TestCoverageShowsWhatASpoolDropped(t *testing.T) {
	dir := t.TempDir()
	old := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	recent := old.Add(3 * time.Hour)
	testutil.WriteRecording(t, dir, "old00001", testutil.SimResponses(sim.Scenarios["steady"], 1, 20, old, old.Add(5*time.Minute)))
	d, err := tape.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, oldUsage, err := d.Expire(tape.Retention{}, recent, 0)
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	testutil.WriteRecording(t, dir, "new00001", testutil.SimResponses(sim.Scenarios["steady"], 2, 20, recent, recent.Add(5*time.Minute)))
	if d, err = tape.OpenDir(dir); err != nil {
		t.Fatal(err)
	}
	_, all, err := d.Expire(tape.Retention{}, recent, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Room for the new files only: the spool drops the old ones.
	dropped, _, err := d.Expire(tape.Retention{MaxBytes: all.Bytes - oldUsage.Bytes + 1024, Spool: true}, recent.Add(10*time.Minute), 0)
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	if dropped.Flows == 0 {
		t.Fatal("the full spool dropped nothing")
	}
	m, err := tape.ReadManifest(dir)
	if err != nil || m.Dropped == nil || m.Dropped.Flows != dropped.Flows {
		t.Fatalf("the manifest does not count the drop: %+v, %v", m, err)
	}
	res, err := open(t, dir).Run(context.Background(), "coverage", analyze.Params{})
	if err != nil {
		t.Fatal(err)
	}
	row := res.Select("node", "lost_by_source", "first_lost", "last_lost", "complete").Rows[0]
	want := fmt.Sprint([]any{"(all)", fmt.Sprintf("SPOOL_DROPPED=%d", dropped.Flows),
		m.Dropped.FirstFlow.Format(time.RFC3339Nano), m.Dropped.LastFlow.Format(time.RFC3339Nano), false})
	if fmt.Sprint(row) != want {
		t.Errorf("coverage's first row: %v, want %v", row, want)
	}
	if lost := res.Select("lost_events").Rows[0][0]; fmt.Sprint(lost) != fmt.Sprint(dropped.Flows) {
		t.Errorf("lost_events %v, want the %d dropped flows", lost, dropped.Flows)
	}
	res, err = open(t, dir).Run(context.Background(), "coverage", analyze.Params{Since: recent})
	if err != nil {
		t.Fatal(err)
	}
	if row := res.Select("lost_by_source", "complete").Rows[0]; fmt.Sprint(row) != fmt.Sprint([]any{"", true}) {
		t.Errorf("a window after the drop: %v, want no loss", row)
	}
}
