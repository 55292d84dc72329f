package analyze_test

import (
	"context"
	"strings"
	"testing"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/tape"
)

// Connections are judged on evidence only (see the connections view), on
// recordings of each shape, cut from the real 400-flow capture
// (testdata/fixtures/README.md):
//   - policy verdicts only (hubble observe --verdict REDIRECTED): every SYN
//     went to the L7 proxy, which answers it: no failure;
//   - the client's SYNs only (--tcp-flags SYN, not SYN-ACK): nothing of the
//     other direction is recorded: not judged, health unknown, and a note
//     says why;
//   - the same SYNs with the SYN-ACKs of one server on the node: the node's
//     replies are recorded, so a SYN without one failed;
//   - the same, recorded with filters (the manifest says so): the node's
//     replies say nothing of a pair whose replies the filter may have
//     dropped, so only the pair's own replies count.
func TestConnectionsAreJudgedOnEvidence(t *testing.T) {
	type svc struct {
		connections, failures int64
		health                string
	}
	for _, c := range []struct {
		fixture  string
		filtered bool
		want     map[string]svc
		note     string
	}{
		{"connections-redirected.json", false, map[string]svc{
			"details": {9, 0, "healthy"}, "productpage": {9, 0, "healthy"}, "reviews": {9, 0, "healthy"}}, ""},
		{"connections-syn-only.json", false, map[string]svc{
			"productpage": {18, 0, "unknown"}, "reviews": {14, 0, "unknown"}, "details": {9, 0, "unknown"},
			"jaeger-default": {1, 0, "unknown"}, "ratings": {1, 0, "unknown"}}, "health unknown for 5 services"},
		{"connections-unanswered.json", false, map[string]svc{
			"productpage": {18, 12, "failure"}, "reviews": {14, 10, "failure"}, "details": {9, 0, "healthy"},
			"jaeger-default": {1, 1, "failure"}, "ratings": {1, 1, "failure"}}, ""},
		{"connections-unanswered.json", true, map[string]svc{
			"productpage": {18, 0, "unknown"}, "reviews": {14, 0, "unknown"}, "details": {9, 0, "healthy"},
			"jaeger-default": {1, 0, "unknown"}, "ratings": {1, 0, "unknown"}}, "health unknown for 4 services"},
	} {
		name := c.fixture
		if c.filtered {
			name += " recorded with filters"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			testutil.WriteRecording(t, dir, "f", testutil.LoadResponses(t, testutil.Testdata("fixtures", c.fixture)))
			if c.filtered {
				d, err := tape.OpenDir(dir)
				if err != nil {
					t.Fatal(err)
				}
				err = d.PutSession(tape.Session{RecordingID: "f", Tool: "flowtape record", Status: "complete",
					Filters: tape.Filters{Raw: `allowlist:\n- '{"source_pod":["bookinfo/productpage-v1-6b746f74dc-9rcxx"]}'`}})
				d.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			e := open(t, dir)
			res, err := e.Run(context.Background(), "services", analyze.Params{})
			if err != nil {
				t.Fatal(err)
			}
			col := map[string]int{}
			for i, name := range res.Columns {
				col[name] = i
			}
			got := map[string]svc{}
			for _, r := range res.Rows {
				got[r[col["service"]].(string)] = svc{analyze.IntCell(r[col["connections"]]), analyze.IntCell(r[col["connection_failures"]]),
					r[col["health"]].(string)}
			}
			for name, w := range c.want {
				if got[name] != w {
					t.Errorf("%s: %+v, want %+v", name, got[name], w)
				}
			}
			notes := strings.Join(analyze.Notes("services", res), "\n")
			if c.note != "" && !strings.Contains(notes, c.note) {
				t.Errorf("notes %q, want one with %q", notes, c.note)
			}
			if c.note == "" && strings.Contains(notes, "health unknown") {
				t.Errorf("notes %q: no service's health is unknown", notes)
			}
		})
	}
}
