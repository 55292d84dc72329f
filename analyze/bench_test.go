package analyze_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/benchdata"
	"github.com/flowtape/flowtape/printer"
	"github.com/flowtape/flowtape/schema"
)

// BenchmarkAnalyze10M times `analyze services` and `analyze graph` over
// 10 million simulated flows (FLOWTAPE_BENCH_ANALYZE_FLOWS overrides the
// count): opening the recording and running the analysis, as the command
// does, and the process's peak RSS meanwhile.
func BenchmarkAnalyze10M(b *testing.B) {
	n := benchdata.FlowCount(b, "FLOWTAPE_BENCH_ANALYZE_FLOWS", 10_000_000)
	rec, _ := benchdata.Recording(b, n, false)
	for _, name := range []string{"services", "graph"} {
		b.Run(name, func(b *testing.B) {
			if !slices.Contains(analyze.Analyses(), name) {
				b.Skipf("no %s analysis in this build (analyses: %s)", name, strings.Join(analyze.Analyses(), ", "))
			}
			var peak, base float64
			measured := true
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				rss, err := benchdata.ResetPeakRSS()
				if err != nil {
					// An unreset VmHWM is the generator's peak, not the
					// analysis's: better no number than a wrong one.
					b.Logf("peak RSS not measured: %v", err)
					measured = false
				}
				base = max(base, rss)
				b.StartTimer()
				res, err := runAnalysis(b.Context(), rec, name)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if hwm, err := benchdata.ProcStatusMB("VmHWM"); err == nil {
					peak = max(peak, hwm)
				} else {
					measured = false
				}
				if i == 0 {
					b.Logf("%s over %d flows: %d rows", name, n, len(res.Rows))
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(n), "flows")
			if measured {
				b.ReportMetric(peak, "peak-RSS-MB")
				b.ReportMetric(base, "base-RSS-MB")
			}
		})
	}
}

// BenchmarkAnalyzeScale times analyze services (opening the recording and
// running the analysis, as the command does) and a plain DuckDB
// scan-and-group of the same flow files over recordings of 1, 3 and 10
// million simulated flows (FLOWTAPE_BENCH_SCALE, a comma-separated list,
// overrides the counts): how the cost grows with the recording.
func BenchmarkAnalyzeScale(b *testing.B) {
	counts := []int{1_000_000, 3_000_000, 10_000_000}
	if v := os.Getenv("FLOWTAPE_BENCH_SCALE"); v != "" {
		counts = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("FLOWTAPE_BENCH_SCALE=%q: want a comma-separated list of flow counts", v)
			}
			counts = append(counts, n)
		}
	}
	for _, n := range counts {
		b.Run(fmt.Sprintf("%dM", n/1_000_000), func(b *testing.B) {
			rec, _ := benchdata.Recording(b, n, false)
			var sec, plain float64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if _, err := runAnalysis(b.Context(), rec, "services"); err != nil {
					b.Fatal(err)
				}
				sec += time.Since(start).Seconds()
				start = time.Now()
				if _, err := plainScan(b.Context(), rec); err != nil {
					b.Fatal(err)
				}
				plain += time.Since(start).Seconds()
			}
			b.ReportMetric(float64(n), "flows")
			b.ReportMetric(sec/float64(b.N), "services-s")
			b.ReportMetric(plain/float64(b.N), "plain-scan-s")
			b.ReportMetric(sec/plain, "x-plain-scan")
		})
	}
}

