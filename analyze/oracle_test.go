package analyze_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/hubblecli"
	"github.com/flowtape/flowtape/internal/simrecord"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/printer"
	"github.com/flowtape/flowtape/record"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// The oracle: the analyses as they were before the derived tables, every
// pairing and grouping made at query time over the flows (the SQL of
// flowtape 3e1a003, kept in testdata/oracle), with the one change in
// meaning the derived tables bring: a pod is named by the best name the
// recording knows for it (the pods view), implemented here again, in SQL
// of its own. Every analysis from the derived tables must give the
// oracle's rows, in its order (the ORDER BY of errors and graph there
// completed with the tie-breakers of today's SQL: the order of ties was
// left to chance before).

// oracleNames names each flow's pods by the best name any flow of the pod
// gives it: its workload, else its app label, else the workload
// Kubernetes' naming implies.
const oracleNames = `
CREATE OR REPLACE MACRO oracle_inferred(pod) AS CASE
    WHEN regexp_matches(pod, '^.+-([bcdfghjklmnpqrstvwxz2456789]{6,10}|[0-9]{6,10})-[bcdfghjklmnpqrstvwxz2456789]{5}$')
        THEN regexp_extract(pod, '^(.+)-(?:[bcdfghjklmnpqrstvwxz2456789]{6,10}|[0-9]{6,10})-[bcdfghjklmnpqrstvwxz2456789]{5}$', 1)
    WHEN regexp_matches(pod, '^.+-[bcdfghjklmnpqrstvwxz2456789]{5}$') THEN regexp_extract(pod, '^(.+)-[bcdfghjklmnpqrstvwxz2456789]{5}$', 1)
    WHEN regexp_matches(pod, '^.+-[0-9]+$') THEN regexp_extract(pod, '^(.+)-[0-9]+$', 1)
    ELSE pod END;
CREATE OR REPLACE VIEW oracle_pods AS
SELECT ns, pod, coalesce(arg_min(workload, time), arg_min(app, time), oracle_inferred(pod)) AS name
FROM (SELECT time, source_namespace AS ns, source_pod_name AS pod, source_workload AS workload, source_app AS app FROM flows_named
      UNION ALL SELECT time, destination_namespace, destination_pod_name, destination_workload, destination_app FROM flows_named)
WHERE pod IS NOT NULL
GROUP BY ns, pod;
CREATE OR REPLACE TABLE flows AS
SELECT f.* REPLACE (coalesce(s.name, f.source_endpoint) AS source_endpoint, coalesce(d.name, f.destination_endpoint) AS destination_endpoint)
FROM flows_named f
LEFT JOIN oracle_pods s ON s.ns IS NOT DISTINCT FROM f.source_namespace AND s.pod = f.source_pod_name
LEFT JOIN oracle_pods d ON d.ns IS NOT DISTINCT FROM f.destination_namespace AND d.pod = f.destination_pod_name;
`

