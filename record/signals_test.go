package record_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// SIGINT and SIGTERM end a recording cleanly: files finished, manifest
// complete, exit 0.
func TestSignalsStopCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds flowtape")
	}
	bin := testutil.FlowtapeBinary(t)
	addr := testutil.FreeAddr(t)
	serveSim(t, addr, sim.Config{Seed: 6, Start: time.Now(), Speed: 1})
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		dir := filepath.Join(t.TempDir(), "rec")
		cmd := exec.Command(bin, "record", "-o", dir)
		// The connection comes from the environment, as for the hubble CLI.
		cmd.Env = append(os.Environ(), "HUBBLE_SERVER="+addr)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Signalled once flows are being written (its write-ahead log is
		// synced every --flush-interval, 2s).
		testutil.Eventually(t, 30*time.Second, "record writes flows", func() bool {
			wals, _ := filepath.Glob(filepath.Join(dir, "flows", "*", "*", ".*.wal"))
			for _, w := range wals {
				if fi, err := os.Stat(w); err == nil && fi.Size() > 0 {
					return true
				}
			}
			return false
		})
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%v: record exited with %v", sig, err)
		}
		m, err := tape.ReadManifest(dir)
		if err != nil || m.Sessions[0].Status != "complete" || m.Totals.Flows == 0 || m.Sessions[0].Server.Address != addr {
			t.Fatalf("%v: manifest %+v, %v", sig, m, err)
		}
		hidden, _ := filepath.Glob(filepath.Join(dir, "*", "*", "*", ".*"))
		if len(hidden) > 0 {
			t.Fatalf("%v: unfinished files left: %v", sig, hidden)
		}
		flows, _ := readRecording(t, dir)
		if uint64(len(flows)) != m.Totals.Flows {
			t.Fatalf("%v: %d flows in files, manifest says %d", sig, len(flows), m.Totals.Flows)
		}
	}
}

// An output path that cannot be a directory: one clear line, exit 1.
func TestUnwritableOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds flowtape")
	}
	bin := testutil.FlowtapeBinary(t)
	addr := testutil.FreeAddr(t)
	serveSim(t, addr, sim.Config{Seed: 6, Start: time.Now(), Speed: 1})
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "record", "--server", addr, "-o", filepath.Join(file, "rec"), "--duration", "2s")
	out, err := cmd.CombinedOutput()
	if err == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("record into a file's path: %v\n%s", err, out)
	}
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "a-file") {
		t.Fatalf("want one line naming the path, got:\n%s", out)
	}
}
