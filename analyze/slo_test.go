package analyze_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/sim"
)

// The simulator's incident, six minutes into a nine-minute recording: the
// services it broke would have paged (1h/5m burn above 14.4x) after it
// began and within the short window; the services it left alone, and
// every service of the steady scenario, would not have; the availability
// SLI counts what services counts (requests, answered or not; errors and
// requests never answered bad), which TestAnalysesMatchSimulatorTruth
// checks against the simulator's truth.
func TestSLOPagesAfterTheIncident(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	scen := sim.Scenarios["incident"]
	scen.IncidentAt = 6 * time.Minute
	incident := t0.Add(scen.IncidentAt)
	dir := t.TempDir()
	testutil.WriteRecording(t, dir, "incident", testutil.SimResponses(scen, 11, 100, t0, t0.Add(9*time.Minute)))
	e := open(t, dir)
	ctx := context.Background()
	slo, err := e.Run(ctx, "slo", analyze.Params{})
	if err != nil {
		t.Fatal(err)
	}
	services, err := e.Run(ctx, "services", analyze.Params{})
	if err != nil {
		t.Fatal(err)
	}
	svc := rowsBy(t, services, "service")
	rows := rowsBy(t, slo, "service", "sli")
	for _, name := range []string{"paymentservice", "checkoutservice", "recommendationservice"} {
		r, ok := rows[name+"->availability"]
		if !ok {
			t.Fatalf("no availability row of %s in %v", name, slo.Rows)
		}
		page, err := time.Parse(time.RFC3339Nano, fmt.Sprint(r["page_1h_5m"]))
		if err != nil || !page.After(incident) || page.After(incident.Add(5*time.Minute)) {
			t.Errorf("%s: paged at %v; the incident began at %s: want a page after it, within 5 minutes", name, r["page_1h_5m"], incident)
		}
		if r["page_6h_30m"] != nil {
			t.Errorf("%s: the 6h/30m alert paged at %v in a recording shorter than its 30-minute window", name, r["page_6h_30m"])
		}
	}
	for _, name := range []string{"adservice", "currencyservice", "shippingservice", "emailservice"} {
		if r := rows[name+"->availability"]; r == nil || r["page_1h_5m"] != nil {
			t.Errorf("%s, untouched by the incident, paged: %v", name, r)
		}
	}
	for key, r := range rows {
		if r["sli"] != "availability" || r["basis"] != "requests" {
			continue
		}
		s := svc[r["service"].(string)]
		if s == nil {
			t.Errorf("%s: no such service in services", key)
			continue
		}
		if ev, want := num(t, r, "events"), num(t, s, "requests")+num(t, s, "no_response"); ev != want {
			t.Errorf("%s: %d events, services counts %d requests and requests never answered", key, ev, want)
		}
		if bad, want := num(t, r, "bad"), num(t, s, "errors")+num(t, s, "no_response"); bad != want {
			t.Errorf("%s: %d bad events, services counts %d errors and requests never answered", key, bad, want)
		}
	}

	steady := t.TempDir()
	testutil.WriteRecording(t, steady, "steady", testutil.SimResponses(sim.Scenarios["steady"], 11, 100, t0, t0.Add(9*time.Minute)))
	res, err := open(t, steady).Run(ctx, "slo", analyze.Params{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) == 0 {
		t.Fatal("steady: no rows")
	}
	for _, r := range res.Records() {
		if r["page_1h_5m"] != nil || r["page_6h_30m"] != nil {
			t.Errorf("steady: %s/%s (%s) paged: %v", r["namespace"], r["service"], r["sli"], r)
		}
	}
}

// A --since before the recording adds steps without events, not coverage:
// whether and when an alert would have paged, and the largest 5-minute
// burn rate, are the recording's own, whatever --since says (with --since
// two hours before, over the summaries too). An incident one minute into a
// three-minute recording pages in none of them; one six minutes into a
// nine-minute recording pages at the same step in all.
func TestSLOSinceBeforeTheRecordingCoversNothing(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	ctx := context.Background()
	for _, tc := range []struct {
		incidentAt, length time.Duration
		pages              bool
	}{{time.Minute, 3 * time.Minute, false}, {6 * time.Minute, 9 * time.Minute, true}} {
		scen := sim.Scenarios["incident"]
		scen.IncidentAt = tc.incidentAt
		dir := t.TempDir()
		testutil.WriteRecording(t, dir, "incident", testutil.SimResponses(scen, 11, 100, t0, t0.Add(tc.length)))
		res, err := open(t, dir).Run(ctx, "slo", analyze.Params{})
		if err != nil {
			t.Fatal(err)
		}
		want := rowsBy(t, res, "service", "sli", "basis")
		broken := want["recommendationservice->availability->requests"]
		if broken == nil || num(t, broken, "bad") == 0 {
			t.Fatalf("%s recording: the incident's broken service has no bad events: %v", tc.length, broken)
		}
		if paged := broken["page_1h_5m"] != nil; paged != tc.pages {
			t.Fatalf("%s recording, incident at %s: recommendationservice paged %v, want %v", tc.length, tc.incidentAt, broken["page_1h_5m"], tc.pages)
		}
		for _, before := range []time.Duration{10 * time.Minute, 2 * time.Hour} {
			res, err := open(t, dir).Run(ctx, "slo", analyze.Params{Since: t0.Add(-before)})
			if err != nil {
				t.Fatal(err)
			}
			got := rowsBy(t, res, "service", "sli", "basis")
			if len(got) != len(want) {
				t.Errorf("%s recording, --since %s before it: %d rows, %d without it", tc.length, before, len(got), len(want))
			}
			for key, w := range want {
				g := got[key]
				if g == nil {
					t.Errorf("%s recording, --since %s before it: no row %s", tc.length, before, key)
					continue
				}
				for _, col := range []string{"events", "bad", "max_burn_5m", "page_1h_5m", "page_6h_30m"} {
					if fmt.Sprint(g[col]) != fmt.Sprint(w[col]) {
						t.Errorf("%s recording, --since %s before it: %s %s = %v, %v without it", tc.length, before, key, col, g[col], w[col])
					}
				}
			}
		}
	}
}

// Burn rates over the window's own data: with --objective 50 no burn rate
// exceeds 2 (all requests failing burn 1 / (1 - 0.5) times the budget),
// so nothing pages; the budget is (1 - objective) of the events; the
// latency SLI counts answered requests slower than --latency as bad.
func TestSLOParameters(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	testutil.WriteRecording(t, dir, "incident", testutil.SimResponses(sim.Scenarios["incident"], 11, 100, t0, t0.Add(7*time.Minute)))
	e := open(t, dir)
	res, err := e.Run(context.Background(), "slo", analyze.Params{Objective: 50, Latency: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	latency := 0
	for _, r := range res.Records() {
		if burn, _ := r["max_burn_5m"].(float64); r["page_1h_5m"] != nil || burn > 2 {
			t.Errorf("%s (%s): max 5m burn rate %v, paged at %v at --objective 50", r["service"], r["sli"], r["max_burn_5m"], r["page_1h_5m"])
		}
		if b, want := r["budget"].(float64), float64(num(t, r, "events"))/2; b != float64(int64(want*10+0.5))/10 {
			t.Errorf("%s (%s): budget %v of %d events at 50%%", r["service"], r["sli"], b, num(t, r, "events"))
		}
		if r["sli"] == "latency" {
			latency++
		}
	}
	if latency == 0 {
		t.Fatal("no latency SLI rows with --latency")
	}
	slow := count(t, e, "SELECT count(*) FROM requests_counted WHERE NOT no_response AND latency_ns > 100e6")
	var bad int64
	for _, r := range res.Records() {
		if r["sli"] == "latency" {
			bad += int64(num(t, r, "bad"))
		}
	}
	if bad != slow {
		t.Errorf("latency SLI: %d bad events, %d answered requests slower than 100ms", bad, slow)
	}
}
