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
	// A flow written is synced at the next flush; sync covers a late tick
	// and the sync's own time on a busy machine.
	const sync = 2 * time.Second
	addr := testutil.FreeAddr(t)
	start := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	// Few flows (15 a second of wall time): at the default rate the write
	// buffer of the segment (256 KiB) reached the kernel every 40 ms
	// without a sync, so a recorder that never synced lost nothing to a
	// SIGKILL and passed; at this rate the buffer outlives the recorder,
	// and only the flush ticker's syncs save its flows.
	cfg := sim.Config{Seed: 13, Start: start, Speed: speed, Rate: 5}
	srv := serveSim(t, addr, cfg)
	_ = srv
	wallStart := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	iterations := testutil.KillIterations(t, 6)
	for i := 0; i < iterations; i++ {
		dir := filepath.Join(t.TempDir(), "rec")
		metrics := testutil.FreeAddr(t)
		cmd := exec.Command(bin, "record", "--server", addr, "-o", dir, "--flush-interval", flush.String(), "--metrics-listen", metrics)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// (killed if the test stops before it does: it would retry the
		// simulator for ever)
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() }) //nolint:errcheck
		// What the recorder had not received at the kill is not its loss:
		// the loss is measured against what it had written (its metric
		// flowtape_last_flow_timestamp_seconds) a flush interval and a sync
		// before the kill, not against the simulator's clock, which a
		// recorder that a loaded machine holds back falls behind. The random
		// moment counts from its first flow, so that each kill finds files
		// to recover.
		waitMetrics(t, metrics)
		written := func() float64 {
			return sum(scrape(t, "http://"+metrics+"/metrics"), "flowtape_last_flow_timestamp_seconds", nil)
		}
		testutil.Eventually(t, 30*time.Second, "the recorder writes flows", func() bool { return written() > 0 })
		time.Sleep(time.Duration(rng.IntN(2500)) * time.Millisecond)
		before := written()
		time.Sleep(flush + sync)
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
		if missing := missingSimFlows(cfg, first, last, got); len(missing) > 0 {
			t.Fatalf("iteration %d: %d flows are missing before the last recovered flow at %s, the first %s at %s",
				i, len(missing), last, missing[0].GetUuid(), missing[0].GetTime().AsTime())
		}
		// At most the flush interval is lost: every flow written a flush
		// interval (and a sync's time) before the kill was recovered.
		if beforeAt := time.Unix(0, int64(before*1e9)); last.Before(beforeAt.Add(-time.Microsecond)) {
			t.Fatalf("iteration %d: the recovery ends at %s, before %s, the newest flow written %s before the kill: more than the flush interval lost",
				i, last, beforeAt, flush+sync)
		}
		simAtKill := start.Add(time.Duration(float64(killedAt.Sub(wallStart)) * speed))
		lostSim := simAtKill.Sub(last)
		// (at this rate, quiet seconds between the simulator's bursts are
		// part of it)
		t.Logf("iteration %d: killed after %s, recovered %d flows, the last %s of simulated time (%.2fs wall) before the kill",
			i, killedAt.Sub(wallStart).Round(time.Millisecond), len(flows), lostSim.Round(time.Millisecond), lostSim.Seconds()/speed)
	}
}

// missingSimFlows returns the flows of the steady simulation cfg (its
// seed, rate and start) strictly between first and last (a millisecond
// after the first: flows of one time have no order) that are not in got,
// by uuid.
func missingSimFlows(cfg sim.Config, first, last time.Time, got map[string]bool) []*flowpb.Flow {
	src := sim.NewSource(sim.Scenario{Name: "steady"}, cfg.Seed, defaults.Positive(cfg.Rate, defaults.SimRate), cfg.Start)
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
