package main

import (
	"context"
	"fmt"
	"math"
	"net"
	"testing"
	"time"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/record"
	"github.com/flowtape/flowtape/sim"
)

// The services analysis of the simulator's incident, recorded through the
// real gRPC and record path, against the simulator's own truth: requests,
// errors, client errors and unanswered requests exactly; percentiles within
// the simulator's latency resolution.
func TestServicesMatchSimulatorTruth(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	cfg := sim.Config{Seed: 31, Start: t0, Duration: 150 * time.Second, Scenario: sim.Scenarios["incident"], Truth: true}
	c, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)        //nolint:errcheck
	go c.Serve(ctx, lis) //nolint:errcheck

	dir := t.TempDir()
	recCtx, stop := context.WithTimeout(ctx, 3*time.Minute)
	defer stop()
	fl := record.ConnFlags()
	if err := fl.Parse([]string{"--server", lis.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	d, err := record.NewDialer(fl)
	if err != nil {
		t.Fatal(err)
	}
	_, err = record.Run(recCtx, record.Options{Dialer: d, Since: t0.Add(-time.Hour), Sink: record.SinkOptions{Dir: dir, Writer: "test"},
		Progress: func(p record.Progress) {
			if c.Finished() && p.Flows >= c.Truth().Flows {
				stop()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	truth := c.Truth()

	e, err := analyze.Open(ctx, []string{dir}, analyze.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	res, err := e.Run(ctx, "services", analyze.Params{})
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, c := range res.Columns {
		col[c] = i
	}
	got := map[string][]any{}
	for _, r := range res.Rows {
		got[r[col["service"]].(string)] = r
	}
	resolution := float64(truth.LatencyResNs) / 1e6
	for _, st := range truth.Services {
		if st.Requests == 0 {
			continue
		}
		r, ok := got[st.Service]
		if !ok {
			t.Errorf("%s: missing from the services analysis", st.Service)
			continue
		}
		for _, c := range []struct {
			name string
			want uint64
		}{{"requests", st.Requests}, {"errors", st.Errors}, {"client_errors", st.ClientErrors}, {"no_response", st.NoResponse}} {
			if v := r[col[c.name]].(int64); uint64(v) != c.want {
				t.Errorf("%s: %s %d, truth %d", st.Service, c.name, v, c.want)
			}
		}
		var drops, denies uint64
		var reasons []string
		for reason, n := range st.Drops {
			drops += n
			if reason == "POLICY_DENIED" || reason == "POLICY_DENY" {
				denies += n
			}
			reasons = append(reasons, fmt.Sprintf("%s=%d", reason, n))
		}
		if v := uint64(r[col["drops"]].(int64)); v != drops {
			t.Errorf("%s: drops %d, truth %d (%v)", st.Service, v, drops, reasons)
		}
		if v := uint64(r[col["policy_denies"]].(int64)); v != denies {
			t.Errorf("%s: policy_denies %d, truth %d", st.Service, v, denies)
		}
		if len(reasons) == 1 && r[col["drops_by_reason"]] != reasons[0] {
			t.Errorf("%s: drops_by_reason %q, truth %v", st.Service, r[col["drops_by_reason"]], reasons)
		}
		for _, c := range []struct {
			name string
			want float64
		}{{"p50_ms", st.P50Ms}, {"p90_ms", st.P90Ms}, {"p95_ms", st.P95Ms}, {"p99_ms", st.P99Ms}, {"max_ms", st.MaxMs}} {
			v, _ := r[col[c.name]].(float64)
			if math.Abs(v-c.want) > resolution {
				t.Errorf("%s: %s %.4f, truth %.4f", st.Service, c.name, v, c.want)
			}
		}
	}
	if pc, ok := got["productcatalogservice"]; !ok || pc[col["policy_denies"]].(int64) == 0 {
		t.Errorf("productcatalogservice: the deny policy's drops are missing: %v", pc)
	}
	// 30% of Charge calls fail for the last 30 s of 150: not healthy.
	if r, ok := got["paymentservice"]; !ok || r[col["health"]] == "healthy" {
		t.Errorf("paymentservice after its incident: %v", r)
	}
}