// BenchmarkAnalyzeVsJSON1M answers the question of a service list over the
// same 1 million flows (FLOWTAPE_BENCH_JSON_FLOWS overrides the count) in
// three ways, in one run:
//
//   - flowtape: analyze services from the recording (open, run), as the
//     command does;
//   - plain: a plain DuckDB scan-and-group of the recording's flow files,
//     flows by destination and verdict: the least any engine does to read
//     them (open a fresh DuckDB, one query);
//   - json: DuckDB's read_json answering requests, errors and p99 per
//     service from the Hubble jsonpb file the flows would otherwise be
//     kept in, with the query-time SQL of testdata/oracle (pairing
//     requests with responses and proxies over every flow), once as a
//     view over the file and once loading it into a table first; the
//     ratio is against the faster. Its answers must equal flowtape's.
func BenchmarkAnalyzeVsJSON1M(b *testing.B) {
	n := benchdata.FlowCount(b, "FLOWTAPE_BENCH_JSON_FLOWS", 1_000_000)
	rec, jsonFile := benchdata.Recording(b, n, true)
	ctx := b.Context()
	var recSec, plainSec, viewSec, tableSec float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		want, err := runAnalysis(ctx, rec, "services")
		if err != nil {
			b.Fatal(err)
		}
		recSec += time.Since(start).Seconds()
		start = time.Now()
		if _, err := plainScan(ctx, rec); err != nil {
			b.Fatal(err)
		}
		plainSec += time.Since(start).Seconds()
		for _, materialize := range []bool{false, true} {
			start := time.Now()
			got, err := jsonServices(ctx, jsonFile, materialize)
			if err != nil {
				b.Fatal(err)
			}
			sec := time.Since(start).Seconds()
			if materialize {
				tableSec += sec
			} else {
				viewSec += sec
			}
			if err := sameServiceNumbers(want, got); err != nil {
				b.Fatalf("services from jsonpb (materialized: %v) differ from services from the recording: %v", materialize, err)
			}
		}
		if i == 0 {
			b.Logf("services over %d flows: %d services, the same requests, errors and p99 from the recording and from jsonpb", n, len(want.Rows))
		}
	}
	recSec, plainSec = recSec/float64(b.N), plainSec/float64(b.N)
	viewSec, tableSec = viewSec/float64(b.N), tableSec/float64(b.N)
	b.ReportMetric(float64(n), "flows")
	b.ReportMetric(recSec, "recording-s")
	b.ReportMetric(plainSec, "plain-scan-s")
	b.ReportMetric(recSec/plainSec, "x-plain-scan")
	b.ReportMetric(viewSec, "json-view-s")
	b.ReportMetric(tableSec, "json-table-s")
	b.ReportMetric(min(viewSec, tableSec)/recSec, "x-faster-than-json")
}

// plainScan is a plain DuckDB scan-and-group of a recording's flow files:
// a fresh DuckDB, flows by destination and verdict.
func plainScan(ctx context.Context, rec string) (printer.Table, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return printer.Table{}, err
	}
	defer db.Close()
	glob := strings.ReplaceAll(filepath.Join(rec, "flows", "*", "*", "*.parquet"), "'", "''")
	return queryTable(ctx, db, "SELECT destination_endpoint, verdict, count(*) FROM read_parquet('"+glob+"') GROUP BY ALL")
}

func runAnalysis(ctx context.Context, rec, name string) (printer.Table, error) {
	e, err := analyze.Open(ctx, []string{rec}, analyze.Options{})
	if err != nil {
		return printer.Table{}, err
	}
	defer e.Close()
	return e.Run(ctx, name, analyze.Params{})
}

// The JSON path. read_json reads the fields of the flow below; jsonColumns
// turn them into the recording's columns, with the same names, types and
// NULLs: jsonpb omits "" and empty lists, which the recording holds as
// NULL too, but also the zero numbers of a message that is there, which
// the recording holds as 0; app labels and policy names are derived as
// the recorder derives them.
const jsonEndpoint = `STRUCT(identity UINTEGER, namespace VARCHAR, pod_name VARCHAR, labels VARCHAR[], workloads STRUCT(name VARCHAR)[])`

const jsonService = `STRUCT(name VARCHAR, namespace VARCHAR)`

const jsonPorts = `STRUCT(source_port UINTEGER, destination_port UINTEGER)`

