package tape_test

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// flowtape compact killed (SIGKILL) at any moment leaves a recording whose
// every file is readable, whose every flow is read once and whose derived
// tables say what they said before (no request counted twice); the next
// compaction finishes the job. FLOWTAPE_KILL_ITERATIONS (make soak) runs
// more.
func TestCompactSIGKILL(t *testing.T) {
	bin := testutil.FlowtapeBinary(t)
	start := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	const n = 3000
	src := t.TempDir()
	// Simulated traffic (requests, connections, DNS, drops) over six hour
	// partitions, in files of 50 flows: requests and connections cross
	// files.
	var flows []*flowpb.Flow
	for _, r := range testutil.SimResponses(sim.Scenarios["incident"], 3, n/(6*3600.0), start, start.Add(6*time.Hour)) {
		if len(flows) < n {
			flows = append(flows, r.GetFlow())
		}
	}
	if len(flows) < n {
		t.Fatalf("the simulation gave %d flows, want %d", len(flows), n)
	}
	writeSession(t, src, "aaaaaaaa", flows, 50)
	readOnce := func(t *testing.T, dir, when string) {
		t.Helper()
		files, err := tape.FindFiles(dir)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		seen := map[string]bool{}
		if err := tape.Scan(context.Background(), files, tape.Window{}, func(r *observerpb.GetFlowsResponse) error {
			if f := r.GetFlow(); f != nil {
				if seen[f.GetUuid()] {
					t.Fatalf("%s: flow %s read twice", when, f.GetUuid())
				}
				seen[f.GetUuid()] = true
			}
			return nil
		}); err != nil {
			t.Fatalf("%s: a file is unreadable: %v", when, err)
		}
		if len(seen) != n {
			t.Fatalf("%s: %d flows read, want %d", when, len(seen), n)
		}
	}
	// What the derived tables say before: compaction must not change it.
	derived := testutil.DerivedViews(t, bin, src)
	// How long a whole compaction takes here, to kill within it.
	full := copyDir(t, src)
	began := time.Now()
	if out, err := exec.Command(bin, "compact", full).CombinedOutput(); err != nil {
		t.Fatalf("compact: %v\n%s", err, out)
	}
	took := time.Since(began)
	rng := rand.New(rand.NewPCG(3, 4))
	iterations := testutil.KillIterations(t, 5)
	for i := 0; i < iterations; i++ {
		dir := copyDir(t, src)
		cmd := exec.Command(bin, "compact", dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(took))))
		cmd.Process.Kill() //nolint:errcheck
		cmd.Wait()         //nolint:errcheck
		readOnce(t, dir, "after the kill")
		if got := testutil.DerivedViews(t, bin, dir); got != derived {
			t.Fatalf("after the kill, the derived tables say otherwise than before the compaction")
		}
		if out, err := exec.Command(bin, "compact", dir).CombinedOutput(); err != nil {
			t.Fatalf("compact after the kill: %v\n%s", err, out)
		}
		readOnce(t, dir, "after compacting again")
		if got := testutil.DerivedViews(t, bin, dir); got != derived {
			t.Fatalf("after compacting again, the derived tables say otherwise than before")
		}
		if hidden, _ := filepath.Glob(filepath.Join(dir, "*", "*", "*", ".*")); len(hidden) > 0 {
			t.Errorf("after compacting again, hidden files are left: %v", hidden)
		}
	}
	t.Logf("a compaction takes %s; %d kills within it", took.Round(time.Millisecond), iterations)
}

// copyDir copies a recording to a new directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "rec")
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
