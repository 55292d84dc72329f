package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/sim"
)

var update = flag.Bool("update", false, "rewrite golden files and generated docs")

func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return o.String(), e.String(), code
}

// runProcess runs name (a built flowtape, or a wrapper of one) with args
// as a process of its own, within two minutes, and gives its stderr and
// exit code; the test fails where it ended otherwise than by exiting.
func runProcess(t *testing.T, name string, args ...string) (stderr string, code int) {
	t.Helper()
	var e bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return e.String(), 0
	case errors.As(err, &ee) && ee.Exited():
		return e.String(), ee.ExitCode()
	}
	t.Fatalf("%s %s: %v (not an exit of its own)\n%s", name, strings.Join(args, " "), err, e.String())
	return "", 0
}

// wantOneLineError runs flowtape with args and checks that it fails as a
// user at 3 a.m. needs: the exit code, and one line on stderr saying want.
func wantOneLineError(t *testing.T, args []string, code int, want string) {
	t.Helper()
	_, errOut, got := runCmd(t, args...)
	msg := strings.TrimSpace(errOut)
	if got != code || !strings.Contains(msg, want) || strings.Contains(msg, "\n") {
		t.Errorf("flowtape %s: exit %d, stderr %q; want exit %d and one line with %q", strings.Join(args, " "), got, msg, code, want)
	}
}

// docs/schema.md is generated from the schema table; it must not go stale.
func TestSchemaDocIsCurrent(t *testing.T) {
	out, _, code := runCmd(t, "schema", "--format", "markdown")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	testutil.Golden(t, filepath.Join(testutil.Root(), "docs", "schema.md"), []byte(out), *update, "make docs")
}