var jsonFlowType = `STRUCT(
	"time" VARCHAR, uuid VARCHAR, node_name VARCHAR, verdict VARCHAR, drop_reason_desc VARCHAR, drop_reason UINTEGER,
	"Type" VARCHAR, traffic_direction VARCHAR, is_reply BOOLEAN, reply BOOLEAN,
	"IP" STRUCT(source VARCHAR, destination VARCHAR),
	l4 STRUCT(
		"TCP" STRUCT(source_port UINTEGER, destination_port UINTEGER, flags STRUCT("SYN" BOOLEAN, "ACK" BOOLEAN, "FIN" BOOLEAN, "RST" BOOLEAN)),
		"UDP" ` + jsonPorts + `, "SCTP" ` + jsonPorts + `,
		"ICMPv4" STRUCT("type" UINTEGER), "ICMPv6" STRUCT("type" UINTEGER), "VRRP" STRUCT("type" UINTEGER), "IGMP" STRUCT("type" UINTEGER)),
	source ` + jsonEndpoint + `, destination ` + jsonEndpoint + `,
	source_service ` + jsonService + `, destination_service ` + jsonService + `,
	source_names VARCHAR[], destination_names VARCHAR[],
	l7 STRUCT("type" VARCHAR, latency_ns UBIGINT,
		http STRUCT(code UINTEGER, method VARCHAR, url VARCHAR, protocol VARCHAR, headers STRUCT("key" VARCHAR, "value" VARCHAR)[]),
		dns STRUCT(query VARCHAR, rcode UINTEGER, qtypes VARCHAR[], ips VARCHAR[], ttl UINTEGER),
		kafka STRUCT(topic VARCHAR)),
	egress_denied_by STRUCT(name VARCHAR, namespace VARCHAR)[], ingress_denied_by STRUCT(name VARCHAR, namespace VARCHAR)[])`

// jsonMacros derive what the recorder derives when it writes a row.
const jsonMacros = `
CREATE OR REPLACE MACRO ftj_kv(l) AS CASE WHEN contains(l, ':') THEN substr(l, strpos(l, ':') + 1) ELSE l END;
CREATE OR REPLACE MACRO ftj_label(labels, k) AS list_filter(list_transform(labels, l -> ftj_kv(l)), kv -> starts_with(kv, k || '='))[1];
CREATE OR REPLACE MACRO ftj_value(kv) AS nullif(substr(kv, strpos(kv, '=') + 1), '');
CREATE OR REPLACE MACRO ftj_app(labels) AS ftj_value(coalesce(ftj_label(labels, 'app.kubernetes.io/name'),
	ftj_label(labels, 'app'), ftj_label(labels, 'k8s-app'), ftj_label(labels, 'name')));
CREATE OR REPLACE MACRO ftj_policies(ps) AS CASE WHEN len(ps) > 0 THEN list_transform(ps,
	p -> CASE WHEN coalesce(p.namespace, '') <> '' THEN p.namespace || '/' || coalesce(p.name, '') ELSE coalesce(p.name, '') END) END;
CREATE OR REPLACE MACRO ftj_port(l4, side) AS CASE
	WHEN l4."TCP" IS NOT NULL THEN coalesce(l4."TCP"[side], 0)
	WHEN l4."UDP" IS NOT NULL THEN coalesce(l4."UDP"[side], 0)
	WHEN l4."SCTP" IS NOT NULL THEN coalesce(l4."SCTP"[side], 0) END;
CREATE OR REPLACE MACRO ftj_header(headers, name) AS list_filter(headers, h -> lower(h."key") = name)[1]."value";
CREATE OR REPLACE MACRO ftj_l7_protocol(l7) AS CASE
	WHEN l7.http IS NOT NULL THEN CASE WHEN coalesce(starts_with(ftj_header(l7.http.headers, 'content-type'), 'application/grpc'), false)
		OR (l7.http.protocol = 'HTTP/2' AND l7.http.method = 'POST'
			AND regexp_matches(l7.http.url, '^[a-z]+://[^/]+/[A-Za-z0-9_.]+\.[A-Za-z0-9_]+/[A-Za-z0-9_]+$')) THEN 'grpc' ELSE 'http' END
	WHEN l7.dns IS NOT NULL THEN 'dns'
	WHEN l7.kafka IS NOT NULL THEN 'kafka' END;
CREATE OR REPLACE MACRO ftj_reserved(identity) AS CASE identity WHEN 1 THEN 'host' WHEN 2 THEN 'world' WHEN 3 THEN 'unmanaged'
	WHEN 4 THEN 'health' WHEN 5 THEN 'init' WHEN 6 THEN 'remote-node' WHEN 7 THEN 'kube-apiserver' WHEN 8 THEN 'ingress'
	WHEN 9 THEN 'world-ipv4' WHEN 10 THEN 'world-ipv6' END;
CREATE OR REPLACE MACRO ftj_flag(l4, flag) AS CASE WHEN l4."TCP".flags IS NOT NULL THEN coalesce(l4."TCP".flags[flag], false) END;
`

