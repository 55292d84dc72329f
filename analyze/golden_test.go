package analyze_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/printer"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

var allSamples = []string{
	"basic-sample-10-flows.json", "basic-sample-330-dns-flows.json", "basic-sample-400-icmpv4-flows.json",
	"basic-sample-400-tcp-flows.json", "basic-sample-5-dns-flows.json", "basic-sample-5-http-flows.json",
}

// golden compares an analysis's table output with testdata/golden/NAME.txt.
func golden(t *testing.T, name string, res printer.Table) {
	t.Helper()
	var buf bytes.Buffer
	if err := printer.Print(&buf, "table", res); err != nil {
		t.Fatal(err)
	}
	testutil.Golden(t, testutil.Testdata("golden", name+".txt"), buf.Bytes(), *update, "go test ./analyze -run Golden -update")
}

// integer is an integer cell of an analysis's row (BIGINT columns come
// back as int64), or fails the test: a column that turned into a string, a
// float or NULL, or a name that is no column, must not count as 0. ok is
// false for a NULL the caller allows (nullable).
func integer(t testing.TB, m map[string]any, col string, nullable bool) (n int64, ok bool) {
	t.Helper()
	v, present := m[col]
	switch x := v.(type) {
	case int64:
		return x, true
	case nil:
		if !present {
			t.Fatalf("no column %s in %v", col, m)
		}
		if nullable {
			return 0, false
		}
		t.Fatalf("%s is NULL in %v: want an integer", col, m)
	}
	t.Fatalf("%s is %T %v in %v: want an integer", col, v, v, m)
	return 0, false
}

// sum adds up an integer column over the rows that pass keep.
func sum(t testing.TB, res printer.Table, col string, keep func(map[string]any) bool) int64 {
	t.Helper()
	var n int64
	for _, m := range res.Records() {
		if keep != nil && !keep(m) {
			continue
		}
		v, _ := integer(t, m, col, false)
		n += v
	}
	return n
}

// dropsFixture is a hand-written capture of DROPPED flows, which the real
// captures lack (see testdata/fixtures/README.md).
var dropsFixture = testutil.Testdata("fixtures", "drops.json")

