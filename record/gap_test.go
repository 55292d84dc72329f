package record_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/record"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// The server is unreachable while its ring buffers wrap: the flows
// overwritten meanwhile are recorded as lost events, per node, with the
// gap's bounds and about the right count; nothing else is missing. So too
// for a recording of some flows only (a filter): the flows it lost are
// the matching ones, at their rate, not the ring's.
func TestRingWrapDuringOutageIsRecordedAsLost(t *testing.T) {
	cases := []struct {
		name  string
		allow []*flowpb.FlowFilter
		match func(*flowpb.Flow) bool
	}{
		{"every flow", nil, func(*flowpb.Flow) bool { return true }},
		// about 6% of the simulation's flows
		{"--to-pod default/cartservice", []*flowpb.FlowFilter{{DestinationPod: []string{"default/cartservice"}}},
			func(f *flowpb.Flow) bool {
				return f.GetDestination().GetNamespace() == "default" && strings.HasPrefix(f.GetDestination().GetPodName(), "cartservice")
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { ringWrap(t, tc.allow, tc.match) })
	}
}

func ringWrap(t *testing.T, allow []*flowpb.FlowFilter, match func(*flowpb.Flow) bool) {
	start := time.Now().Truncate(time.Millisecond)
	cfg := sim.Config{Seed: 9, Start: start, Speed: 3, RingCapacity: 1000, Truth: true}
	c, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	go c.Run(runCtx) //nolint:errcheck
	addr := testutil.FreeAddr(t)
	serve := func() func() {
		lis := testutil.Listen(t, addr)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = c.Serve(ctx, lis); close(done) }()
		return func() { cancel(); <-done }
	}
	stop := serve()
	dir := t.TempDir()
	recCtx, stopRec := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var progress atomic.Pointer[record.Progress]
	go func() {
		_, err := record.Run(recCtx, record.Options{Dialer: dialer(t, "--server", addr), MinBackoff: 50 * time.Millisecond, Allow: allow,
			Sink: tape.SinkOptions{Dir: dir, Writer: "test"}, Progress: func(p record.Progress) { progress.Store(&p) }})
		done <- err
	}()
	recorded := func() uint64 {
		if p := progress.Load(); p != nil {
			return p.Flows
		}
		return 0
	}
	testutil.Eventually(t, 30*time.Second, "the recorder receives flows", func() bool { return recorded() > 0 })
	stop()
	// Away while every node's ring wraps more than once (in the
	// simulation's own flows, not wall time).
	atStop := maps.Clone(c.Truth().FlowsByNode)
	testutil.Eventually(t, 60*time.Second, "the rings wrap", func() bool {
		for node, n := range c.Truth().FlowsByNode {
			if n < atStop[node]+2*uint64(cfg.RingCapacity) {
				return false
			}
		}
		return true
	})
	before := recorded()
	stop = serve()
	// (a ring's worth of the flows recorded)
	after := uint64(cfg.RingCapacity)
	if allow != nil {
		after /= 10
	}
	testutil.Eventually(t, 30*time.Second, "the recorder is back and receives flows", func() bool {
		p := progress.Load()
		return p != nil && p.Reconnects > 0 && p.Connected && p.Flows > before+after
	})
	stopRec()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stop()

	flows, events := readRecording(t, dir)
	if len(flows) == 0 {
		t.Fatal("nothing recorded")
	}
	type window struct{ first, last time.Time }
	gaps := map[string][]window{}
	// The recorder's gap events carry the gap's bounds; lost events the
	// server sent itself (a reader that fell behind) do not.
	var estimated, serverLost uint64
	for _, e := range events {
		if l := e.GetLostEvents(); l != nil && l.GetSource().String() == "HUBBLE_RING_BUFFER" {
			if l.GetFirst() == nil {
				serverLost += l.GetNumEventsLost()
				continue
			}
			gaps[e.GetNodeName()] = append(gaps[e.GetNodeName()], window{l.GetFirst().AsTime(), l.GetLast().AsTime()})
			estimated += l.GetNumEventsLost()
		}
	}
	if len(gaps) == 0 {
		for _, e := range events {
			t.Logf("event %v", e)
		}
		t.Fatal("the flows overwritten during the outage are not recorded as lost")
	}
	// Compare with what really happened: the simulator's flows between the
	// first and the last recorded flow that were not recorded.
	got := map[string]bool{}
	inside, example := 0, ""
	first, last := flows[0].GetTime().AsTime(), flows[0].GetTime().AsTime()
	for _, f := range flows {
		got[f.GetUuid()] = true
		// A gap spans from the last flow recorded before it to the first
		// after it: no recorded flow of its node lies inside (a gap that
		// ended at the ring's oldest flow when the recorder asked, after
		// the new stream had started reading the ring, held flows the
		// stream delivered).
		for _, w := range gaps[f.GetNodeName()] {
			if at := f.GetTime().AsTime(); at.After(w.first) && at.Before(w.last) {
				if inside == 0 {
					example = fmt.Sprintf("flow %s of %s at %s, inside the gap from %s to %s", f.GetUuid(), f.GetNodeName(),
						at.Format(time.RFC3339Nano), w.first.Format(time.RFC3339Nano), w.last.Format(time.RFC3339Nano))
				}
				inside++
			}
		}
		if at := f.GetTime().AsTime(); at.Before(first) {
			first = at
		} else if at.After(last) {
			last = at
		}
	}
	src := sim.NewSource(cfg.Scenario, cfg.Seed, defaults.SimRate, start)
	var missing, outside uint64
	for {
		f := src.Next()
		at := f.GetTime().AsTime()
		if at.After(last) {
			break
		}
		if at.Before(first) || got[f.GetUuid()] || !match(f) {
			continue
		}
		inGap := false
		for _, w := range gaps[f.GetNodeName()] {
			if !at.Before(w.first) && !at.After(w.last) {
				inGap = true
			}
		}
		if inGap {
			missing++
		} else {
			outside++
		}
	}
	if inside > 0 {
		t.Errorf("%d recorded flows lie inside the recorded gaps, which count them as lost: %s", inside, example)
	}
	t.Logf("missing %d flows in the gaps, estimated %d; %d missing elsewhere, the server reported %d lost; gaps %v",
		missing, estimated, outside, serverLost, gaps)
	if outside > serverLost {
		t.Fatalf("%d flows are missing outside the recorded gaps, but only %d were reported lost: a silent gap", outside, serverLost)
	}
	// The count is an estimate from the rate of bursty traffic on both
	// sides of the gap: 0.94-1.03x the truth on a quiet machine, 0.98-1.06x
	// with three busy loops on its two cores, of every flow or of the
	// filter's (2026-12-07; before gaps ended at the first flow after
	// them, up to 1.29x in a loaded run; the filter's 4.3x at the ring's
	// rate).
	if missing == 0 || float64(estimated) < 0.7*float64(missing) || float64(estimated) > 1.4*float64(missing) {
		t.Fatalf("estimated %d lost flows, %d are missing", estimated, missing)
	}
}