func TestSchemaCommandListsEveryColumn(t *testing.T) {
	out, _, code := runCmd(t, "schema", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	derived := len(schema.Requests.Columns) + len(schema.Connections.Columns) + len(schema.Traffic.Columns) + len(schema.Pods.Columns) +
		len(schema.SummaryTable.Columns)
	if len(rows) != len(schema.Flows.Columns)+len(schema.ViewColumns)+len(schema.Events.Columns)+derived {
		t.Fatalf("%d rows, want one per column", len(rows))
	}
	required := []string{"time", "uuid", "node_name", "verdict", "drop_reason_desc", "type", "event_type", "event_subtype",
		"traffic_direction", "trace_observation_point", "is_reply", "ip_source", "ip_destination", "ip_version", "l4_protocol",
		"source_port", "destination_port", "tcp_syn", "tcp_rst", "source_namespace", "source_pod_name", "source_workload",
		"source_workload_kind", "source_app", "source_labels", "source_identity", "source_cluster_name", "source_service_name",
		"source_service_namespace", "source_names", "destination_workload", "l7_type", "l7_latency_ns", "http_code",
		"http_method", "http_url", "http_protocol", "http_headers", "http_request_id", "dns_query", "dns_rcode", "dns_ips", "dns_qtypes",
		"dns_rrtypes", "ingress_denied_by", "egress_allowed_by", "auth_type", "encrypted", "extra"}
	have := map[string]bool{}
	for _, r := range rows {
		if r["table"] == "flows" {
			have[r["column"].(string)] = true
		}
		if r["description"] == "" || r["type"] == "" {
			t.Errorf("column %v lacks a type or description", r["column"])
		}
	}
	for _, c := range required {
		if !have[c] {
			t.Errorf("flows lack column %s", c)
		}
	}
}

func TestVersion(t *testing.T) {
	out, _, code := runCmd(t, "version", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var rows []map[string]string
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0]["schema_version"] != schema.Version || !strings.HasPrefix(rows[0]["duckdb_version"], "v1.") || rows[0]["build"] != "full" {
		t.Fatalf("version = %v", rows)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"sim", "--scenario", "chaos"}, `unknown scenario "chaos"`},
		{[]string{"sim", "--speed", "fast"}, `invalid --speed "fast"`},
		{[]string{"sim", "--rate", "-1"}, "invalid --rate"},
		{[]string{"sim", "--start", "yesterday"}, "invalid --start"},
		{[]string{"schema", "--format", "xml"}, `unknown --format "xml"`},
		{[]string{"sim", "--no-such-flag"}, "unknown flag"},
		{[]string{"record", "-o", "x", "--max-disk", "lots"}, `--max-disk: invalid size "lots"`},
		{[]string{"record", "-o", "x", "--retention", "-1h"}, "invalid --retention -1h0m0s"},
		{[]string{"record", "-o", "x", "--node", "n1"}, "--node n1 needs --per-node"},
		{[]string{"analyze", "slo", "x", "--objective", "100"}, "--objective 100: give a percentage of good events below 100"},
		{[]string{"analyze", "slo", "x", "--latency", "500us"}, "--latency 500µs: give a threshold of at least 1ms"},
		{[]string{"analyze", "slo", "x", "--level", "pod"}, "--level pod: slo gives a row per service"},
		{[]string{"analyze", "slo", "x", "--objective", "0"}, "--objective 0: give a percentage"},
		{[]string{"analyze", "slo", "x", "--objective", "NaN"}, "--objective NaN: give a percentage"},
		{[]string{"analyze", "slo", "x", "--bucket", "1h"}, "--bucket 1h0m0s: slo evaluates its alerts every --bucket, which must divide 5m"},
		{[]string{"analyze", "graph", "x", "--level", "edge"}, "--level edge is slo's"},
		{[]string{"analyze", "egress", "x", "--new-since", "yesterday"}, `invalid --new-since "yesterday": give a time`},
		{[]string{"analyze", "services", "x", "--new-since", "5m"}, "--new-since applies to egress, not to services"},
		// a flag the analysis does not read is refused, not ignored
		{[]string{"analyze", "errors", "x", "--level", "service"}, "--level applies to graph and slo, not to errors"},
		{[]string{"analyze", "services", "x", "--by", "edge"}, "--by applies to errors, not to services"},
		{[]string{"analyze", "services", "x", "--latency", "300ms"}, "--latency applies to slo, not to services"},
		{[]string{"analyze", "drops", "x", "--reporter", "client"}, "--reporter applies to services, graph, errors, timeline and slo, not to drops"},
		{[]string{"analyze", "graph", "x", "--bucket", "1m"}, "--bucket applies to timeline and slo, not to graph"},
		{[]string{"analyze", "coverage", "x", "-n", "shop"}, "--namespace applies to services, graph, errors, drops, dns, timeline, egress and slo, not to coverage"},
		{[]string{"record", "-o", "x", "--retention", "a week"}, `invalid argument "a week" for "--retention" flag: use a duration such as 7d`},
		{[]string{"analyze", "services", "x", "--memory-limit", "lots"}, `--memory-limit: invalid size "lots": use e.g. 256MB or 20GiB`},
		{[]string{"query", "x", "SELECT 1", "--memory-limit", "2Gx"}, `--memory-limit: invalid size "2Gx": use e.g. 256MB`},
		{[]string{"analyze", "services", "x", "--memory-limit", "2"}, `--memory-limit: "2" is less than 16MB, too little to work in: give e.g. 512MB or 2GiB (a number alone is bytes)`},
		{[]string{"replay", "x", "--memory-limit", "64KiB"}, `--memory-limit: "64KiB" is less than 16MB, too little`},
		{[]string{"analyze", "services", "x", "--since", "yesterday"}, `invalid --since "yesterday": give a time (RFC 3339`},
		{[]string{"analyze", "services", "x", "--since", "2026-11-25T13:02:00"}, `invalid --since "2026-11-25T13:02:00": give its zone, e.g. 2026-11-25T13:02:00Z for UTC or 2026-11-25T13:02:00+02:00`},
		{[]string{"analyze", "services", "x", "--until", "9999-12-31T23:59:59Z"}, `invalid --until "9999-12-31T23:59:59Z": give a time between 1970 and 2262`},
		{[]string{"analyze", "services", "x", "--since", "1700-01-01T00:00:00Z"}, `invalid --since "1700-01-01T00:00:00Z": give a time between 1970 and 2262`},
		{[]string{"analyze", "egress", "x", "--new-since", "2026-11-25 13:02"}, `invalid --new-since "2026-11-25 13:02": give its zone, e.g. 2026-11-25T13:02:00Z for UTC`},
		{[]string{"analyze", "services", "x", "--until", "2026-12-06 06:21:00"}, `invalid --until "2026-12-06 06:21:00": give its zone, e.g. 2026-12-06T06:21:00Z for UTC`},
	}
	for _, tt := range tests {
		_, stderr, code := runCmd(t, tt.args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("flowtape %v: exit %d, stderr %q; want exit 2 and one line containing %q", tt.args, code, stderr, tt.want)
		}
	}
}

