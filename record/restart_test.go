package record_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// A real `flowtape sim` process is stopped and started again while a real
// `flowtape record` process follows it: every flow is recorded once, and
// the outage is in the events.
func TestRecordAcrossSimProcessRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds flowtape")
	}
	bin := testutil.FlowtapeBinary(t)
	addr := testutil.FreeAddr(t)
	truthFile := filepath.Join(t.TempDir(), "truth.json")
	startSim := func() *exec.Cmd {
		cmd := exec.Command(bin, "sim", "--listen", addr, "--speed", "max", "--seed", "8", "--start", t0.Format(time.RFC3339),
			"--duration", "60s", "--truth", truthFile)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	simProc := startSim()
	dir := filepath.Join(t.TempDir(), "rec")
	rec := exec.Command(bin, "record", "--server", addr, "-o", dir, "--since", t0.Format(time.RFC3339), "--flush-interval", "500ms",
		"--rotate-interval", "1s") // files are published as the test goes
	if err := rec.Start(); err != nil {
		t.Fatal(err)
	}
	defer rec.Process.Kill() //nolint:errcheck

	// Let part of the run be recorded, then restart the simulator.
	time.Sleep(2 * time.Second)
	simProc.Process.Signal(syscall.SIGTERM) //nolint:errcheck
	simProc.Wait()                          //nolint:errcheck
	os.Remove(truthFile)                    // the interrupted run's partial truth
	time.Sleep(500 * time.Millisecond)
	simProc = startSim()
	defer func() {
		simProc.Process.Signal(syscall.SIGTERM) //nolint:errcheck
		simProc.Wait()                          //nolint:errcheck
	}()

	// The second simulator writes the truth when its run is over; the
	// recorder is stopped once it holds that many flows.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var truth sim.Truth
	for ctx.Err() == nil {
		if b, err := os.ReadFile(truthFile); err == nil && json.Unmarshal(b, &truth) == nil && truth.Flows > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for ctx.Err() == nil {
		if n, _ := readRecordingQuiet(dir); uint64(n) >= truth.Flows {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	rec.Process.Signal(syscall.SIGTERM) //nolint:errcheck
	if err := rec.Wait(); err != nil {
		t.Fatalf("record: %v", err)
	}
	got, events := readRecording(t, dir)
	uuids := map[string]bool{}
	for _, f := range got {
		if uuids[f.GetUuid()] {
			t.Fatalf("flow %s recorded twice", f.GetUuid())
		}
		uuids[f.GetUuid()] = true
	}
	if uint64(len(got)) != truth.Flows {
		t.Fatalf("recorded %d flows, the simulation produced %d", len(got), truth.Flows)
	}
	var outage bool
	for _, e := range events {
		if e.GetNodeName() == schema.RecorderNode && e.GetNodeStatus().GetStateChange().String() == "NODE_UNAVAILABLE" {
			outage = true
		}
	}
	m, err := tape.ReadManifest(dir)
	if err != nil || !outage || m.Totals.Reconnects == 0 {
		t.Fatalf("the restart is not recorded: outage event %v, manifest %+v, %v", outage, m, err)
	}
}