// oracle is a DuckDB set up with the oracle's views over the flow and
// event files of dir.
func oracle(t *testing.T, dir string) *sql.DB {
	t.Helper()
	files, err := tape.FindFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	db := analyze.OpenDuckDB(t)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata", "oracle", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	list := func(paths []string) string {
		q := make([]string, len(paths))
		for i, p := range paths {
			q[i] = "'" + p + "'"
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	// Tables, not views: the oracle reads the flows many times. The files
	// store no request ID (schema 1.4): the oracle finds it in the headers
	// with its own macro, apart from the Go derivation's.
	flowsNamed := "CREATE TABLE flows_named AS SELECT *, ft_request_id(http_headers) AS http_request_id FROM read_parquet(" + list(files.Flows) + ", union_by_name = true)"
	if tape.Sessions(files.Flows) > 1 {
		flowsNamed += " QUALIFY uuid IS NULL OR row_number() OVER (PARTITION BY uuid ORDER BY time) = 1"
	}
	events := "CREATE VIEW events AS SELECT * FROM read_parquet(" + list(files.Events) + ", union_by_name = true)"
	if len(files.Events) == 0 {
		events = "CREATE VIEW events AS SELECT NULL::TIMESTAMP_NS AS time, NULL::VARCHAR AS event, NULL::VARCHAR AS node_name, " +
			"NULL::VARCHAR AS lost_events_source, NULL::UBIGINT AS num_events_lost, NULL::TIMESTAMP_NS AS lost_events_first, " +
			"NULL::TIMESTAMP_NS AS lost_events_last, NULL::VARCHAR[] AS node_names, NULL::VARCHAR AS node_state WHERE false"
	}
	filtered := false
	if m, err := tape.ReadManifest(dir); err == nil {
		for _, s := range m.Sessions {
			filtered = filtered || s.Filters.Raw != ""
		}
	}
	stmts := []string{analyze.VariablesSQL(), fmt.Sprintf("SET VARIABLE ft_filtered_capture = %t", filtered), read("macros.sql"),
		flowsNamed, oracleNames, events}
	for _, v := range []string{"requests", "requests_counted", "edges", "connections", "drops", "dns"} {
		stmts = append(stmts, read(v+".sql"))
	}
	stmts = append(stmts, read("window.sql"))
	// The views that read no parameter (--since, --reporter, ...), computed
	// once as tables of the same name: every analysis under every
	// parameter set reads them again, and their pairing over every flow was
	// most of the oracle's time. requests_counted (--reporter) stays a
	// view. edges first: connections reads it.
	for _, v := range []string{"edges", "requests", "connections", "drops", "dns"} {
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE oracle_%[1]s AS FROM %[1]s; DROP VIEW %[1]s; ALTER TABLE oracle_%[1]s RENAME TO %[1]s", v))
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("oracle setup: %v\n%s", err, s)
		}
	}
	return db
}

