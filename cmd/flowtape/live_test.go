package main

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/internal/testutil"
)

// A recording is analysed while it is being made: a real recorder against
// flowtape sim; 10 s after it starts, coverage shows flows up to about a
// flush interval ago, and services over a window already flushed gives the
// rows it gives after the recorder stopped.
func TestAnalyzeWhileRecording(t *testing.T) {
	addr := startSim(t, "--speed", "1", "--history", "0s") // simulated time is wall time
	dir := filepath.Join(t.TempDir(), "live")
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"record", "-o", dir, "--server", addr}, io.Discard, io.Discard) }()
	defer func() {
		stop()
		<-done
	}()
	started := time.Now()

	type coverage struct {
		Node     string    `json:"node"`
		LastFlow time.Time `json:"last_flow"`
		Flows    int64     `json:"flows"`
	}
	var last, asked time.Time
	testutil.Eventually(t, 30*time.Second, "flows are readable while recording", func() bool {
		if time.Since(started) < 10*time.Second {
			return false
		}
		asked = time.Now()
		out, _, code := runCmd(t, "analyze", "coverage", dir, "--format", "json")
		if code != 0 {
			return false
		}
		var rows []coverage
		if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) == 0 || rows[0].Node != "(all)" {
			t.Fatalf("coverage: %v\n%s", err, out)
		}
		last = rows[0].LastFlow
		return true
	})
	// The simulator's clock is the wall clock (--speed 1): when analyze
	// was asked, the newest flow it read was at most a flush interval old,
	// plus a publish's time and slack for a loaded machine (the age counts
	// from the ask, not from the answer: how long the analysis took on a
	// starved CI machine is not how stale its data was).
	age := asked.Sub(last)
	t.Logf("10 s into the recording, the newest flow analyze sees is %s old", age.Round(time.Millisecond))
	if age > defaults.FlushInterval+3*time.Second {
		t.Errorf("while recording, the newest flow analyze sees is %s old (flush interval %s)", age.Round(time.Millisecond), defaults.FlushInterval)
	}
	// A window that ended a few seconds before the newest flow: complete,
	// and far from the recording's end (requests in flight, SYNs waiting).
	since := last.Add(-8 * time.Second).Format(time.RFC3339Nano)
	until := last.Add(-3 * time.Second).Format(time.RFC3339Nano)
	services := func() string {
		out, errOut, code := runCmd(t, "analyze", "services", dir, "--since", since, "--until", until, "--format", "json")
		if code != 0 {
			t.Fatalf("analyze services: exit %d: %s", code, errOut)
		}
		return out
	}
	live := services()
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("flowtape record exited %d", code)
	}
	done <- 0
	if after := services(); after != live {
		t.Errorf("services over the same window, while recording:\n%s\nafter the recorder stopped:\n%s", live, after)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(live), &rows); err != nil || len(rows) < 5 {
		t.Errorf("services while recording: %d rows (%v): the comparison proves little", len(rows), err)
	}
}