func TestDaysDuration(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{{"7d", 7 * 24 * time.Hour, true}, {"2w", 14 * 24 * time.Hour, true}, {"36h", 36 * time.Hour, true}, {"90m", 90 * time.Minute, true},
		{"d", 0, false}, {"1.5d", 0, false}, {"week", 0, false}} {
		var d time.Duration
		err := daysDuration{&d}.Set(tt.in)
		if (err == nil) != tt.ok || d != tt.want {
			t.Errorf("--retention %s = %v, %v; want %v", tt.in, d, err, tt.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
	}{
		{"512", 512}, {"256MB", 256 << 20}, {"20GiB", 20 << 30}, {"20Gi", 20 << 30}, {"1TiB", 1 << 40}, {"64kb", 64 << 10},
		{"", -1}, {"0", -1}, {"-5MB", -1}, {"1.5GB", -1}, {"GB", -1}, {"10000000TB", -1}, {"16777216TiB", -1},
	} {
		got, err := parseSize(tt.in)
		if tt.want < 0 {
			if err == nil {
				t.Errorf("parseSize(%q) = %d, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

// flowtape sim --duration --truth writes the truth when the simulation ends.
func TestSimWritesTruth(t *testing.T) {
	truth := filepath.Join(t.TempDir(), "truth.json")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"sim", "--listen", "127.0.0.1:0", "--scenario", "incident", "--speed", "600",
			"--start", "2026-11-25T13:00:00Z", "--duration", "3m", "--rate", "500", "--truth", truth}, &bytes.Buffer{}, &bytes.Buffer{})
	}()
	var tr sim.Truth
	testutil.Eventually(t, time.Minute, "flowtape sim writes its truth", func() bool {
		b, err := os.ReadFile(truth)
		return err == nil && json.Unmarshal(b, &tr) == nil
	})
	cancel()
	<-done
	if tr.Scenario != "incident" || tr.Flows == 0 || tr.IncidentStart == nil || len(tr.Buckets) != 3 {
		t.Fatalf("truth = %+v", tr)
	}
	pay, ok := tr.Service("paymentservice")
	if !ok || pay.Requests == 0 || pay.Errors == 0 || pay.P99Ms <= 0 {
		t.Fatalf("paymentservice truth = %+v", pay)
	}
}

// DuckDB's out-of-memory error names no flag: the command adds what to do.
func TestOutOfMemoryHint(t *testing.T) {
	oom := errors.New("services: query: Out of Memory Error: failed to pin block of size 256.0 KiB (15.7 MiB/16.0 MiB used)")
	for _, tc := range []struct {
		name string
		args []string
		err  error
		want string
	}{
		{"limit given", []string{"analyze", "services", "x", "--memory-limit", "16MiB"}, oom, ": give DuckDB more than --memory-limit 16MiB, or a --temp-dir"},
		{"no limit", []string{"query", "x", "SELECT 1"}, oom, ": DuckDB took up to 80% of this machine's memory (--memory-limit)"},
		{"another error", []string{"analyze", "services", "x", "--memory-limit", "16MiB"}, errors.New("no recording files"), ""},
		{"replay's limit is Go's", []string{"replay", "x", "--memory-limit", "16MiB"}, oom, ""},
		{"no such flag", []string{"export", "x"}, oom, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := newRootCmd(io.Discard, io.Discard)
			cmd, rest, err := root.Find(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.ParseFlags(rest); err != nil {
				t.Fatal(err)
			}
			got := outOfMemoryHint(cmd, tc.err)
			if tc.want == "" && got != "" || !strings.HasPrefix(got, tc.want) {
				t.Errorf("hint %q, want %q", got, tc.want)
			}
		})
	}
}
