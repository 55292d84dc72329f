package analyze_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/observer"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/schema"
)

func sampleRecording(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for i, n := range names {
		testutil.WriteRecording(t, dir, "s"+string(rune('a'+i)), testutil.LoadResponses(t, testutil.Testdata("samples", n)))
	}
	return dir
}

func open(t *testing.T, paths ...string) *analyze.Engine {
	t.Helper()
	e, err := analyze.Open(context.Background(), paths, analyze.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func count(t *testing.T, e *analyze.Engine, q string) int64 {
	t.Helper()
	res, err := e.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	n, ok := res.Rows[0][0].(int64)
	if !ok {
		t.Fatalf("%s: %T %v", q, res.Rows[0][0], res.Rows[0][0])
	}
	return n
}

// The requests view against the HTTP sample, counted independently from
// its JSON: responses are requests, and requests whose X-Request-Id never
// got a response are unanswered.
func TestRequestsView(t *testing.T) {
	e := open(t, sampleRecording(t, "basic-sample-5-http-flows.json"))
	b, err := os.ReadFile(testutil.Testdata("samples", "basic-sample-5-http-flows.json"))
	if err != nil {
		t.Fatal(err)
	}
	answered := map[string]bool{}
	type req struct {
		id string
		at time.Time
	}
	var reqs []req
	var end time.Time
	maxLatency := time.Second
	responses := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var d struct {
			Flow struct {
				Time time.Time `json:"time"`
				L7   struct {
					Type      string
					LatencyNs string `json:"latency_ns"`
					HTTP      struct {
						Headers []struct{ Key, Value string }
					} `json:"http"`
				} `json:"l7"`
			} `json:"flow"`
		}
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatal(err)
		}
		id := ""
		for _, h := range d.Flow.L7.HTTP.Headers {
			if strings.EqualFold(h.Key, "x-request-id") {
				id = h.Value
			}
		}
		if d.Flow.Time.After(end) {
			end = d.Flow.Time
		}
		if ns, _ := strconv.ParseInt(d.Flow.L7.LatencyNs, 10, 64); time.Duration(ns) > maxLatency {
			maxLatency = time.Duration(ns)
		}
		if d.Flow.L7.Type == "RESPONSE" {
			responses++
			answered[id] = true
		} else {
			reqs = append(reqs, req{id, d.Flow.Time})
		}
	}
	// Unanswered: no response with its X-Request-Id, and older than the
	// longest latency before the end (else it may still be in flight).
	unanswered := 0
	for _, r := range reqs {
		if !answered[r.id] && r.at.Before(end.Add(-maxLatency)) {
			unanswered++
		}
	}
	if got := count(t, e, "SELECT count(*) FROM requests WHERE NOT no_response"); got != int64(responses) {
		t.Errorf("answered requests %d, want %d", got, responses)
	}
	if got := count(t, e, "SELECT count(*) FROM requests WHERE no_response"); got != int64(unanswered) {
		t.Errorf("unanswered requests %d, want %d", got, unanswered)
	}
	// The responses came back 503, to prometheus (its app label), from
	// node-local-dns pods (no workload or app label: the DaemonSet their
	// names imply, node-local-dns-6jnx9 and node-local-dns-r99x7, names
	// them).
	res, err := e.Query(context.Background(), "SELECT DISTINCT client, server, status, error, reporter FROM requests WHERE NOT no_response")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Rows {
		if r[0] != "prometheus" || r[1] != "node-local-dns" || r[2] != uint32(503) || r[3] != true || r[4] != "client" {
			t.Errorf("request row %v; want prometheus -> node-local-dns 503, an error, seen by the client", r)
		}
	}
}

