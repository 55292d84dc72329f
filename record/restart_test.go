package record_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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
	var stderr lockedBuffer
	rec.Stderr = &stderr
	if err := rec.Start(); err != nil {
		t.Fatal(err)
	}
	defer rec.Process.Kill() //nolint:errcheck

	// Let part of the run be recorded, then restart the simulator once the
	// recorder has seen it go.
	testutil.Eventually(t, time.Minute, "record publishes flows", func() bool {
		n, _ := readRecordingQuiet(dir)
		return n > 0
	})
	simProc.Process.Signal(syscall.SIGTERM) //nolint:errcheck
	simProc.Wait()                          //nolint:errcheck
	os.Remove(truthFile)                    // the interrupted run's partial truth
	testutil.Eventually(t, 30*time.Second, "record notices the simulator went away", func() bool {
		return strings.Contains(stderr.String(), "reconnecting")
	})
	simProc = startSim()
	defer func() {
		simProc.Process.Signal(syscall.SIGTERM) //nolint:errcheck
		simProc.Wait()                          //nolint:errcheck
	}()

	// The second simulator writes the truth when its run is over; the
	// recorder is stopped once it holds that many flows.
	var truth sim.Truth
	testutil.Eventually(t, 3*time.Minute, "the simulator writes its truth", func() bool {
		b, err := os.ReadFile(truthFile)
		return err == nil && json.Unmarshal(b, &truth) == nil && truth.Flows > 0
	})
	testutil.Eventually(t, 3*time.Minute, "record publishes every flow", func() bool {
		n, _ := readRecordingQuiet(dir)
		return uint64(n) >= truth.Flows
	})
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

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
