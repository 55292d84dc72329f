package record_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	relaypb "github.com/cilium/cilium/api/v1/relay"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/record"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// A recorder restarted into its directory (a pod restarted) goes on from
// where its previous session stopped, as after a reconnect: the flows the
// ring buffers still hold from the time it was away are recorded, none
// twice, and the time it was away is in the events (coverage counts it).
func TestRecorderRestartResumes(t *testing.T) {
	addr := testutil.FreeAddr(t)
	cfg := sim.Config{Seed: 12, Start: t0, Duration: 8 * time.Second, Rate: 300, Speed: 1, Truth: true, Scenario: sim.Scenarios["steady"]}
	srv := serveSim(t, addr, cfg)
	dir := filepath.Join(t.TempDir(), "rec")
	opts := record.Options{Dialer: dialer(t, "--server", addr), FlushInterval: 200 * time.Millisecond, Sink: tape.SinkOptions{Dir: dir, Writer: "test"}}

	// The first recorder, from the start, stopped after a while.
	first := opts
	first.Since = t0.Add(-time.Hour)
	ctx1, stop1 := context.WithCancel(context.Background())
	first.Progress = func(p record.Progress) {
		if p.Elapsed >= 2*time.Second {
			stop1()
		}
	}
	if _, err := record.Run(ctx1, first); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // away while the simulation goes on

	// The second, with no --since: it resumes.
	ctx2, stop2 := context.WithTimeout(context.Background(), time.Minute)
	defer stop2()
	stopWhenRecorded(t, srv.c, dir, stop2)
	if _, err := record.Run(ctx2, opts); err != nil {
		t.Fatal(err)
	}
	truth := srv.c.Truth()
	flows, events := readRecording(t, dir)
	seen := map[string]bool{}
	for _, f := range flows {
		if seen[f.GetUuid()] {
			t.Fatalf("flow %s recorded twice across the restart", f.GetUuid())
		}
		seen[f.GetUuid()] = true
	}
	if uint64(len(seen)) != truth.Flows {
		t.Errorf("%d flows recorded across the restart, the simulation produced %d", len(seen), truth.Flows)
	}
	var away int
	for _, ev := range events {
		if ns := ev.GetNodeStatus(); ns.GetStateChange() == relaypb.NodeState_NODE_UNAVAILABLE && strings.Contains(ns.GetMessage(), "recorder was not running") {
			away++
		}
	}
	if away != 1 {
		t.Errorf("%d events for the time the recorder was away, want 1", away)
	}
	m, err := tape.ReadManifest(dir)
	if err != nil || len(m.Sessions) != 2 || m.Totals.Flows != truth.Flows {
		t.Errorf("manifest: %d sessions, %d flows (%v); want 2 sessions and the simulation's %d flows", len(m.Sessions), m.Totals.Flows, err, truth.Flows)
	}
}