// runOracle runs an analysis of the oracle with the parameters of p.
func runOracle(t *testing.T, db *sql.DB, name string, p analyze.Params) (printer.Table, error) {
	t.Helper()
	ts := func(x time.Time) string {
		if x.IsZero() {
			return "NULL"
		}
		return "TIMESTAMP_NS '" + x.UTC().Format("2006-01-02 15:04:05.999999999") + "'"
	}
	str := func(s string) string {
		if s == "" {
			return "NULL"
		}
		return "'" + s + "'"
	}
	bucket := "NULL"
	if p.Bucket > 0 {
		bucket = fmt.Sprint(int64(p.Bucket / time.Second))
	}
	num := func(f float64) string {
		if f == 0 {
			return "NULL"
		}
		return fmt.Sprint(f)
	}
	for v, val := range map[string]string{"since": ts(p.Since), "until": ts(p.Until), "namespace": str(p.Namespace),
		"reporter": str(p.Reporter), "level": str(p.Level), "bucket": bucket,
		"slo_objective": num(p.Objective), "slo_latency_ms": num(float64(p.Latency) / float64(time.Millisecond))} {
		if _, err := db.Exec("SET VARIABLE " + v + " = " + val); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join("testdata", "oracle", "analyses", name+".sql"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(string(b))
	if err != nil {
		return printer.Table{}, err
	}
	defer rows.Close()
	return analyze.ScanTable(rows)
}

// oracleParams are the parameters every analysis is compared under: the
// whole recording, and a window that cuts minutes of flows (as --since and
// --until with seconds do).
func oracleParams(start time.Time, span time.Duration) []analyze.Params {
	since := start.Add(span / 3).Add(1234567 * time.Nanosecond)
	until := start.Add(2 * span / 3).Add(7654321 * time.Nanosecond)
	return []analyze.Params{
		{},
		{Reporter: "both", Level: "service"},
		{Reporter: "client", Level: "pod"},
		{Since: since, Until: until, Bucket: 10 * time.Second},
		{Since: since},
		{Namespace: "default", Until: until},
		// a --since before the recording (slo: those steps cover nothing)
		{Since: start.Add(-10 * time.Minute)},
		// slo's own: a row per edge, a latency SLI, another objective,
		// steps of 30 s
		{Level: "edge", Objective: 99, Latency: 20 * time.Millisecond, Bucket: 30 * time.Second},
	}
}

// sameAsOracle compares every analysis with the oracle's under ps.
func sameAsOracle(t *testing.T, dir string, ps []analyze.Params) {
	t.Helper()
	e := open(t, dir)
	db := oracle(t, dir)
	compared := 0
	for _, p := range ps {
		for _, name := range analyze.Analyses() {
			if (name == "slo" && p.Level == "pod") || (name != "slo" && p.Level == "edge") {
				continue // refused (TestAnalyzeBadInput): slo's rows are services or edges
			}
			if name == "egress" {
				// The oracle checks what the derived tables hold against
				// the flows; egress reads the flows themselves. The
				// simulator's truth and hand-built flows hold it
				// (TestAnalysesMatchSimulatorTruth, TestEgress).
				continue
			}
			want, werr := runOracle(t, db, name, p)
			got, err := e.Run(context.Background(), name, p)
			if werr != nil {
				// The same refusal (a window of too many buckets).
				if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(firstLine(werr), "Invalid Input Error: ")) {
					t.Errorf("%s %+v: %v; the oracle: %v", name, p, err, werr)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s %+v: %v", name, p, err)
			}
			if !slices.Equal(got.Columns, want.Columns) {
				t.Errorf("%s %+v: columns %v, oracle %v", name, p, got.Columns, want.Columns)
				continue
			}
			if g, w := fmt.Sprint(got.Rows), fmt.Sprint(want.Rows); g != w {
				if diff := rowDiff(got, want); diff != "" {
					t.Errorf("%s %+v: %d rows differ from the oracle's %d:\n%s", name, p, len(got.Rows), len(want.Rows), diff)
				} else {
					t.Errorf("%s %+v: the oracle's rows in another order:\n got %v\nwant %v", name, p, got.Rows, want.Rows)
				}
				continue
			}
			compared += len(want.Rows)
		}
	}
	if compared == 0 {
		t.Fatal("no rows compared")
	}
	t.Logf("%d rows equal to the oracle's", compared)
}

// rowDiff lists the rows one table has and the other has not.
func rowDiff(got, want printer.Table) string {
	g, w := map[string]int{}, map[string]int{}
	for _, r := range got.Rows {
		g[fmt.Sprint(r)]++
	}
	for _, r := range want.Rows {
		w[fmt.Sprint(r)]++
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(w)) {
		if g[k] < w[k] {
			fmt.Fprintf(&b, "  oracle only: %s\n", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(g)) {
		if w[k] < g[k] {
			fmt.Fprintf(&b, "  derived only: %s\n", k)
		}
	}
	return b.String()
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// The real captures and the fixtures, each a recording of its own and all
// in one.
func TestDerivedMatchOracleOnSamples(t *testing.T) {
	t.Parallel() // beside TestClickHouseMatchesDuckDB: it changes no package state
	inputs := []string{dropsFixture}
	for _, s := range allSamples {
		inputs = append(inputs, testutil.Testdata("samples", s))
	}
	for _, f := range []string{"connections-redirected.json", "connections-syn-only.json", "connections-unanswered.json"} {
		inputs = append(inputs, testutil.Testdata("fixtures", f))
	}
	all := t.TempDir()
	for i, in := range inputs {
		rs := testutil.LoadResponses(t, in)
		dir := t.TempDir()
		testutil.WriteRecording(t, dir, "s", rs)
		testutil.WriteRecording(t, all, fmt.Sprintf("s%d", i), rs)
		t.Run(filepath.Base(in), func(t *testing.T) {
			start := rs[0].GetTime().AsTime()
			// The whole recording, and a window that cuts its minutes.
			sameAsOracle(t, dir, oracleParams(start, rs[len(rs)-1].GetTime().AsTime().Sub(start))[2:4])
		})
	}
	t.Run("all", func(t *testing.T) {
		sameAsOracle(t, all, []analyze.Params{{}, {Reporter: "both", Level: "service"}, {Reporter: "client", Level: "pod", Namespace: "bookinfo"}})
	})
}

// Two sessions that recorded the same flows (overlapping imports): each
// flow counts once, as in the flows view.
func TestDerivedMatchOracleOnTheSameFlowsTwice(t *testing.T) {
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	scen := sim.Scenarios["incident"]
	scen.IncidentAt = 20 * time.Second
	rs := testutil.SimResponses(scen, 9, 300, start, start.Add(80*time.Second))
	dir := t.TempDir()
	// One session with all of it, another with its second half again.
	testutil.WriteRecording(t, dir, "first", rs)
	testutil.WriteRecording(t, dir, "again", rs[len(rs)/2:])
	sameAsOracle(t, dir, oracleParams(start, 80*time.Second)[:4])
}

// The simulator's scenarios, recorded through the real Observer API and
// recorder: live segments, each flush's rows derived on their own.
func TestDerivedMatchOracleOnSimulation(t *testing.T) {
	t.Parallel() // beside TestClickHouseMatchesDuckDB: it changes no package state
	t0 := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	for _, name := range []string{"incident", "steady"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			span := 45 * time.Second
			if _, err := simrecord.Run(t.Context(), sim.Config{Seed: 17, Start: t0, Duration: span, Scenario: sim.Scenarios[name]},
				dir, nil, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))); err != nil {
				t.Fatal(err)
			}
			sameAsOracle(t, dir, oracleParams(t0, span))
		})
	}
}

// A recording whose stream broke while the simulated rings wrapped: the
// recorder resumes from before its last flow (flows that come twice are
// dropped) and records what was overwritten as lost events.
func TestDerivedMatchOracleAcrossReconnects(t *testing.T) {
	start := time.Now().Truncate(time.Millisecond)
	cfg := sim.Config{Seed: 5, Start: start, Speed: 3, RingCapacity: 1000, Truth: true, Scenario: sim.Scenarios["incident"]}
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
	fl := hubblecli.ConnFlags()
	if err := fl.Parse([]string{"--server", addr}); err != nil {
		t.Fatal(err)
	}
	d, err := hubblecli.NewDialer(fl)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	recCtx, stopRec := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var progress atomic.Pointer[record.Progress]
	go func() {
		// Small files: requests and connections cross files.
		_, err := record.Run(recCtx, record.Options{Dialer: d, MinBackoff: 50 * time.Millisecond, FlushInterval: 500 * time.Millisecond,
			Sink: tape.SinkOptions{Dir: dir, Writer: "test", RotateRows: 1500}, Progress: func(p record.Progress) { progress.Store(&p) }})
		done <- err
	}()
	recorded := func() uint64 {
		if p := progress.Load(); p != nil {
			return p.Flows
		}
		return 0
	}
	testutil.Eventually(t, 30*time.Second, "the recorder receives flows", func() bool { return recorded() > 3000 })
	stop()
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
	testutil.Eventually(t, 30*time.Second, "the recorder is back and receives flows", func() bool {
		p := progress.Load()
		return p != nil && p.Reconnects > 0 && p.Connected && p.Flows > before+3000
	})
	stopRec()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stop()
	lost := count(t, open(t, dir), "SELECT count(*) FROM events WHERE event = 'lost_events'")
	if lost == 0 {
		t.Fatal("no lost events recorded: the test proves nothing about them")
	}
	files, err := tape.FindFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var first, last time.Time
	e := open(t, dir)
	res, err := e.Query(context.Background(), "SELECT min(time), max(time) FROM flows")
	if err != nil {
		t.Fatal(err)
	}
	first, _ = time.Parse(time.RFC3339Nano, res.Rows[0][0].(string))
	last, _ = time.Parse(time.RFC3339Nano, res.Rows[0][1].(string))
	t.Logf("%d flow files, %d lost events records, %s of flows", len(files.Flows), lost, last.Sub(first))
	sameAsOracle(t, dir, oracleParams(first, last.Sub(first)))
}
