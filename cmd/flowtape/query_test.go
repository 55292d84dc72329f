package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// flowtape query over imported real samples: any SQL, every format, the
// views listed, and one-line errors.
func TestQueryCommand(t *testing.T) {
	dir := importSamples(t)
	out, errOut, code := runCmd(t, "query", dir, "SELECT type, count(*) AS n FROM flows GROUP BY ALL ORDER BY type", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rows []struct {
		Type string `json:"type"`
		N    int64  `json:"n"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	total := int64(0)
	for _, r := range rows {
		total += r.N
	}
	if total != 768 || len(rows) != 2 || rows[0].Type != "L3_L4" || rows[1].Type != "L7" {
		t.Errorf("flows by type %+v; want L3_L4 and L7 adding up to 768", rows)
	}
	out, _, code = runCmd(t, "query", dir, "--views")
	for _, v := range []string{"flows:", "events:", "requests:", "dns:", "drops:", "edges:"} {
		if code != 0 || !strings.Contains(out, "\n"+v) && !strings.HasPrefix(out, v) {
			t.Errorf("--views lacks %s:\n%s", v, out)
		}
	}
	out, _, code = runCmd(t, "query", dir, "SELECT count(*) AS n FROM requests WHERE error", "--format", "csv")
	if code != 0 || !strings.HasPrefix(out, "n\n") {
		t.Errorf("csv: exit %d\n%s", code, out)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"query", dir, "SELEC 1"}, 1, `query: Parser Error: syntax error at or near "SELEC"`},
		{[]string{"query", dir}, 2, "give the recordings and then the SQL"},
		{[]string{"query", dir, "SELECT 1", "--format", "xml"}, 2, "unknown --format"},
		{[]string{"query", t.TempDir(), "SELECT 1"}, 1, "not a flowtape recording"},
	} {
		_, errOut, code := runCmd(t, tc.args...)
		msg := strings.TrimSpace(errOut)
		if code != tc.code || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
			t.Errorf("flowtape %s: exit %d, %q; want exit %d and one line with %q", strings.Join(tc.args, " "), code, msg, tc.code, tc.want)
		}
	}
}

// flowtape analyze services: JSON with the documented field names, and
// usage errors for what does not exist.
func TestAnalyzeServicesCommand(t *testing.T) {
	dir := importSamples(t)
	out, errOut, code := runCmd(t, "analyze", "services", dir, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) == 0 {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, f := range []string{"service", "namespace", "protocols", "requests", "rps", "errors", "error_rate", "client_errors",
		"no_response", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "outbound_requests", "drops", "policy_denies",
		"tcp_resets", "dns_errors", "health"} {
		if _, ok := rows[0][f]; !ok {
			t.Errorf("services JSON lacks %q", f)
		}
	}
	if out, _, code := runCmd(t, "analyze", "services", "--sql"); code != 0 || !strings.Contains(out, "FROM requests") {
		t.Errorf("--sql: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"analyze", "nope", dir}, {"analyze", "services", dir, "--reporter", "proxy"}, {"analyze", "services"}} {
		if _, _, code := runCmd(t, args...); code != 2 {
			t.Errorf("flowtape %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
}