func jsonEndpointColumns(side string) [][2]string {
	ep := "f." + side
	ip := `f."IP".` + side
	workload := "nullif(" + ep + ".workloads[1].name, '')"
	app := "ftj_app(" + ep + ".labels)"
	identity := "CASE WHEN " + ep + " IS NOT NULL THEN coalesce(" + ep + ".identity, 0) END"
	names := "f." + side + "_names"
	return [][2]string{
		{side + "_namespace", ep + ".namespace"},
		{side + "_pod_name", ep + ".pod_name"},
		{side + "_workload", workload},
		{side + "_app", app},
		{side + "_labels", ep + ".labels"},
		{side + "_identity", identity},
		{side + "_service_name", "f." + side + "_service.name"},
		{side + "_service_namespace", "f." + side + "_service.namespace"},
		{side + "_names", names},
		{side + "_endpoint", "coalesce(" + workload + ", " + app + ", " + ep + ".pod_name, ftj_reserved(" + identity + "), " +
			"nullif(rtrim(" + names + "[1], '.'), ''), " + ip + ")"},
	}
}

// jsonColumns are the recording's columns the JSON path can extract; the
// others are NULL, and the SQL the JSON path runs must not use them.
var jsonColumns = slices.Concat([][2]string{
	{"time", `CAST(f."time" AS TIMESTAMP_NS)`},
	{"uuid", "TRY_CAST(f.uuid AS UUID)"},
	{"node_name", "f.node_name"},
	{"verdict", "f.verdict"},
	{"drop_reason_desc", "f.drop_reason_desc"},
	{"drop_reason", "coalesce(f.drop_reason, 0)"},
	{"type", `f."Type"`},
	{"traffic_direction", "f.traffic_direction"},
	{"is_reply", "f.is_reply"},
	{"reply", "coalesce(f.reply, false)"},
	{"ip_source", `f."IP".source`},
	{"ip_destination", `f."IP".destination`},
	{"l4_protocol", `CASE WHEN f.l4."TCP" IS NOT NULL THEN 'TCP' WHEN f.l4."UDP" IS NOT NULL THEN 'UDP'
		WHEN f.l4."ICMPv4" IS NOT NULL THEN 'ICMPv4' WHEN f.l4."ICMPv6" IS NOT NULL THEN 'ICMPv6'
		WHEN f.l4."SCTP" IS NOT NULL THEN 'SCTP' WHEN f.l4."VRRP" IS NOT NULL THEN 'VRRP'
		WHEN f.l4."IGMP" IS NOT NULL THEN 'IGMP' END`},
	{"icmp_type", `CASE WHEN f.l4."ICMPv4" IS NOT NULL THEN coalesce(f.l4."ICMPv4"."type", 0)
		WHEN f.l4."ICMPv6" IS NOT NULL THEN coalesce(f.l4."ICMPv6"."type", 0) END`},
	{"source_port", "ftj_port(f.l4, 'source_port')"},
	{"destination_port", "ftj_port(f.l4, 'destination_port')"},
	{"tcp_syn", "ftj_flag(f.l4, 'SYN')"},
	{"tcp_ack", "ftj_flag(f.l4, 'ACK')"},
	{"tcp_fin", "ftj_flag(f.l4, 'FIN')"},
	{"tcp_rst", "ftj_flag(f.l4, 'RST')"},
}, jsonEndpointColumns("source"), jsonEndpointColumns("destination"), [][2]string{
	{"l7_type", "f.l7.type"},
	{"l7_latency_ns", "CASE WHEN f.l7 IS NOT NULL THEN coalesce(f.l7.latency_ns, 0) END"},
	{"http_code", "CASE WHEN f.l7.http IS NOT NULL THEN coalesce(f.l7.http.code, 0) END"},
	{"http_method", "f.l7.http.method"},
	{"http_url", "f.l7.http.url"},
	{"http_protocol", "f.l7.http.protocol"},
	{"http_headers", `CASE WHEN len(f.l7.http.headers) > 0 THEN list_transform(f.l7.http.headers,
		h -> {'key': coalesce(h."key", ''), 'value': coalesce(h."value", '')}) END`},
	{"http_request_id", "nullif(ftj_header(f.l7.http.headers, 'x-request-id'), '')"},
	{"l7_protocol", "ftj_l7_protocol(f.l7)"},
	{"dns_query", "f.l7.dns.query"},
	{"dns_rcode", "CASE WHEN f.l7.dns IS NOT NULL THEN coalesce(f.l7.dns.rcode, 0) END"},
	{"dns_qtypes", "f.l7.dns.qtypes"},
	{"dns_ips", "f.l7.dns.ips"},
	{"dns_ttl", "CASE WHEN f.l7.dns IS NOT NULL THEN coalesce(f.l7.dns.ttl, 0) END"},
	{"egress_denied_by", "ftj_policies(f.egress_denied_by)"},
	{"ingress_denied_by", "ftj_policies(f.ingress_denied_by)"},
})

