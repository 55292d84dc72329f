package record_test

import (
	"context"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/sim"
)

// A real recorder killed with SIGKILL at random moments: every finished
// file stays readable, recovery (by `flowtape recover`, or by recording
// into the same directory again) loses at most the flush interval, and the
// derived tables afterwards are those of the recovered flows.
func TestSIGKILLLosesAtMostTheFlushInterval(t *testing.T) {
	if testing.Short() {
		t.Skip("builds flowtape and runs real processes")
	}
	bin := testutil.FlowtapeBinary(t)
	const speed, flush = 3.0, time.Second
	// What the recorder had not received yet at the kill is not its loss;
	// slack covers that delay on a busy machine.
	const slack = 2 * time.Second
	addr := testutil.FreeAddr(t)
	start := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	cfg := sim.Config{Seed: 13, Start: start, Speed: speed}
	srv := serveSim(t, addr, cfg)
	_ = srv
	wallStart := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	iterations := testutil.KillIterations(t, 6)
	for i := 0; i < iterations; i++ {
		dir := filepath.Join(t.TempDir(), "rec")
		cmd := exec.Command(bin, "record", "--server", addr, "-o", dir, "--flush-interval", flush.String())
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(1500+rng.IntN(2500)) * time.Millisecond)
		killedAt := time.Now()
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()

		// Finished files are readable as they are.
		readRecording(t, dir)
		if i%2 == 0 {
			out, err := exec.Command(bin, "recover", dir).CombinedOutput()
			if err != nil {
				t.Fatalf("recover: %v\n%s", err, out)
			}
		} else {
			// Recording again into the directory finishes what was left.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			// (Not resuming: its one flow would be the oldest the ring
			// buffers hold, from before the killed recorder started.)
			out, err := exec.CommandContext(ctx, bin, "record", "--server", addr, "-o", dir, "--max-flows", "1", "--resume=false").CombinedOutput()
			cancel()
			if err != nil {
				t.Fatalf("second record: %v\n%s", err, out)
			}
		}
		leftovers, _ := filepath.Glob(filepath.Join(dir, "*", "*", "*", ".*"))
		if len(leftovers) > 0 {
			t.Fatalf("recovery left %v", leftovers)
		}
		// The derived tables of the recovered files are those of their
		// flows, however the killed recorder had cut them.
		testutil.DerivedAsReindexed(t, bin, dir)
		flows, _ := readRecording(t, dir)
		sort.Slice(flows, func(a, b int) bool { return flows[a].GetTime().AsTime().Before(flows[b].GetTime().AsTime()) })
		if i%2 == 1 && len(flows) > 0 {
			flows = flows[:len(flows)-1] // the second recorder's one flow
		}
		if len(flows) == 0 {
			t.Fatalf("iteration %d: nothing recovered", i)
		}
		first, last := flows[0].GetTime().AsTime(), flows[len(flows)-1].GetTime().AsTime()
		// No gap: the recovered flows are all the simulation's flows between
		// the first and the last one.
		got := map[string]bool{}
		for _, f := range flows {
			got[f.GetUuid()] = true
		}
		if missing := missingSimFlows(cfg.Seed, start, first, last, got); len(missing) > 0 {
			t.Fatalf("iteration %d: %d flows are missing before the last recovered flow at %s, the first %s at %s",
				i, len(missing), last, missing[0].GetUuid(), missing[0].GetTime().AsTime())
		}
		// At most the flush interval (plus the time a flow takes to arrive) is lost.
		simAtKill := start.Add(time.Duration(float64(killedAt.Sub(wallStart)) * speed))
		lostSim := simAtKill.Sub(last)
		if lostSim > time.Duration(float64(flush+slack)*speed) {
			t.Fatalf("iteration %d: the recovery ends %s (simulated) before the kill: more than the flush interval lost", i, lostSim)
		}
		t.Logf("iteration %d: killed after %s, recovered %d flows, %s of simulated time (%.2fs wall) lost",
			i, killedAt.Sub(wallStart).Round(time.Millisecond), len(flows), lostSim.Round(time.Millisecond), lostSim.Seconds()/speed)
	}
}

// missingSimFlows returns the flows of the steady simulation (seed, from
// start) strictly between first and last (a millisecond after the first:
// flows of one time have no order) that are not in got, by uuid.
func missingSimFlows(seed uint64, start, first, last time.Time, got map[string]bool) []*flowpb.Flow {
	src := sim.NewSource(sim.Scenario{Name: "steady"}, seed, defaults.SimRate, start)
	var missing []*flowpb.Flow
	for {
		f := src.Next()
		at := f.GetTime().AsTime()
		if at.Before(first.Add(time.Millisecond)) {
			continue
		}
		if !at.Before(last) {
			return missing
		}
		if !got[f.GetUuid()] {
			missing = append(missing, f)
		}
	}
}
