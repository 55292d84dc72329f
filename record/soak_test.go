package record_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/flowtape/flowtape/internal/benchdata"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// TestSoakFlightRecorder runs a real recorder as a flight recorder for
// FLOWTAPE_SOAK (make soak: 30m) with retention and a small disk bound,
// while the simulator is restarted every sixth of the time and the
// recorder is SIGKILLed (and started again, as a pod would be) every
// quarter: afterwards every file is readable, the directory stayed under
// its bound all along (sampled every second), the recorder's memory did
// not grow from one run to the next, and coverage counts every outage.
func TestSoakFlightRecorder(t *testing.T) {
	d, _ := time.ParseDuration(os.Getenv("FLOWTAPE_SOAK"))
	if d <= 0 {
		t.Skip("FLOWTAPE_SOAK is not set (make soak runs it for 30m)")
	}
	bin := testutil.FlowtapeBinary(t)
	addr := testutil.FreeAddr(t)
	dir := filepath.Join(t.TempDir(), "rec")
	// 64 MB for the 30 minutes of make soak (about a fifth of what the
	// simulator sends meanwhile): retention must remove all along.
	bound := max(int64(64<<20)/30*int64(d/time.Minute), 4<<20)
	start := time.Now()

	seed := 0
	startSim := func() *exec.Cmd {
		seed++ // a restarted simulator's flows are new flows
		// Flows of the wall clock's time, as a cluster's: the recorder's
		// own events (outages) are on that clock too.
		cmd := exec.Command(bin, "sim", "--listen", addr, "--speed", "1", "--rate", "1500", "--seed", strconv.Itoa(seed),
			"--start", time.Now().UTC().Format(time.RFC3339Nano))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	startRecorder := func() *exec.Cmd {
		cmd := exec.Command(bin, "record", "--server", addr, "-o", dir, "--retention", "1h", "--max-disk", strconv.FormatInt(bound, 10),
			"--flush-interval", "1s", "--rotate-interval", "1m", "--metrics-listen", "127.0.0.1:0")
		cmd.Stderr, cmd.Stdout = nil, nil
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	simProc, rec := startSim(), startRecorder()
	defer func() {
		simProc.Process.Kill() //nolint:errcheck
		rec.Process.Kill()     //nolint:errcheck
	}()
	var peaks []float64 // the recorder's peak RSS in each of its runs, MB
	var peakDisk int64
	var simRestarts, kills int
	var outages []time.Time // when the simulator went away, or the recorder
	nextSim, nextKill := start.Add(d/6), start.Add(d/4)
	// No restart in the last few seconds: the last run ends with SIGTERM
	// once it is up.
	end := start.Add(d)
	for time.Now().Before(end) {
		time.Sleep(time.Second)
		peakDisk = max(peakDisk, duBytes(dir))
		if len(peaks) == 0 {
			peaks = append(peaks, 0)
		}
		if v, err := benchdata.ProcessStatusMB(strconv.Itoa(rec.Process.Pid), "VmRSS"); err == nil {
			peaks[len(peaks)-1] = max(peaks[len(peaks)-1], v)
		}
		if time.Now().After(nextSim) && nextSim.Before(end.Add(-15*time.Second)) {
			outages = append(outages, time.Now())
			simProc.Process.Signal(syscall.SIGTERM) //nolint:errcheck
			simProc.Wait()                          //nolint:errcheck
			time.Sleep(5 * time.Second)             // an outage the recorder sees
			simProc = startSim()
			simRestarts++
			nextSim = nextSim.Add(d / 6)
		}
		if time.Now().After(nextKill) && nextKill.Before(end.Add(-15*time.Second)) {
			outages = append(outages, time.Now())
			rec.Process.Kill() //nolint:errcheck
			rec.Wait()         //nolint:errcheck
			kills++
			time.Sleep(2 * time.Second) // the pod's restart
			rec = startRecorder()
			peaks = append(peaks, 0)
			nextKill = nextKill.Add(d / 4)
		}
	}
	rec.Process.Signal(syscall.SIGTERM) //nolint:errcheck
	if err := rec.Wait(); err != nil {
		t.Errorf("the recorder's last run: %v", err)
	}
	simProc.Process.Signal(syscall.SIGTERM) //nolint:errcheck
	simProc.Wait()                          //nolint:errcheck
	t.Logf("%s: %d simulator restarts, %d SIGKILLs; peak disk %d of %d bytes; peak RSS per run (MB): %.0f", d, simRestarts, kills, peakDisk, bound, peaks)

	if peakDisk > bound {
		t.Errorf("the directory took %d bytes at its peak, over the bound %d", peakDisk, bound)
	}
	// Every file readable.
	files, err := tape.FindFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var flows, unreadable int
	for _, p := range files.Flows {
		info, err := tape.Stat(p)
		if err != nil {
			t.Errorf("unreadable: %v", err)
			unreadable++
			continue
		}
		flows += int(info.Rows)
	}
	for _, kind := range schema.DerivedKinds {
		for _, p := range files.Derived(kind) {
			if _, err := tape.Stat(p); err != nil {
				t.Errorf("unreadable: %v", err)
				unreadable++
			}
		}
	}
	if unreadable > 0 || flows == 0 {
		t.Errorf("%d unreadable files; %d flows readable", unreadable, flows)
	}
	// Memory flat: no run of the recorder peaks well above the first.
	for i, p := range peaks {
		if i > 0 && p > peaks[0]*3/2+20 {
			t.Errorf("run %d of the recorder peaked at %.0f MB, the first at %.0f MB: memory grows", i+1, p, peaks[0])
		}
	}
	m, err := tape.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Coverage counts every outage since the events retention removed:
	// the simulator's restarts the recorder saw, and the times it was
	// killed (the next run says it was away).
	out, err := exec.Command(bin, "analyze", "coverage", dir, "--format", "json").Output()
	if err != nil {
		t.Fatalf("analyze coverage: %v", err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(out, &rows); err != nil || len(rows) == 0 {
		t.Fatalf("coverage: %v\n%s", err, out)
	}
	kept := 0
	for _, at := range outages {
		if m.Expired == nil || m.Expired.LastEvent == nil || at.After(m.Expired.LastEvent.Add(2*time.Second)) {
			kept++
		}
	}
	if got := rows[0]["unavailable"].(float64); int(got) < kept {
		t.Errorf("coverage counts %v outages, want at least the %d of %d outages after the expired events", got, kept, len(outages))
	}
	if m.Expired == nil || m.Expired.Removals == 0 {
		t.Errorf("retention removed nothing: the bound %d was never reached, the soak tested no retention", bound)
	} else {
		t.Logf("retention: %d removals, %d files, %d flows (up to %s); %d sessions listed, %d folded", m.Expired.Removals, m.Expired.Files,
			m.Expired.Flows, m.Expired.LastFlow, len(m.Sessions), m.Expired.Sessions)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, tape.ManifestFile)); len(b) > 256<<10 {
		t.Errorf("the manifest is %d bytes after %d sessions", len(b), len(m.Sessions))
	}
}
