package record_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/proto"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/internal/hubblecli"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/record"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

var t0 = time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)

// simServer serves a simulated cluster on addr until stop is called.
type simServer struct {
	c      *sim.Cluster
	cancel context.CancelFunc
	done   chan struct{}
}

func serveSim(t testing.TB, addr string, cfg sim.Config) *simServer {
	t.Helper()
	c, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lis := testutil.Listen(t, addr) // the address may still be held by a stopped server
	ctx, cancel := context.WithCancel(context.Background())
	s := &simServer{c: c, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		go c.Run(ctx) //nolint:errcheck
		_ = c.Serve(ctx, lis)
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *simServer) stop() {
	s.cancel()
	<-s.done
}

func dialer(t *testing.T, args ...string) *hubblecli.Dialer {
	t.Helper()
	fs := hubblecli.ConnFlags()
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	d, err := hubblecli.NewDialer(fs)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// readRecording returns every flow and event of a recording directory.
func readRecording(t testing.TB, dir string) (flows []*flowpb.Flow, events []*observerpb.GetFlowsResponse) {
	t.Helper()
	// What a reader finds (tape.FindFiles): a live segment's pieces only
	// until its file is published.
	files, err := tape.FindFiles(dir)
	if err != nil {
		return nil, nil
	}
	for _, p := range files.Flows {
		if _, err := tape.ReadFile(context.Background(), schema.Flows, p, func(f *flowpb.Flow) error {
			flows = append(flows, f)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range files.Events {
		if _, err := tape.ReadFile(context.Background(), schema.Events, p, func(r *observerpb.GetFlowsResponse) error {
			events = append(events, r)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return flows, events
}

// stopWhenComplete ends a recording (through its Progress callback) once
// the simulation is over and everything it produced was recorded.
func stopWhenComplete(c *sim.Cluster, cancel context.CancelFunc) func(record.Progress) {
	return func(p record.Progress) {
		if c.Finished() && p.Flows >= c.Truth().Flows {
			cancel()
		}
	}
}

// Recording the simulator gives exactly the flows it produced.
func TestRecordMatchesSimulator(t *testing.T) {
	addr := testutil.FreeAddr(t)
	cfg := sim.Config{Seed: 21, Start: t0, Duration: 40 * time.Second, Scenario: sim.Scenarios["incident"], Truth: true}
	srv := serveSim(t, addr, cfg)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := record.Run(ctx, record.Options{Dialer: dialer(t, "--server", addr), Since: t0.Add(-time.Hour),
		Sink: tape.SinkOptions{Dir: dir, Writer: "test"}, Progress: stopWhenComplete(srv.c, cancel)})
	if err != nil {
		t.Fatal(err)
	}
	truth := srv.c.Truth()
	flows, _ := readRecording(t, dir)
	if uint64(len(flows)) != truth.Flows || res.Session.Totals.Flows != truth.Flows {
		t.Fatalf("recorded %d flows (manifest %d), the simulation produced %d", len(flows), res.Session.Totals.Flows, truth.Flows)
	}
	src := sim.NewSource(cfg.Scenario, cfg.Seed, defaults.SimRate, t0)
	want := map[string]*flowpb.Flow{}
	for range flows {
		f := src.Next()
		want[f.GetUuid()] = f
	}
	for _, f := range flows {
		if !proto.Equal(f, want[f.GetUuid()]) {
			t.Fatalf("recorded flow differs from the simulator's:\n%v\n%v", f, want[f.GetUuid()])
		}
	}
	m, err := tape.ReadManifest(dir)
	if err != nil || len(m.Sessions) != 1 || m.Sessions[0].Status != "complete" || m.Totals.Flows != truth.Flows ||
		m.Sessions[0].Server.RelayVersion == "" || len(m.Sessions[0].StatusAtStart) == 0 {
		t.Fatalf("manifest = %+v, %v", m, err)
	}
	// Nothing in the recording is readable by other users.
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error { //nolint:errcheck
		if fi, _ := d.Info(); fi != nil && fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", p, fi.Mode().Perm())
		}
		return nil
	})
}

// The server goes away mid-recording and comes back: the recording has
// every flow once, and the outage is recorded.
func TestRecordResumesAfterServerRestart(t *testing.T) {
	addr := testutil.FreeAddr(t)
	cfg := sim.Config{Seed: 8, Start: t0, Duration: 60 * time.Second, Truth: true}
	srv := serveSim(t, addr, cfg)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	var res record.Result
	var current atomic.Pointer[simServer]
	var reconnects atomic.Uint64
	go func() {
		var err error
		res, err = record.Run(ctx, record.Options{Dialer: dialer(t, "--server", addr), Since: t0,
			MinBackoff: 50 * time.Millisecond, Sink: tape.SinkOptions{Dir: dir, Writer: "test"},
			Progress: func(p record.Progress) {
				reconnects.Store(p.Reconnects)
				if srv2 := current.Load(); srv2 != nil {
					stopWhenComplete(srv2.c, cancel)(p)
				}
			}})
		done <- err
	}()
	// Stop the server once part of the run is recorded, and start it again
	// once the recorder has seen it go.
	testutil.Eventually(t, time.Minute, "the simulation produced 30000 flows", func() bool { return srv.c.Truth().Flows >= 30000 })
	srv.stop()
	testutil.Eventually(t, 30*time.Second, "the recorder noticed the server went away", func() bool { return reconnects.Load() > 0 })
	srv2 := serveSim(t, addr, cfg)
	current.Store(srv2)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	flows, events := readRecording(t, dir)
	uuids := map[string]bool{}
	for _, f := range flows {
		if uuids[f.GetUuid()] {
			t.Fatalf("flow %s recorded twice", f.GetUuid())
		}
		uuids[f.GetUuid()] = true
	}
	if want := srv2.c.Truth().Flows; uint64(len(flows)) != want {
		t.Fatalf("recorded %d flows, the simulation produced %d: a gap", len(flows), want)
	}
	if res.Session.Totals.Reconnects == 0 {
		t.Fatal("no reconnect counted")
	}
	var unavailable, connected int
	for _, e := range events {
		if e.GetNodeName() == schema.RecorderNode {
			switch e.GetNodeStatus().GetStateChange().String() {
			case "NODE_UNAVAILABLE":
				unavailable++
			case "NODE_CONNECTED":
				connected++
			}
		}
	}
	if unavailable == 0 || connected == 0 {
		t.Fatalf("the outage is not in the events: %d unavailable, %d connected", unavailable, connected)
	}
}

// A directory in use by a recorder is not touched by a second one.
func TestRecordingDirectoryIsLocked(t *testing.T) {
	addr := testutil.FreeAddr(t)
	serveSim(t, addr, sim.Config{Seed: 2, Start: t0, Speed: 1})
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := record.Run(ctx, record.Options{Dialer: dialer(t, "--server", addr), Sink: tape.SinkOptions{Dir: dir}})
		done <- err
	}()
	var id string
	testutil.Eventually(t, 30*time.Second, "the recorder wrote its manifest", func() bool {
		m, err := tape.ReadManifest(dir)
		if err == nil && len(m.Sessions) > 0 {
			id = m.Sessions[0].RecordingID
		}
		return id != ""
	})
	if _, err := tape.Recover(dir, "test"); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("recover on a live recording: %v, want a refusal", err)
	}
	// Another recorder may write the directory (per-node capture), but
	// not as the same session, nor the same stream again.
	_, err := record.Run(context.Background(), record.Options{Dialer: dialer(t, "--server", addr), Sink: tape.SinkOptions{Dir: dir, RecordingID: id}})
	if err == nil || !strings.Contains(err.Error(), "being written by another process") {
		t.Errorf("a second recorder of session %s: %v, want a refusal", id, err)
	}
	_, err = record.Run(context.Background(), record.Options{Dialer: dialer(t, "--server", addr), Sink: tape.SinkOptions{Dir: dir}})
	if err == nil || !strings.Contains(err.Error(), "by another recorder") {
		t.Errorf("a second recorder of the same server: %v, want a refusal", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// readRecordingQuiet counts the flows in the finished files of a recording
// that is still being written (files appear whole or not at all).
func readRecordingQuiet(dir string) (int, error) {
	files, infos, err := tape.FindAndStat(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range files.Flows {
		n += int(infos[p].Rows)
	}
	return n, nil
}