// jsonServiceSQL is requests, errors and p99 per service, counted as
// analyze services counts them (requests_counted, the server proxy's
// view), over the oracle's query-time views.
const jsonServiceSQL = `
SELECT server AS service, server_namespace AS namespace,
    ft_requests(no_response) AS requests, ft_errors(error) AS errors,
    quantile_disc(latency_ns, 0.99) / 1e6 AS p99_ms
FROM requests_counted
GROUP BY ALL
ORDER BY service, namespace`

// jsonServices answers jsonServiceSQL from a jsonpb file.
func jsonServices(ctx context.Context, file string, materialize bool) (printer.Table, error) {
	db, err := openJSON(ctx, file, materialize, jsonServiceSQL)
	if err != nil {
		return printer.Table{}, err
	}
	defer db.Close()
	return queryTable(ctx, db, jsonServiceSQL)
}

// sameServiceNumbers compares requests, errors and p99 of each L7 service
// of an analyze services table with jsonServiceSQL's rows.
func sameServiceNumbers(services, json printer.Table) error {
	key := func(s, ns any) string { return fmt.Sprint(s, "/", ns) }
	have := map[string][]any{}
	for _, r := range json.Records() {
		have[key(r["service"], r["namespace"])] = []any{r["requests"], r["errors"], r["p99_ms"]}
	}
	compared := 0
	for _, r := range services.Records() {
		if r["visibility"] != "L7" {
			continue
		}
		want := []any{r["requests"], r["errors"], r["p99_ms"]}
		got, ok := have[key(r["service"], r["namespace"])]
		if !ok || fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("%s: jsonpb %v, recording %v", key(r["service"], r["namespace"]), got, want)
		}
		compared++
	}
	if compared == 0 {
		return errors.New("no L7 services: nothing was compared")
	}
	return nil
}