// Every analysis over the real captures and the drops fixture: golden
// output, and the totals a reader would check by hand, counted here from
// the flows themselves.
func TestGoldenAnalysesOnSamples(t *testing.T) {
	inputs := []string{dropsFixture}
	for _, s := range allSamples {
		inputs = append(inputs, testutil.Testdata("samples", s))
	}
	var resps []*observerpb.GetFlowsResponse
	dir := t.TempDir()
	for i, in := range inputs {
		rs := testutil.LoadResponses(t, in)
		testutil.WriteRecording(t, dir, fmt.Sprintf("s%d", i), rs)
		resps = append(resps, rs...)
	}
	var flows, httpResponses, http5xx, dnsAnswers, dnsErrors, dropped, policyDenies int64
	byNode, lostByNode := map[string]int64{}, map[string]int64{}
	// drops by reason, by the policies that denied them (namespace/name,
	// as the drops analysis joins them), and which reasons on which nodes
	dropsBy, deniedBy, dropNodes := map[string]int64{}, map[string]int64{}, map[string]bool{}
	for _, r := range resps {
		lostByNode[r.GetNodeName()] += int64(r.GetLostEvents().GetNumEventsLost())
		f := r.GetFlow()
		if f == nil {
			continue
		}
		flows++
		byNode[f.GetNodeName()]++
		if f.GetVerdict() == flowpb.Verdict_DROPPED {
			dropped++
			reason := f.GetDropReasonDesc()
			dropsBy[reason.String()]++
			if reason == flowpb.DropReason_POLICY_DENIED || reason == flowpb.DropReason_POLICY_DENY {
				policyDenies++
			}
			var policies []string
			for _, p := range append(f.GetEgressDeniedBy(), f.GetIngressDeniedBy()...) {
				policies = append(policies, p.GetNamespace()+"/"+p.GetName())
			}
			if len(policies) > 0 {
				deniedBy[strings.Join(policies, ",")]++
			}
			dropNodes[reason.String()+" on "+f.GetNodeName()] = true
		}
		l7 := f.GetL7()
		if l7.GetType() != flowpb.L7FlowType_RESPONSE {
			continue
		}
		if h := l7.GetHttp(); h != nil {
			httpResponses++
			if h.GetCode() >= 500 {
				http5xx++
			}
		}
		if d := l7.GetDns(); d != nil {
			dnsAnswers++
			if d.GetRcode() != 0 {
				dnsErrors++
			}
		}
	}
	// The fixture is what the drops below are about: several reasons, on
	// more than one node, some denied by named policies.
	if len(dropsBy) < 3 || len(deniedBy) < 2 || !dropNodes["POLICY_DENY on kind-worker"] || !dropNodes["POLICY_DENY on kind-worker2"] {
		t.Fatalf("the inputs hold drops %v, denied by %v, on %v: too few to test the analyses of drops", dropsBy, deniedBy, dropNodes)
	}
	e := open(t, dir)
	ctx := context.Background()
	run := func(name string, p analyze.Params, variant ...string) printer.Table {
		t.Helper()
		res, err := e.Run(ctx, name, p)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, name+strings.Join(variant, ""), res)
		return res
	}
	l7 := func(m map[string]any) bool { return m["visibility"] == "L7" }
	res := run("services", analyze.Params{})
	if sum(t, res, "requests", l7) != httpResponses || sum(t, res, "errors", l7) != http5xx {
		t.Errorf("services: %d requests, %d errors; the flows hold %d HTTP responses, %d of them 5xx",
			sum(t, res, "requests", l7), sum(t, res, "errors", l7), httpResponses, http5xx)
	}
	byReason := map[string]int64{}
	for _, m := range res.Records() {
		for _, kv := range strings.Split(m["drops_by_reason"].(string), ",") {
			if reason, n, ok := strings.Cut(kv, "="); ok {
				v, err := strconv.ParseInt(n, 10, 64)
				if err != nil {
					t.Fatalf("services: drops_by_reason %q", m["drops_by_reason"])
				}
				byReason[reason] += v
			}
		}
	}
	if sum(t, res, "drops", nil) != dropped || sum(t, res, "policy_denies", nil) != policyDenies || !maps.Equal(byReason, dropsBy) {
		t.Errorf("services: %d drops (%v), %d policy denies; the flows hold %d DROPPED (%v), %d denied by policy",
			sum(t, res, "drops", nil), byReason, sum(t, res, "policy_denies", nil), dropped, dropsBy, policyDenies)
	}
	if res := run("graph", analyze.Params{}); sum(t, res, "flows", nil) != flows || sum(t, res, "drops", nil) != dropped {
		t.Errorf("graph: %d flows, %d drops on its edges; the inputs hold %d, %d DROPPED", sum(t, res, "flows", nil), sum(t, res, "drops", nil), flows, dropped)
	}
	run("graph", analyze.Params{Level: "pod"}, "-pod")
	isL7 := func(m map[string]any) bool { return m["protocol"] == "http" || m["protocol"] == "grpc" }
	if res := run("errors", analyze.Params{}); sum(t, res, "errors", isL7) != http5xx {
		t.Errorf("errors: %d L7 errors; the flows hold %d 5xx", sum(t, res, "errors", isL7), http5xx)
	}
	res = run("drops", analyze.Params{})
	gotBy, gotDenied, gotNodes := map[string]int64{}, map[string]int64{}, map[string]bool{}
	for _, m := range res.Records() {
		n, _ := integer(t, m, "drops", false)
		reason := m["reason"].(string)
		gotBy[reason] += n
		if d := m["denied_by"].(string); d != "" {
			gotDenied[d] += n
		}
		for _, node := range strings.Split(m["nodes"].(string), ",") {
			gotNodes[reason+" on "+node] = true
		}
	}
	if !maps.Equal(gotBy, dropsBy) || !maps.Equal(gotDenied, deniedBy) {
		t.Errorf("drops: by reason %v, denied by %v; the flows hold %v, denied by %v", gotBy, gotDenied, dropsBy, deniedBy)
	}
	if !maps.Equal(gotNodes, dropNodes) {
		t.Errorf("drops: on nodes %v; the flows %v", gotNodes, dropNodes)
	}
	if res := run("dns", analyze.Params{}); sum(t, res, "answers", nil) != dnsAnswers || sum(t, res, "errors", nil) != dnsErrors {
		t.Errorf("dns: %d answers, %d errors; the flows hold %d DNS responses, %d not NOERROR",
			sum(t, res, "answers", nil), sum(t, res, "errors", nil), dnsAnswers, dnsErrors)
	}
	// Availability over the HTTP requests of 2021's captures (the
	// fixture's, years later, would take more than slo's 100000 steps):
	// each response is an event, each 5xx a bad one, and so is each
	// request never answered.
	isReq := func(m map[string]any) bool { return m["sli"] == "availability" && m["basis"] == "requests" }
	y2021 := analyze.Params{Since: time.Date(2021, 6, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2021, 12, 1, 0, 0, 0, 0, time.UTC)}
	svc2021, err := e.Run(ctx, "services", y2021)
	if err != nil {
		t.Fatal(err)
	}
	y2021.Bucket, y2021.Latency = 5*time.Minute, 100*time.Millisecond
	answered, failed, unanswered := sum(t, svc2021, "requests", l7), sum(t, svc2021, "errors", l7), sum(t, svc2021, "no_response", l7)
	if res := run("slo", y2021); answered == 0 || unanswered == 0 ||
		sum(t, res, "events", isReq) != answered+unanswered || sum(t, res, "bad", isReq) != failed+unanswered {
		t.Errorf("slo: %d events, %d bad; services counts %d requests answered, %d of them failed, and %d never answered",
			sum(t, res, "events", isReq), sum(t, res, "bad", isReq), answered, failed, unanswered)
	}
	res = run("coverage", analyze.Params{})
	for node, n := range byNode {
		isNode := func(m map[string]any) bool { return m["node"] == node }
		if got, lost := sum(t, res, "flows", isNode), sum(t, res, "lost_events", isNode); got != n || lost != lostByNode[node] {
			t.Errorf("coverage: %s has %d flows, %d lost; the inputs %d, %d lost", node, got, lost, n, lostByNode[node])
		}
	}
	if got := sum(t, res, "flows", func(m map[string]any) bool { return m["node"] == "(all)" }); got != flows {
		t.Errorf("coverage: (all) has %d flows; the inputs %d", got, flows)
	}
	// Flows and drops per bucket: the kind cluster's capture spans four
	// minutes, the fixture's drops ten seconds.
	kind := time.Date(2021, 11, 10, 10, 40, 0, 0, time.UTC)
	fixture := time.Date(2026, 3, 14, 9, 31, 0, 0, time.UTC)
	for _, tc := range []struct {
		variant       string
		p             analyze.Params
		drops, denies int64
	}{
		{"", analyze.Params{Since: kind, Until: kind.Add(5 * time.Minute)}, 0, 0},
		{"-drops", analyze.Params{Since: fixture, Until: fixture.Add(11 * time.Second), Bucket: time.Second}, dropped, policyDenies},
	} {
		res := run("timeline", tc.p, tc.variant)
		var inWindow int64
		for _, r := range resps {
			if tm := r.GetFlow().GetTime().AsTime(); r.GetFlow() != nil && !tm.Before(tc.p.Since) && !tm.After(tc.p.Until) {
				inWindow++
			}
		}
		if sum(t, res, "flows", nil) != inWindow || inWindow == 0 {
			t.Errorf("timeline%s: %d flows in its buckets; the inputs hold %d in the window", tc.variant, sum(t, res, "flows", nil), inWindow)
		}
		if sum(t, res, "drops", nil) != tc.drops || sum(t, res, "policy_denies", nil) != tc.denies {
			t.Errorf("timeline%s: %d drops, %d policy denies; the inputs hold %d, %d in the window",
				tc.variant, sum(t, res, "drops", nil), sum(t, res, "policy_denies", nil), tc.drops, tc.denies)
		}
	}
}
