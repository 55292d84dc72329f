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
