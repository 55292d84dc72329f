package analyze_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/proto"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/schema"
)

// writeRecording writes responses as a recording directory laid out as the
// recorder does (one file per kind, named after session id).
func writeRecording(t *testing.T, dir, id string, resps []*observerpb.GetFlowsResponse) {
	t.Helper()
	var flows []*flowpb.Flow
	var events []*observerpb.GetFlowsResponse
	for _, r := range resps {
		if f := r.GetFlow(); f != nil {
			flows = append(flows, f)
		} else {
			events = append(events, r)
		}
	}
	name := "20260101T000000Z-" + id + "-000001.parquet"
	if len(flows) > 0 {
		writeParquet(t, filepath.Join(dir, "flows", schema.Partition(flows[0].GetTime().AsTime()), name), schema.Flows, flows)
	}
	if len(events) > 0 {
		writeParquet(t, filepath.Join(dir, "events", schema.Partition(events[0].GetTime().AsTime()), name), schema.Events, events)
	}
}

func writeParquet[M proto.Message](t *testing.T, p string, tab *schema.Table[M], ms []M) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := schema.NewFileWriter(tab, f, schema.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if err := w.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func sampleRecording(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for i, n := range names {
		writeRecording(t, dir, "s"+string(rune('a'+i)), testutil.LoadResponses(t, testutil.Testdata("samples", n)))
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
	// node-local-dns pods (no workload or app label: the pod names them).
	res, err := e.Query(context.Background(), "SELECT DISTINCT client, server, status, error, reporter FROM requests WHERE NOT no_response")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Rows {
		if r[0] != "prometheus" || !strings.HasPrefix(r[1].(string), "node-local-dns-") || r[2] != uint32(503) || r[3] != true || r[4] != "client" {
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
	writeRecording(t, dir, "one", resps)
	writeRecording(t, dir, "two", resps[:6])
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
	// Watch the spill directory while a sort of about 300 MB runs.
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
