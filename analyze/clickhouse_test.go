package analyze_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/printer"
	"github.com/flowtape/flowtape/sim"
)

// Every analysis gives the same rows on ClickHouse (chDB, the ClickHouse
// engine in this process) as on DuckDB: over the simulator's incident,
// whole and in a window that cuts minutes, and over every real sample
// with the drops fixture, at each --level and --reporter that changes
// the SQL's path.
func TestClickHouseMatchesDuckDB(t *testing.T) {
	// Parallel with the other long tests that change no package state
	// (schema's bounds, the environment): chDB analyses each query on one
	// core, most of this test's three minutes, and they use the other.
	t.Parallel()
	testutil.NeedCHDB(t)
	ctx := context.Background()
	incident := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	testutil.WriteRecording(t, incident, "incident", testutil.SimResponses(sim.Scenarios["incident"], 7, 60, start, start.Add(4*time.Minute)))
	samples := t.TempDir()
	for i, in := range append([]string{dropsFixture}, sampleFiles()...) {
		testutil.WriteRecording(t, samples, fmt.Sprintf("s%d", i), testutil.LoadResponses(t, in))
	}
	// The same incident recorded by two sessions that overlap by a
	// minute (a recorder restarted, resumed early): each flow counts once.
	restarted := t.TempDir()
	resps := testutil.SimResponses(sim.Scenarios["incident"], 7, 60, start, start.Add(4*time.Minute))
	testutil.WriteRecording(t, restarted, "first", resps[:len(resps)*6/10])
	testutil.WriteRecording(t, restarted, "second", resps[len(resps)*4/10:])
	// A spool that dropped flows after the recording's last one (the
	// store was down): coverage of that window, which holds no flow.
	dropped := t.TempDir()
	testutil.WriteRecording(t, dropped, "incident", resps)
	manifest := fmt.Sprintf(`{"tool": "flowtape", "schema_version": "1.3", "sessions": [],
		"spool_dropped": {"files": 2, "bytes": 1000, "flows": 500, "events": 0, "first_flow": %q, "last_flow": %q}}`,
		start.Add(5*time.Minute).Format(time.RFC3339), start.Add(9*time.Minute).Format(time.RFC3339))
	if err := os.WriteFile(filepath.Join(dropped, "manifest.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	cut := analyze.Params{Since: start.Add(90*time.Second + 500*time.Millisecond), Until: start.Add(3*time.Minute + 10*time.Second)}
	// egress's naming and boundaries, by hand (TestEgress)
	egress := t.TempDir()
	testutil.WriteRecording(t, egress, "egress", egressFlows(start))
	cases := []struct {
		name string
		dir  string
		p    analyze.Params
		only []string // the analyses to compare; all when empty
	}{
		{"incident", incident, analyze.Params{}, nil},
		{"incident-restarted", restarted, analyze.Params{}, nil},
		{"incident-dropped-outage", dropped, analyze.Params{Since: start.Add(6 * time.Minute), Until: start.Add(7 * time.Minute)}, []string{"coverage"}},
		{"incident-window", incident, cut, nil},
		{"incident-pod-client", incident, analyze.Params{Level: "pod", Reporter: "client", Bucket: 30 * time.Second}, nil},
		{"incident-service-both", incident, analyze.Params{Level: "service", Reporter: "both", Namespace: "default"}, nil},
		{"incident-errors-by-edge", incident, analyze.Params{By: "edge"}, []string{"errors"}},
		{"incident-slo-edges", incident, analyze.Params{Level: "edge", Objective: 99, Latency: 20 * time.Millisecond, Bucket: 30 * time.Second}, []string{"slo"}},
		// steps before the first flow cover nothing (TestSLOSinceBeforeTheRecordingCoversNothing)
		{"incident-slo-since-before", incident, analyze.Params{Since: start.Add(-10 * time.Minute)}, []string{"slo"}},
		// no bucket of the window's last instant alone (TestTimelineEndsWithTheWindow)
		{"incident-timeline-until-on-a-bucket", incident, analyze.Params{Since: start.Add(time.Minute), Until: start.Add(3 * time.Minute)}, []string{"timeline"}},
		{"samples", samples, analyze.Params{Bucket: 24 * time.Hour}, nil},
		{"egress", egress, analyze.Params{}, []string{"egress"}},
		{"egress-new-since", egress, analyze.Params{NewSince: start.Add(3500 * time.Millisecond), Namespace: "shop"}, []string{"egress"}},
		{"incident-egress-new-since", incident, analyze.Params{NewSince: start.Add(2 * time.Minute)}, []string{"egress"}},
	}
	// and each real sample on its own
	for i, in := range sampleFiles() {
		dir := t.TempDir()
		testutil.WriteRecording(t, dir, "sample", testutil.LoadResponses(t, in))
		cases = append(cases, struct {
			name string
			dir  string
			p    analyze.Params
			only []string
		}{fmt.Sprintf("sample%d", i), dir, analyze.Params{}, nil})
	}
	for _, tc := range cases {
		duck := open(t, tc.dir)
		ch, err := analyze.OpenClickHouse(ctx, []string{tc.dir}, tc.p.Since, tc.p.Until, analyze.ClickHouseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range analyze.Analyses() {
			if tc.only != nil && !slices.Contains(tc.only, name) || (name == "slo" && (tc.p.Level == "pod" || tc.p.Bucket > 5*time.Minute)) {
				continue
			}
			// egress takes neither --level nor --reporter, and the
			// samples together hold each sample's egress
			if name == "egress" && (tc.p.Level != "" || tc.p.Reporter != "" || strings.HasPrefix(tc.name, "sample") && tc.name != "samples") {
				continue
			}
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				want, err := duck.Run(ctx, name, tc.p)
				if err != nil {
					t.Fatal(err)
				}
				got, err := ch.Run(ctx, name, tc.p)
				if err != nil {
					t.Fatal(err)
				}
				if len(want.Rows) == 0 && name != "errors" && name != "drops" && name != "dns" && !strings.HasPrefix(tc.name, "sample") {
					t.Fatalf("DuckDB gives no rows: nothing compared")
				}
				if d := tableDiff(got, want); d != "" {
					t.Errorf("ClickHouse and DuckDB differ (%d and %d rows): %s", len(got.Rows), len(want.Rows), d)
				}
			})
		}
		ch.Close()
	}
}

func sampleFiles() []string {
	var out []string
	for _, s := range allSamples {
		out = append(out, testutil.Testdata("samples", s))
	}
	return out
}

// tableDiff says where two results differ: columns, row count, the first
// differing cells. Floats equal within 1e-9 relative (both engines sum
// and divide doubles, in different orders).
func tableDiff(got, want printer.Table) string {
	if !reflect.DeepEqual(got.Columns, want.Columns) {
		return fmt.Sprintf("columns %v, want %v", got.Columns, want.Columns)
	}
	var diffs []string
	for i := 0; i < max(len(got.Rows), len(want.Rows)) && len(diffs) < 5; i++ {
		if i >= len(got.Rows) || i >= len(want.Rows) {
			diffs = append(diffs, fmt.Sprintf("row %d missing in one: got %d rows, want %d", i, len(got.Rows), len(want.Rows)))
			break
		}
		for j := range want.Columns {
			if !sameValue(got.Rows[i][j], want.Rows[i][j]) {
				diffs = append(diffs, fmt.Sprintf("row %d %s: %v (%T), want %v (%T)", i, want.Columns[j],
					got.Rows[i][j], got.Rows[i][j], want.Rows[i][j], want.Rows[i][j]))
			}
		}
	}
	return strings.Join(diffs, "; ")
}

func sameValue(a, b any) bool {
	a, b = plain(a), plain(b)
	if fa, ok := a.(float64); ok {
		fb, ok := b.(float64)
		return ok && (fa == fb || math.Abs(fa-fb) <= 1e-9*math.Max(math.Abs(fa), math.Abs(fb)))
	}
	if ta, ok := a.(time.Time); ok {
		tb, ok := b.(time.Time)
		return ok && ta.Equal(tb)
	}
	if la, ok := a.([]any); ok {
		lb, ok := b.([]any)
		if !ok || len(la) != len(lb) {
			return false
		}
		for i := range la {
			if !sameValue(la[i], lb[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// plain turns the Go values of either engine into one form: integers
// int64, floats float64, lists []any.
func plain(v any) any {
	if v == nil {
		return nil
	}
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return r.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int64(r.Uint())
	case reflect.Float32, reflect.Float64:
		return r.Float()
	case reflect.Slice:
		if b, ok := v.([]byte); ok {
			return string(b)
		}
		out := make([]any, r.Len())
		for i := range out {
			out[i] = plain(r.Index(i).Interface())
		}
		return out
	}
	return v
}

// The views a user queries have the same columns, in the same order, on
// both engines (their types are each engine's own).
func TestClickHouseViewsHaveDuckDBColumns(t *testing.T) {
	testutil.NeedCHDB(t)
	ctx := context.Background()
	dir := t.TempDir()
	testutil.WriteRecording(t, dir, "s", testutil.LoadResponses(t, testutil.Testdata("samples", "basic-sample-5-http-flows.json")))
	want, err := open(t, dir).Views(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := openCHDB(t, dir).Views(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := func(v analyze.View) []string {
		var out []string
		for _, c := range v.Columns {
			out = append(out, c.Name)
		}
		return out
	}
	if len(got) != len(want) {
		t.Fatalf("%d views on ClickHouse, %d on DuckDB", len(got), len(want))
	}
	for i := range want {
		if got[i].Name != want[i].Name || !slices.Equal(names(got[i]), names(want[i])) {
			t.Errorf("view %s on ClickHouse: %v\nDuckDB's %s: %v", got[i].Name, names(got[i]), want[i].Name, names(want[i]))
		}
	}
}

// openCHDB opens a recording on ClickHouse in this process (chDB), for
// the whole test.
func openCHDB(t *testing.T, dir string) *analyze.ClickHouse {
	t.Helper()
	ch, err := analyze.OpenClickHouse(context.Background(), []string{dir}, time.Time{}, time.Time{}, analyze.ClickHouseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch
}