// openJSON sets up a DuckDB with the oracle's query-time views over a flows
// view that reads a jsonpb file (materialize: over a table loaded from
// it), for queries to run. Only the columns the SQL names are read from
// the file; the others are NULL.
func openJSON(ctx context.Context, file string, materialize bool, queries ...string) (*sql.DB, error) {
	macros, views, err := oracleSQL()
	if err != nil {
		return nil, err
	}
	extracted := map[string]string{}
	for _, c := range jsonColumns {
		extracted[c[0]] = c[1]
	}
	used := usedFlowColumns(slices.Concat([]string{macros}, views, queries))
	var missing []string
	for _, c := range used {
		if _, ok := extracted[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		// An answer from NULL columns would be wrong, not slow.
		return nil, fmt.Errorf("the SQL uses flow columns the JSON path does not extract (add them to jsonColumns): %s", strings.Join(missing, ", "))
	}
	var readCols, flowCols, eventCols []string
	for _, c := range schema.Reference() {
		null := fmt.Sprintf("CAST(NULL AS %s) AS %q", c.Type, c.Name)
		switch {
		case c.Table == schema.KindEvents:
			eventCols = append(eventCols, null)
		case c.Table != schema.KindFlows:
		case slices.Contains(used, c.Name):
			readCols = append(readCols, fmt.Sprintf("CAST(%s AS %s) AS %q", extracted[c.Name], c.Type, c.Name))
			flowCols = append(flowCols, fmt.Sprintf("%q", c.Name))
		default:
			flowCols = append(flowCols, null)
		}
	}
	read := fmt.Sprintf("SELECT %s FROM (SELECT flow AS f FROM read_json('%s', format = 'newline_delimited', columns = {flow: '%s'}))",
		strings.Join(readCols, ", "), strings.ReplaceAll(file, "'", "''"), strings.ReplaceAll(jsonFlowType, "'", "''"))
	source := "CREATE VIEW flows_json AS " + read
	if materialize {
		source = "CREATE TABLE flows_json AS " + read
	}
	stmts := slices.Concat([]string{jsonMacros, analyze.VariablesSQL(), "SET VARIABLE ft_filtered_capture = false", macros, source,
		"CREATE VIEW flows_all AS SELECT " + strings.Join(flowCols, ", ") + " FROM flows_json",
		"CREATE VIEW flows AS SELECT * FROM flows_all",
		"CREATE VIEW events AS SELECT " + strings.Join(eventCols, ", ") + " WHERE false"}, views)
	// Run's parameters, unset.
	for _, v := range []string{"since", "until", "namespace", "reporter", "level", "bucket"} {
		stmts = append(stmts, "SET VARIABLE "+v+" = NULL")
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	// One connection, as the engine: settings and views belong to it.
	db.SetMaxOpenConns(1)
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			db.Close()
			return nil, fmt.Errorf("JSON path setup: %w", err)
		}
	}
	return db, nil
}

// oracleSQL is the oracle's SQL (testdata/oracle): the macros, run before
// the flows views are defined; then the views, in the order they are
// created, and the window macros.
func oracleSQL() (macros string, views []string, err error) {
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join("testdata", "oracle", name))
		return string(b), err
	}
	if macros, err = read("macros.sql"); err != nil {
		return "", nil, err
	}
	for _, v := range []string{"requests", "requests_counted", "edges", "connections", "drops", "dns", "window"} {
		q, err := read(v + ".sql")
		if err != nil {
			return "", nil, err
		}
		views = append(views, q)
	}
	return macros, views, nil
}

var sqlComment = regexp.MustCompile(`--[^\n]*`)

// usedFlowColumns lists the flow columns SQL texts name, outside comments.
func usedFlowColumns(texts []string) []string {
	code := sqlComment.ReplaceAllString(strings.Join(texts, "\n"), "")
	var used []string
	for _, c := range schema.Reference() {
		if c.Table == schema.KindFlows && regexp.MustCompile(`\b`+regexp.QuoteMeta(c.Name)+`\b`).MatchString(code) {
			used = append(used, c.Name)
		}
	}
	return used
}

func queryTable(ctx context.Context, db *sql.DB, q string) (printer.Table, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return printer.Table{}, fmt.Errorf("query: %w", err)
	}
	defer rows.Close()
	return analyze.ScanTable(rows)
}
