package record_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/record"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// scrape reads a metrics endpoint with Prometheus' own text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s is not Prometheus' text format: %v", url, err)
	}
	return mfs
}

// sum adds a family's samples whose labels include want.
func sum(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var n float64
	for _, m := range mfs[name].GetMetric() {
		ok := true
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			ok = ok && found
		}
		if !ok {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			n += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			n += m.GetGauge().GetValue()
		}
	}
	return n
}

func status(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// The metrics a recorder serves count what the recording holds: flows
// written by node, lost events by source and node, derived rows by table,
// files; /readyz is ready while the stream is connected and writing, and
// not once the recorder has stopped; /healthz answers.
func TestMetricsCountWhatTheRecordingHolds(t *testing.T) {
	addr := testutil.FreeAddr(t)
	// A small ring served fast: the recorder falls behind and Hubble
	// reports lost events.
	cfg := sim.Config{Seed: 9, Start: t0, Duration: time.Minute, Rate: 1000, Speed: 20, RingCapacity: 300,
		Scenario: sim.Scenarios["incident"]}
	srv := serveSim(t, addr, cfg)
	m := record.NewMetrics()
	lis := testutil.Listen(t, testutil.FreeAddr(t))
	base := "http://" + lis.Addr().String()
	mctx, stopMetrics := context.WithCancel(context.Background())
	defer stopMetrics()
	go m.Serve(mctx, lis, discardLog()) //nolint:errcheck

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var sawReady atomic.Bool
	go func() {
		for ctx.Err() == nil {
			if code, _ := status(t, base+"/readyz"); code == http.StatusOK {
				sawReady.Store(true)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	dir := filepath.Join(t.TempDir(), "rec")
	var finishedAt time.Time
	res, err := record.Run(ctx, record.Options{Dialer: dialer(t, "--server", addr), Since: t0.Add(-time.Hour),
		Sink: tape.SinkOptions{Dir: dir, Writer: "test", RotateInterval: 2 * time.Second}, FlushInterval: 200 * time.Millisecond, Metrics: m,
		Progress: func(p record.Progress) {
			// Once the simulation is over, and the recorder had a moment
			// to take what is left.
			if srv.c.Finished() && finishedAt.IsZero() {
				finishedAt = time.Now()
			}
			if !finishedAt.IsZero() && time.Since(finishedAt) > 2*time.Second {
				cancel()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if !sawReady.Load() {
		t.Error("/readyz never said ready while the recorder was connected")
	}
	if code, body := status(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not ready") {
		t.Errorf("/readyz after the recorder stopped: %d %q, want 503 saying why", code, body)
	}
	if code, _ := status(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	mfs := scrape(t, base+"/metrics")

	flows, _ := readRecording(t, dir)
	byNode := map[string]float64{}
	for _, f := range flows {
		byNode[f.GetNodeName()]++
	}
	if got := sum(mfs, "flowtape_flows_written_total", nil); got != float64(len(flows)) || got != float64(res.Session.Totals.Flows) {
		t.Errorf("flowtape_flows_written_total = %v, the recording holds %d flows (manifest %d)", got, len(flows), res.Session.Totals.Flows)
	}
	for node, n := range byNode {
		if got := sum(mfs, "flowtape_flows_written_total", map[string]string{"node": node}); got != n {
			t.Errorf("flowtape_flows_written_total{node=%q} = %v, the recording holds %v", node, got, n)
		}
	}
	var lost uint64
	for _, n := range res.Session.Totals.LostEvents {
		lost += n
	}
	if lost == 0 {
		t.Fatal("the simulator reported no lost events: the test checks nothing of them")
	}
	if got := sum(mfs, "flowtape_lost_events_total", nil); got != float64(lost) {
		t.Errorf("flowtape_lost_events_total = %v, the manifest counts %d", got, lost)
	}
	if got := sum(mfs, "flowtape_flows_received_total", nil); got != float64(res.Session.Totals.Flows+res.Session.Totals.Duplicates) {
		t.Errorf("flowtape_flows_received_total = %v, want written + duplicates = %d", got, res.Session.Totals.Flows+res.Session.Totals.Duplicates)
	}
	files, err := tape.FindFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := sum(mfs, "flowtape_files_written_total", nil); got != float64(len(files.Flows)+len(files.Events)) {
		t.Errorf("flowtape_files_written_total = %v, the recording has %d files", got, len(files.Flows)+len(files.Events))
	}
	for _, kind := range schema.DerivedKinds {
		var rows int64
		for _, p := range files.Derived(kind) {
			info, err := tape.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			rows += info.Rows
		}
		if got := sum(mfs, "flowtape_derived_rows_total", map[string]string{"table": kind}); got != float64(rows) {
			t.Errorf("flowtape_derived_rows_total{table=%q} = %v, its files hold %d rows", kind, got, rows)
		}
	}
	if got := sum(mfs, "flowtape_last_flow_timestamp_seconds", nil); got <= float64(t0.Unix()) {
		t.Errorf("flowtape_last_flow_timestamp_seconds = %v, want the newest flow's time", got)
	}
	for _, name := range []string{"flowtape_disk_usage_bytes", "flowtape_build_info", "process_resident_memory_bytes"} {
		if mfs[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