// Every view answers on every recording, even one without events or L7.
func TestViewsOnEverySample(t *testing.T) {
	for _, name := range testutil.SampleFiles {
		e := open(t, sampleRecording(t, name))
		views, err := e.Views(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(views) != len(analyze.ViewNames) {
			t.Fatalf("%d views", len(views))
		}
		want := len(testutil.LoadResponses(t, testutil.Testdata("samples", name)))
		if got := count(t, e, "SELECT count(*) FROM flows"); got != int64(want) {
			t.Errorf("%s: flows %d, want %d", name, got, want)
		}
		if got := count(t, e, "SELECT count(*) FROM edges"); got != int64(want) {
			t.Errorf("%s: edges %d, want %d", name, got, want)
		}
		for _, v := range analyze.ViewNames {
			count(t, e, "SELECT count(*) FROM "+v)
		}
	}
}

// DNS answers of the DNS sample, counted from the JSON: rcode 3 is NXDOMAIN.
func TestDNSView(t *testing.T) {
	e := open(t, sampleRecording(t, "basic-sample-330-dns-flows.json"))
	var answers, nx int64
	for _, r := range testutil.LoadResponses(t, testutil.Testdata("samples", "basic-sample-330-dns-flows.json")) {
		if l7 := r.GetFlow().GetL7(); l7.GetType() == flowpb.L7FlowType_RESPONSE && l7.GetDns() != nil {
			answers++
			if l7.GetDns().GetRcode() == 3 {
				nx++
			}
		}
	}
	if got := count(t, e, "SELECT count(*) FROM dns"); got != answers {
		t.Errorf("dns rows %d, want %d answers", got, answers)
	}
	if got := count(t, e, "SELECT count(*) FROM dns WHERE rcode_name = 'NXDOMAIN'"); got != nx {
		t.Errorf("NXDOMAIN %d, want %d", got, nx)
	}
}

// The same flows in two sessions (overlapping imports) count once.
func TestFlowsCountOnceAcrossSessions(t *testing.T) {
	dir := t.TempDir()
	resps := testutil.LoadResponses(t, testutil.Testdata("samples", "basic-sample-10-flows.json"))
	for i, r := range resps {
		r.GetFlow().Uuid = "00000000-0000-4000-8000-00000000000" + string(rune('0'+i))
	}
	testutil.WriteRecording(t, dir, "one", resps)
	testutil.WriteRecording(t, dir, "two", resps[:6])
	e := open(t, dir)
	if got := count(t, e, "SELECT count(*) FROM flows"); got != 10 {
		t.Errorf("flows %d, want 10 (each uuid once)", got)
	}
	if got := count(t, e, "SELECT count(*) FROM flows_all"); got != 16 {
		t.Errorf("flows_all %d, want 16", got)
	}
}

// Bad input: one clear error naming the file or the query.
func TestOpenAndQueryErrors(t *testing.T) {
	dir := sampleRecording(t, "basic-sample-10-flows.json")
	var file string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if strings.HasSuffix(p, ".parquet") {
			file = p
		}
		return err
	})
	truncated := filepath.Join(t.TempDir(), "cut.parquet")
	b, _ := os.ReadFile(file)
	os.WriteFile(truncated, b[:len(b)/2], 0o600)
	for _, tc := range []struct{ path, want string }{
		{t.TempDir(), "not a flowtape recording"},
		{filepath.Join(t.TempDir(), "missing"), "no such file or directory"},
		{truncated, truncated},
	} {
		_, err := analyze.Open(context.Background(), []string{tc.path}, analyze.Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("open %s: %v; want one line with %q", tc.path, err, tc.want)
		}
	}
	e := open(t, dir)
	_, err := e.Query(context.Background(), "SELEC count(*) FROM flows")
	if err == nil || !strings.HasPrefix(err.Error(), "query: ") || strings.Contains(err.Error(), "\n") {
		t.Errorf("invalid SQL: %v; want one line", err)
	}
}

// The setup makes the macros a query calls when it calls them: a user's
// query gets the ones it names, and the ones they call, also where the
// name is written so that the engine cannot see it before DuckDB does
// (quoted).
func TestQueryGetsTheMacrosItCalls(t *testing.T) {
	e := open(t, sampleRecording(t, "basic-sample-10-flows.json"))
	for q, want := range map[string]any{
		"SELECT ft_error_rate(1, 10)":                          0.1,
		`SELECT "ft_in_namespace"('a', 'b')`:                   true,
		"SELECT ft_traffic_health(false, NULL, NULL, 0, NULL)": "unknown",
	} {
		res, err := e.Query(context.Background(), q)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		if got := res.Rows[0][0]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", q, got, want)
		}
	}
	// a table macro, and the views and macros it reads
	got := count(t, e, "WITH w AS (FROM ft_window()) SELECT count(*) FROM ft_requests_in('w', NULL)")
	if want := count(t, e, "SELECT count(*) FROM requests_counted"); got != want {
		t.Errorf("ft_requests_in over the whole window: %d requests, want %d", got, want)
	}
}

