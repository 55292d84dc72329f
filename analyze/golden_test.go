package analyze_test

import (
	"bytes"
	"context"
	"flag"
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

// Every analysis over the real captures: golden output, and the totals a
// reader would check by hand, counted here from the flows themselves.
func TestGoldenAnalysesOnSamples(t *testing.T) {
	var resps []*observerpb.GetFlowsResponse
	for _, s := range allSamples {
		resps = append(resps, testutil.LoadResponses(t, testutil.Testdata("samples", s))...)
	}
	var flows, httpResponses, http5xx, dnsAnswers, dnsErrors, dropped int64
	byNode := map[string]int64{}
	for _, r := range resps {
		f := r.GetFlow()
		if f == nil {
			continue
		}
		flows++
		byNode[f.GetNodeName()]++
		if f.GetVerdict() == flowpb.Verdict_DROPPED {
			dropped++
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
	e := open(t, sampleRecording(t, allSamples...))
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
	if res := run("services", analyze.Params{}); sum(t, res, "requests", l7) != httpResponses || sum(t, res, "errors", l7) != http5xx {
		t.Errorf("services: %d requests, %d errors; the flows hold %d HTTP responses, %d of them 5xx",
			sum(t, res, "requests", l7), sum(t, res, "errors", l7), httpResponses, http5xx)
	}
	if res := run("graph", analyze.Params{}); sum(t, res, "flows", nil) != flows {
		t.Errorf("graph: %d flows on its edges; the samples hold %d", sum(t, res, "flows", nil), flows)
	}
	run("graph", analyze.Params{Level: "pod"}, "-pod")
	isL7 := func(m map[string]any) bool { return m["protocol"] == "http" || m["protocol"] == "grpc" }
	if res := run("errors", analyze.Params{}); sum(t, res, "errors", isL7) != http5xx {
		t.Errorf("errors: %d L7 errors; the flows hold %d 5xx", sum(t, res, "errors", isL7), http5xx)
	}
	if res := run("drops", analyze.Params{}); sum(t, res, "drops", nil) != dropped {
		t.Errorf("drops: %d; the flows hold %d DROPPED", sum(t, res, "drops", nil), dropped)
	}
	if res := run("dns", analyze.Params{}); sum(t, res, "answers", nil) != dnsAnswers || sum(t, res, "errors", nil) != dnsErrors {
		t.Errorf("dns: %d answers, %d errors; the flows hold %d DNS responses, %d not NOERROR",
			sum(t, res, "answers", nil), sum(t, res, "errors", nil), dnsAnswers, dnsErrors)
	}
	res := run("coverage", analyze.Params{})
	for node, n := range byNode {
		if got := sum(t, res, "flows", func(m map[string]any) bool { return m["node"] == node }); got != n {
			t.Errorf("coverage: %s has %d flows; the samples %d", node, got, n)
		}
	}
	if got := sum(t, res, "flows", func(m map[string]any) bool { return m["node"] == "(all)" }); got != flows {
		t.Errorf("coverage: (all) has %d flows; the samples %d", got, flows)
	}
	// The kind cluster's capture spans four minutes: a readable timeline.
	kind := time.Date(2021, 11, 10, 10, 40, 0, 0, time.UTC)
	res = run("timeline", analyze.Params{Since: kind, Until: kind.Add(5 * time.Minute)})
	var inWindow int64
	for _, r := range resps {
		if tm := r.GetFlow().GetTime().AsTime(); r.GetFlow() != nil && !tm.Before(kind) && !tm.After(kind.Add(5*time.Minute)) {
			inWindow++
		}
	}
	if sum(t, res, "flows", nil) != inWindow || inWindow == 0 {
		t.Errorf("timeline: %d flows in its buckets; the samples hold %d in the window", sum(t, res, "flows", nil), inWindow)
	}
}
