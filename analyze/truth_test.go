package analyze_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/simrecord"
	"github.com/flowtape/flowtape/printer"
	"github.com/flowtape/flowtape/sim"
)

// rowsBy indexes a result's rows by the values of key columns joined with "->".
func rowsBy(t *testing.T, res printer.Table, keys ...string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, m := range res.Records() {
		var k []string
		for _, key := range keys {
			k = append(k, fmt.Sprint(m[key]))
		}
		out[strings.Join(k, "->")] = m
	}
	return out
}

// num is a count of an analysis's row: an integer, not NULL.
func num(t testing.TB, r map[string]any, col string) uint64 {
	t.Helper()
	n, _ := integer(t, r, col, false)
	return uint64(n)
}

// The analyses of the simulator's incident, recorded through the real
// gRPC and record path, against the simulator's own truth: counts exactly,
// percentiles within the simulator's latency resolution.
func TestAnalysesMatchSimulatorTruth(t *testing.T) {
	t.Parallel() // beside TestClickHouseMatchesDuckDB: it changes no package state
	t0 := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	truth, err := simrecord.Run(t.Context(), sim.Config{Seed: 31, Start: t0, Duration: 150 * time.Second, Scenario: sim.Scenarios["incident"]}, dir, nil, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e := open(t, dir)
	run := func(t *testing.T, name string, p analyze.Params) printer.Table {
		t.Helper()
		res, err := e.Run(ctx, name, p)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	resolution := float64(truth.LatencyResNs) / 1e6
	checkStats := func(t *testing.T, what string, r map[string]any, st sim.Stats, quantiles ...string) {
		t.Helper()
		for _, c := range []struct {
			name string
			want uint64
		}{{"requests", st.Requests - st.NoResponse}, {"errors", st.Errors}, {"no_response", st.NoResponse}} {
			if v := num(t, r, c.name); v != c.want {
				t.Errorf("%s: %s %d, truth %d", what, c.name, v, c.want)
			}
		}
		var drops uint64
		for _, n := range st.Drops {
			drops += n
		}
		if v := num(t, r, "drops"); v != drops {
			t.Errorf("%s: drops %d, truth %v", what, v, st.Drops)
		}
		want := map[string]float64{"p50_ms": st.P50Ms, "p90_ms": st.P90Ms, "p95_ms": st.P95Ms, "p99_ms": st.P99Ms, "max_ms": st.MaxMs}
		for _, q := range quantiles {
			v, ok := r[q].(float64)
			if !ok {
				t.Errorf("%s: %s is %T %v, want milliseconds", what, q, r[q], r[q])
			} else if math.Abs(v-want[q]) > resolution {
				t.Errorf("%s: %s %.4f, truth %.4f", what, q, v, want[q])
			}
		}
	}

	t.Run("services", func(t *testing.T) {
		got := rowsBy(t, run(t, "services", analyze.Params{}), "service")
		for _, st := range truth.Services {
			r, ok := got[st.Service]
			if !ok {
				t.Errorf("%s: missing from the services analysis", st.Service)
				continue
			}
			if st.Requests == 0 {
				// redis-cart: plain TCP, no L7 proxy
				if r["visibility"] != "L4" || num(t, r, "connections") != st.Connections {
					t.Errorf("%s: visibility %v, connections %v; truth: L4, %d connections", st.Service, r["visibility"], r["connections"], st.Connections)
				}
				// Without L7 data there are no request counts, not zero ones.
				for _, col := range []string{"requests", "errors", "client_errors", "no_response"} {
					if _, ok := integer(t, r, col, true); ok {
						t.Errorf("%s: %s %v without L7 data, want NULL", st.Service, col, r[col])
					}
				}
				continue
			}
			if num(t, r, "client_errors") != st.ClientErrors {
				t.Errorf("%s: client_errors %v, truth %d", st.Service, r["client_errors"], st.ClientErrors)
			}
			checkStats(t, st.Service, r, st.Stats, "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")
			var denies uint64
			for reason, n := range st.Drops {
				if reason == "POLICY_DENIED" || reason == "POLICY_DENY" {
					denies += n
				}
			}
			if v := num(t, r, "policy_denies"); v != denies {
				t.Errorf("%s: policy_denies %d, truth %d", st.Service, v, denies)
			}
		}
		// 30% of Charge calls fail for the last 30 s of 150: not healthy.
		if r := got["paymentservice"]; r == nil || r["health"] == "healthy" {
			t.Errorf("paymentservice after its incident: %v", r)
		}
	})

	t.Run("graph", func(t *testing.T) {
		got := rowsBy(t, run(t, "graph", analyze.Params{}), "source", "destination")
		for _, et := range truth.Edges {
			key := et.Source + "->" + et.Destination
			r, ok := got[key]
			if !ok {
				t.Errorf("%s: missing from the graph", key)
				continue
			}
			if et.Requests > 0 {
				checkStats(t, key, r, et.Stats, "p50_ms", "p95_ms", "p99_ms")
			}
			// A connection the deny policy dropped never opened: the
			// truth counts handshakes, the graph every SYN.
			if len(et.Drops) == 0 && num(t, r, "connections") != et.Connections {
				t.Errorf("%s: connections %v, truth %d", key, r["connections"], et.Connections)
			}
		}
		if len(got) < len(truth.Edges) {
			t.Errorf("graph has %d edges, truth %d", len(got), len(truth.Edges))
		}
	})

	t.Run("timeline", func(t *testing.T) {
		got := rowsBy(t, run(t, "timeline", analyze.Params{Bucket: time.Duration(truth.BucketSeconds) * time.Second}), "bucket")
		if len(got) != len(truth.Buckets) {
			t.Errorf("%d buckets, truth %d", len(got), len(truth.Buckets))
		}
		for _, b := range truth.Buckets {
			r, ok := got[b.Start.Format(time.RFC3339Nano)]
			if !ok {
				t.Errorf("bucket %s missing", b.Start)
				continue
			}
			if num(t, r, "flows") != b.Flows || num(t, r, "requests")+num(t, r, "no_response") != b.Requests ||
				num(t, r, "errors") != b.Errors || num(t, r, "drops") != b.Drops {
				t.Errorf("bucket %s: flows %v requests %v+%v errors %v drops %v; truth %+v", b.Start, r["flows"], r["requests"], r["no_response"], r["errors"], r["drops"], b)
			}
		}
	})

	t.Run("dns", func(t *testing.T) {
		res := run(t, "dns", analyze.Params{})
		answers, errs := map[string]uint64{}, map[string]uint64{}
		for _, r := range rowsBy(t, res, "client", "query") {
			answers[r["client"].(string)] += num(t, r, "answers")
			errs[r["client"].(string)] += num(t, r, "errors")
		}
		for _, d := range truth.DNS {
			if answers[d.Client] != d.Queries || errs[d.Client] != d.Queries-d.Rcodes["0"] {
				t.Errorf("%s: %d answers, %d errors; truth %d, rcodes %v", d.Client, answers[d.Client], errs[d.Client], d.Queries, d.Rcodes)
			}
		}
	})

	// Every flow to the outside: the payment provider and the mail relay
	// by the names on their flows, the incident's beacon by its address;
	// since the incident began, the beacon alone is new.
	t.Run("egress", func(t *testing.T) {
		if len(truth.Egress) != 3 {
			t.Fatalf("the simulator's egress: %+v, want its three destinations", truth.Egress)
		}
		got := rowsBy(t, run(t, "egress", analyze.Params{}), "source", "destination", "port")
		if len(got) != len(truth.Egress) {
			t.Errorf("%d rows, truth %d: %v", len(got), len(truth.Egress), got)
		}
		for _, e := range truth.Egress {
			key := fmt.Sprintf("%s->%s->%d", e.Source, e.Destination, e.Port)
			r := got[key]
			if r == nil {
				t.Errorf("%s: missing", key)
				continue
			}
			named := "flows"
			if e.Destination == e.IP {
				named = "address"
			}
			if num(t, r, "flows") != e.Flows || num(t, r, "connections") != e.Connections || r["ips"] != e.IP ||
				r["protocol"] != e.Protocol || r["verdict"] != e.Verdict || r["source_namespace"] != e.Namespace || r["named_by"] != named ||
				r["first_seen"] != e.First.Format(time.RFC3339Nano) || r["last_seen"] != e.Last.Format(time.RFC3339Nano) {
				t.Errorf("%s: %v; truth %+v, named by %s", key, r, e, named)
			}
		}
		fresh := run(t, "egress", analyze.Params{NewSince: *truth.IncidentStart}).Records()
		if len(fresh) != 1 || fresh[0]["source"] != "currencyservice" || fresh[0]["destination"] != "203.0.113.66" {
			t.Errorf("--new-since %s (the incident): %v; want currencyservice's beacon alone", truth.IncidentStart, fresh)
		}
	})

	t.Run("coverage", func(t *testing.T) {
		got := rowsBy(t, run(t, "coverage", analyze.Params{}), "node")
		if r := got["(all)"]; r == nil || num(t, r, "flows") != truth.Flows || r["complete"] != true {
			t.Errorf("(all): %v; truth %d flows, nothing lost", r, truth.Flows)
		}
		for node, n := range truth.FlowsByNode {
			if r := got[node]; r == nil || num(t, r, "flows") != n {
				t.Errorf("%s: %v; truth %d flows", node, r, n)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		got := rowsBy(t, run(t, "errors", analyze.Params{}), "source", "destination", "path")
		// During the incident paymentservice answers 503 to Charge calls.
		pay := truth.Edge
		et, _ := pay("checkoutservice", "paymentservice")
		r := got["checkoutservice->paymentservice->hipstershop.PaymentService/Charge"]
		if r == nil || num(t, r, "errors") != et.Errors || !strings.Contains(fmt.Sprint(r["statuses"]), "503=") {
			t.Errorf("Charge errors: %v; truth %d errors", r, et.Errors)
		}
	})

	t.Run("drops", func(t *testing.T) {
		res := run(t, "drops", analyze.Params{})
		byReason := map[string]uint64{}
		for _, r := range rowsBy(t, res, "reason", "source", "destination", "port") {
			byReason[r["reason"].(string)] += num(t, r, "drops")
			if r["reason"] == "POLICY_DENY" && r["denied_by"] != "default/deny-recommendation-to-catalog" {
				t.Errorf("deny policy not named: %v", r)
			}
		}
		want := map[string]uint64{}
		for _, st := range truth.Services {
			for reason, n := range st.Drops {
				want[reason] += n
			}
		}
		if fmt.Sprint(byReason) != fmt.Sprint(want) {
			t.Errorf("drops by reason %v, truth %v", byReason, want)
		}
	})
}
