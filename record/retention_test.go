package record_test

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/record"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

func duBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error { //nolint:errcheck
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// A recorder with a small disk bound keeps its directory under it while it
// records (sampled all along), removes the oldest files to do so, and
// counts what it removed: the flows left and the flows expired add up to
// the flows recorded, and the manifest says up to when flows expired.
func TestRecordWithRetention(t *testing.T) {
	addr := testutil.FreeAddr(t)
	cfg := sim.Config{Seed: 5, Start: t0, Duration: 3 * time.Minute, Rate: 300, Speed: 30, Scenario: sim.Scenarios["steady"]}
	serveSim(t, addr, cfg)
	dir := filepath.Join(t.TempDir(), "rec")
	const bound = 3 << 20
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var peak atomic.Int64
	var wg sync.WaitGroup
	sampling, stopSampling := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for sampling.Err() == nil {
			if n := duBytes(dir); n > peak.Load() {
				peak.Store(n)
				if n > bound {
					t.Logf("over the bound: %d bytes: %v", n, breakdown(dir))
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var finished atomic.Bool
	res, err := record.Run(ctx, record.Options{Dialer: dialer(t, "--server", addr), Since: t0.Add(-time.Hour),
		Sink: tape.SinkOptions{Dir: dir, Writer: "test"}, FlushInterval: 50 * time.Millisecond,
		Retention: tape.Retention{MaxBytes: bound},
		Progress: func(p record.Progress) {
			if p.Flows > 0 && p.Flows >= uint64(cfg.Rate*cfg.Duration.Seconds())*9/10 && !finished.Swap(true) {
				time.AfterFunc(time.Second, cancel)
			}
		}})
	stopSampling()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p > bound {
		t.Errorf("the directory took %d bytes at its peak, over the bound of %d", p, bound)
	}
	if du := duBytes(dir); du > bound {
		t.Errorf("the directory takes %d bytes after the recording, over the bound of %d", du, bound)
	}
	m, err := tape.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Expired == nil || m.Expired.Flows == 0 || m.Expired.LastFlow == nil {
		t.Fatalf("manifest's expired = %+v: a recording past its bound must say what it removed", m.Expired)
	}
	flows, _ := readRecording(t, dir)
	if got := uint64(len(flows)) + uint64(m.Expired.Flows); got != res.Session.Totals.Flows {
		t.Errorf("%d flows left + %d expired = %d, want the %d recorded", len(flows), m.Expired.Flows, got, res.Session.Totals.Flows)
	}
	// The oldest files go first; files follow the stream's order, in
	// which nodes' flows interleave a little out of time order.
	const skew = 2 * time.Second
	for _, f := range flows {
		if f.GetTime().AsTime().Before(m.Expired.LastFlow.Add(-skew)) {
			t.Fatalf("flow at %v is left though flows up to %v expired: the oldest go first", f.GetTime().AsTime(), m.Expired.LastFlow)
		}
	}
	if s := m.Sessions[len(m.Sessions)-1]; s.Retention == nil || s.Retention.MaxBytes != bound {
		t.Errorf("session's retention = %+v, want the bound recorded", s.Retention)
	}
	t.Logf("recorded %d flows, %d expired in %d removals, peak %d bytes of %d", res.Session.Totals.Flows, m.Expired.Flows, m.Expired.Removals, peak.Load(), bound)
}

func breakdown(dir string) map[string]int64 {
	out := map[string]int64{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error { //nolint:errcheck
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				rel, _ := filepath.Rel(dir, p)
				k := strings.SplitN(rel, "/", 2)[0]
				b := filepath.Base(p)
				switch {
				case strings.HasSuffix(b, ".wal"):
					k += " wal"
				case strings.HasSuffix(b, ".tmp"):
					k += " tmp"
				case strings.Contains(b, ".p0"):
					k += " piece"
				}
				out[k] += info.Size()
			}
		}
		return nil
	})
	return out
}
