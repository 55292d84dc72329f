package tape_test

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// simSession writes n simulated flows over hours hour partitions as one
// session, in files of rotate flows.
func simSession(t *testing.T, dir string, start time.Time, hours, n int, rotate int64) {
	t.Helper()
	var flows []*flowpb.Flow
	for _, r := range testutil.SimResponses(sim.Scenarios["incident"], 3, float64(n)/(float64(hours)*3600), start, start.Add(time.Duration(hours)*time.Hour)) {
		if len(flows) < n {
			flows = append(flows, r.GetFlow())
		}
	}
	if len(flows) < n {
		t.Fatalf("the simulation gave %d flows, want %d", len(flows), n)
	}
	writeSession(t, dir, "aaaaaaaa", flows, rotate)
}

// Reindex writes what a writer wrote: the derived tables of a recording
// without them, derived again from its flows, say what the recorder's did.
func TestReindexWritesWhatTheWriterWrote(t *testing.T) {
	bin := testutil.FlowtapeBinary(t)
	src := t.TempDir()
	simSession(t, src, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), 2, 2000, 300)
	want := testutil.DerivedViews(t, bin, src)
	dir := copyDir(t, src)
	for _, kind := range schema.DerivedKinds {
		if err := os.RemoveAll(filepath.Join(dir, kind)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := tape.Reindex(context.Background(), dir, tape.ReindexOptions{Writer: "test"})
	if err != nil {
		t.Fatal(err)
	}
	files, err := tape.FindFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != len(files.Flows) || st.Skipped != 0 || st.Rows != 2000 {
		t.Errorf("reindex: %+v, want %d files of 2000 flows", st, len(files.Flows))
	}
	if got := testutil.DerivedViews(t, bin, dir); got != want {
		t.Errorf("reindexed derived tables differ from the writer's")
	}
	st, err = tape.Reindex(context.Background(), dir, tape.ReindexOptions{Writer: "test"})
	if err != nil || st.Files != 0 || st.Skipped != len(files.Flows) {
		t.Errorf("reindex again: %+v, %v; want every file skipped", st, err)
	}
}

// flowtape reindex killed (SIGKILL) at any moment leaves every file
// readable and nothing counted twice: a flow file has all its derived
// files, old or new, or the analyses name reindex; the next reindex
// finishes, with the same answers.
func TestReindexSIGKILL(t *testing.T) {
	bin := testutil.FlowtapeBinary(t)
	src := t.TempDir()
	simSession(t, src, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), 4, 3000, 100)
	want := testutil.DerivedViews(t, bin, src)
	full := copyDir(t, src)
	began := time.Now()
	if out, err := exec.Command(bin, "reindex", "--force", full).CombinedOutput(); err != nil {
		t.Fatalf("reindex: %v\n%s", err, out)
	}
	took := time.Since(began)
	rng := rand.New(rand.NewPCG(5, 6))
	iterations := testutil.KillIterations(t, 4)
	for i := 0; i < iterations; i++ {
		dir := copyDir(t, src)
		args := []string{"reindex", "--force", dir}
		if i%2 == 1 {
			// A recording without derived tables, as older flowtapes wrote.
			for _, kind := range schema.DerivedKinds {
				if err := os.RemoveAll(filepath.Join(dir, kind)); err != nil {
					t.Fatal(err)
				}
			}
			args = []string{"reindex", dir}
		}
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(took))))
		cmd.Process.Kill() //nolint:errcheck
		cmd.Wait()         //nolint:errcheck
		// Every published file reads; the derived tables answer as
		// before, or the analyses say to run reindex.
		files, err := tape.FindFiles(dir)
		if err != nil {
			t.Fatalf("after the kill: %v", err)
		}
		for _, kind := range schema.DerivedKinds {
			for _, p := range files.Derived(kind) {
				if _, err := os.Stat(p); err != nil {
					continue
				}
				if _, err := tape.Stat(p); err != nil {
					t.Fatalf("after the kill: %v", err)
				}
			}
		}
		out, err := exec.Command(bin, "query", dir, "SELECT count(*) FROM requests").CombinedOutput()
		if err != nil && !strings.Contains(string(out), "flowtape reindex "+dir) {
			t.Fatalf("after the kill: %v\n%s", err, out)
		}
		if err == nil && i%2 == 0 {
			if got := testutil.DerivedViews(t, bin, dir); got != want {
				t.Fatalf("after the kill, the derived tables say otherwise than before")
			}
		}
		if out, err := exec.Command(bin, "reindex", dir).CombinedOutput(); err != nil {
			t.Fatalf("reindex after the kill: %v\n%s", err, out)
		}
		if got := testutil.DerivedViews(t, bin, dir); got != want {
			t.Fatalf("after reindexing again, the derived tables say otherwise than before")
		}
		if hidden, _ := filepath.Glob(filepath.Join(dir, "*", "*", "*", ".*")); len(hidden) > 0 {
			t.Errorf("after reindexing again, hidden files are left: %v", hidden)
		}
	}
	t.Logf("a reindex takes %s; %d kills within it", took.Round(time.Millisecond), iterations)
}

// A staged session (import) derives its files' batches beside the writer;
// its files share the session's connections, so the batches must be
// derived one at a time in the writer's order, whatever file they are of.
// Flows of two hours interleaved (two files open at once), in small row
// groups, give the same derived tables staged as through a recorder's
// sink, which derives inline (run with -race, the test also catches two
// files derived at once).
func TestStagedDerivesInWriterOrder(t *testing.T) {
	bin := testutil.FlowtapeBinary(t)
	start := time.Date(2026, 11, 25, 13, 45, 0, 0, time.UTC)
	var flows []*flowpb.Flow
	for _, r := range testutil.SimResponses(sim.Scenarios["incident"], 3, 0.5, start, start.Add(30*time.Minute)) {
		flows = append(flows, r.GetFlow())
	}
	// The second quarter hour a little late, between the first's.
	var mixed []*flowpb.Flow
	for i, j := 0, len(flows)/2; i < len(flows)/2 || j < len(flows); i, j = i+1, j+1 {
		if i < len(flows)/2 {
			mixed = append(mixed, flows[i])
		}
		if j < len(flows) {
			mixed = append(mixed, flows[j])
		}
	}
	o := tape.SinkOptions{RecordingID: "bbbbbbbb", Writer: "test", RowGroupRows: 100, NotLive: true}
	staged, inline := t.TempDir(), t.TempDir()
	o.Dir = staged
	st, err := tape.Stage(o, tape.Session{})
	if err != nil {
		t.Fatal(err)
	}
	o.Dir = inline
	d, err := tape.OpenDir(inline)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	sink, err := tape.NewSink(o)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range mixed {
		for _, w := range []tape.Writer{st, sink} {
			if err := w.WriteFlow(f); err != nil {
				t.Fatal(err)
			}
			if i%1000 == 999 {
				if err := w.Sync(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if _, err := st.Commit(tape.Totals{}); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := tape.FindFiles(staged)
	if err != nil || len(files.Flows) < 2 {
		t.Fatalf("staged: %d flow files, %v; want files of two hours", len(files.Flows), err)
	}
	t.Logf("%d flows in %d staged files", len(mixed), len(files.Flows))
	want := testutil.DerivedViews(t, bin, inline)
	if got := testutil.DerivedViews(t, bin, staged); got != want {
		t.Errorf("staged derived tables differ from a recorder's of the same flows")
	}
}