// With --memory-limit, work larger than memory spills to --temp-dir and
// finishes instead of failing.
func TestMemoryLimitSpillsToTempDir(t *testing.T) {
	tmp := t.TempDir()
	e, err := analyze.Open(context.Background(), []string{sampleRecording(t, "basic-sample-10-flows.json")},
		analyze.Options{MemoryLimit: "64MB", TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// Watch the spill directory while a sort of 6M rows with 32-character
	// strings, well beyond the limit, runs.
	spilled := make(chan bool, 1)
	done := make(chan struct{})
	go func() {
		seen := false
		for {
			select {
			case <-done:
				spilled <- seen
				return
			case <-time.After(5 * time.Millisecond):
				if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
					seen = true
				}
			}
		}
	}()
	res, err := e.Query(context.Background(),
		"SELECT count(*), max(s) FROM (SELECT x, md5(x::VARCHAR) AS s FROM range(6000000) t(x) ORDER BY s)")
	close(done)
	if err != nil {
		t.Fatalf("a sort beyond the memory limit failed instead of spilling: %v", err)
	}
	if n := res.Rows[0][0]; n != int64(6000000) {
		t.Errorf("count %v", n)
	}
	if !<-spilled {
		t.Error("nothing was spilled to the temp dir")
	}
}

// httpFlow is an L7 HTTP flow between workloads of namespace shop, as the
// client's (EGRESS) or the server's (INGRESS) proxy reports it.
func httpFlow(at time.Time, node string, dir flowpb.TrafficDirection, typ flowpb.L7FlowType, src, dst, id string, code uint32) *observerpb.GetFlowsResponse {
	ep := func(name string) *flowpb.Endpoint {
		return &flowpb.Endpoint{Namespace: "shop", PodName: name + "-0", Workloads: []*flowpb.Workload{{Name: name, Kind: "Deployment"}}}
	}
	f := &flowpb.Flow{Time: timestamppb.New(at), NodeName: node, Verdict: flowpb.Verdict_FORWARDED, Type: flowpb.FlowType_L7,
		TrafficDirection: dir, Source: ep(src), Destination: ep(dst),
		IP: &flowpb.IP{Source: "10.0.0." + strconv.Itoa(len(src)), Destination: "10.0.1." + strconv.Itoa(len(dst))},
		L7: &flowpb.Layer7{Type: typ, Record: &flowpb.Layer7_Http{Http: &flowpb.HTTP{Method: "GET", Url: "http://" + dst + "/x", Protocol: "HTTP/1.1",
			Code: code, Headers: []*flowpb.HTTPHeader{{Key: "X-Request-Id", Value: id}}}}}}
	if typ == flowpb.L7FlowType_RESPONSE {
		f.L7.LatencyNs = 1e6
	}
	return observer.FlowResponse(f)
}

// Applications pass X-Request-Id on to the calls they make: one ID names
// a tree of calls, and each call is still counted once, with its own
// answer or lack of one.
func TestRequestIDSharedByACallTree(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	const eg, in = flowpb.TrafficDirection_EGRESS, flowpb.TrafficDirection_INGRESS
	const req, resp = flowpb.L7FlowType_REQUEST, flowpb.L7FlowType_RESPONSE
	resps := []*observerpb.GetFlowsResponse{
		// a -> b, seen by a's proxy only (b has no L7 policy): answered
		httpFlow(ms(0), "n1", eg, req, "a", "b", "tree", 0),
		httpFlow(ms(10), "n1", eg, resp, "b", "a", "tree", 200),
		// b -> c, seen by c's proxy only: answered 503
		httpFlow(ms(1), "n2", in, req, "b", "c", "tree", 0),
		httpFlow(ms(5), "n2", in, resp, "c", "b", "tree", 503),
		// a -> d, seen by a's proxy: never answered
		httpFlow(ms(2), "n1", eg, req, "a", "d", "tree", 0),
		// later traffic, so that a -> d is not still in flight
		httpFlow(ms(10000), "n1", eg, req, "a", "b", "later", 0),
	}
	dir := t.TempDir()
	testutil.WriteRecording(t, dir, "tree", resps)
	e := open(t, dir)
	res, err := e.Query(context.Background(), "SELECT client, server, reporter, status, no_response FROM requests_counted ORDER BY client, server")
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(res.Rows)
	want := "[[a b client 200 false] [a d client <nil> true] [b c server 503 false]]"
	if got != want {
		t.Errorf("requests counted:\n got %s\nwant %s", got, want)
	}
}

// The same workload name in two namespaces is two services.
func TestServicesKeepNamespacesApart(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	var resps []*observerpb.GetFlowsResponse
	for i, ns := range []string{"shop", "staging", "staging"} {
		r := httpFlow(t0.Add(time.Duration(i)*time.Second), "n1", flowpb.TrafficDirection_INGRESS, flowpb.L7FlowType_RESPONSE,
			"ratings", "reviews", "id-"+strconv.Itoa(i), 200)
		r.GetFlow().Source.Namespace, r.GetFlow().Destination.Namespace = ns, ns
		resps = append(resps, r)
	}
	dir := t.TempDir()
	testutil.WriteRecording(t, dir, "ns", resps)
	e := open(t, dir)
	for _, tc := range []struct {
		p    analyze.Params
		want string
	}{
		{analyze.Params{}, "[[ratings staging 2] [ratings shop 1]]"},
		{analyze.Params{Namespace: "shop"}, "[[ratings shop 1]]"},
	} {
		res, err := e.Run(context.Background(), "services", tc.p)
		if err != nil {
			t.Fatal(err)
		}
		var got [][]any
		for _, r := range res.Select("service", "namespace", "requests").Rows {
			if r[0] == "ratings" {
				got = append(got, r)
			}
		}
		if fmt.Sprint(got) != tc.want {
			t.Errorf("services %+v: %v, want %s", tc.p, got, tc.want)
		}
	}
}

// Coverage counts losses wherever they fall: after the last flow (a
// recorder cut off for good), and in a recording of nothing but losses.
func TestCoverageCountsEveryLoss(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	lost := func(at time.Time, n uint64) *observerpb.GetFlowsResponse {
		return &observerpb.GetFlowsResponse{Time: timestamppb.New(at), NodeName: "n1",
			ResponseTypes: &observerpb.GetFlowsResponse_LostEvents{LostEvents: &flowpb.LostEvent{
				Source: flowpb.LostEventSource_HUBBLE_RING_BUFFER, NumEventsLost: n}}}
	}
	flow := httpFlow(t0, "n1", flowpb.TrafficDirection_INGRESS, flowpb.L7FlowType_RESPONSE, "b", "a", "x", 200)
	for _, tc := range []struct {
		name  string
		resps []*observerpb.GetFlowsResponse
	}{
		{"after the last flow", []*observerpb.GetFlowsResponse{flow, lost(t0.Add(time.Minute), 40), lost(t0.Add(2*time.Minute), 9)}},
		{"nothing but losses", []*observerpb.GetFlowsResponse{lost(t0, 40), lost(t0.Add(time.Minute), 9)}},
	} {
		dir := t.TempDir()
		testutil.WriteRecording(t, dir, "cov", tc.resps)
		res, err := open(t, dir).Run(context.Background(), "coverage", analyze.Params{})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		all := res.Select("node", "lost_events", "complete").Rows[0]
		if fmt.Sprint(all) != "[(all) 49 false]" {
			t.Errorf("%s: %v, want 49 lost events and not complete", tc.name, all)
		}
	}
	// Analyses of what flowed have nothing to say without flows.
	dir := t.TempDir()
	testutil.WriteRecording(t, dir, "cov", []*observerpb.GetFlowsResponse{lost(t0, 40)})
	if _, err := open(t, dir).Run(context.Background(), "services", analyze.Params{}); err == nil || !strings.Contains(err.Error(), "holds no flows") {
		t.Errorf("services of a recording without flows: %v", err)
	}
}

// The flows view has the documented columns, no more (a recording's
// date=/hour= directories are not columns) and no fewer, whether the
// recording has files or not.
func TestFlowsViewHasTheDocumentedColumns(t *testing.T) {
	var want []string
	for _, c := range schema.Reference() {
		if c.Table == schema.KindFlows {
			want = append(want, c.Name)
		}
	}
	slices.Sort(want)
	eventsOnly := t.TempDir()
	testutil.WriteRecording(t, eventsOnly, "ev", []*observerpb.GetFlowsResponse{{Time: timestamppb.Now(), NodeName: "n1",
		ResponseTypes: &observerpb.GetFlowsResponse_LostEvents{LostEvents: &flowpb.LostEvent{NumEventsLost: 1}}}})
	for name, dir := range map[string]string{"samples": sampleRecording(t, "basic-sample-10-flows.json"), "no flow files": eventsOnly} {
		views, err := open(t, dir).Views(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range views[0].Columns {
			got = append(got, c.Name)
		}
		slices.Sort(got)
		if views[0].Name != "flows" || !slices.Equal(got, want) {
			t.Errorf("%s: flows has %v\nwant %v", name, got, want)
		}
	}
}
