package record_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/sim"
)

// A full disk stops the recording with one clear error and a non-zero exit;
// the files finished before stay readable.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("builds flowtape")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs here (%v: %s)", err, out)
	}
	defer exec.Command("umount", "-l", mnt).Run() //nolint:errcheck
	bin := testutil.FlowtapeBinary(t)
	addr := testutil.FreeAddr(t)
	serveSim(t, addr, sim.Config{Seed: 5, Start: t0, Speed: 0})
	dir := filepath.Join(mnt, "rec")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "record", "--server", addr, "-o", dir, "--since", t0.Format(time.RFC3339), "--rotate-size", "300KB",
		"--flush-interval", "200ms")
	out, err := cmd.CombinedOutput()
	if err == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("record on a full disk: %v (exit %d)\n%s", err, cmd.ProcessState.ExitCode(), out)
	}
	msg := string(out)
	if !strings.Contains(msg, "no space left on device") || !strings.Contains(msg, "flowtape recover") {
		t.Fatalf("the error does not say what happened and what to do:\n%s", msg)
	}
	if strings.Contains(msg, "panic") {
		t.Fatalf("panic:\n%s", msg)
	}
	flows, _ := readRecording(t, dir)
	if len(flows) == 0 {
		t.Fatalf("no finished file survived:\n%s", msg)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "flows", "*", "*", "*.parquet"))
	t.Logf("%d files with %d flows finished before the disk was full", len(files), len(flows))
	os.RemoveAll(dir)
}
