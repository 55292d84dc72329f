package analyze_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/chdb"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/printer"
	"github.com/flowtape/flowtape/sim"
)

// needCHDB skips a test without libchdb.so, unless the run requires it
// (make test installs it and sets FLOWTAPE_REQUIRE_CHDB=1).
func needCHDB(t *testing.T) {
	t.Helper()
	if _, err := chdb.Find(); err != nil {
		if os.Getenv("FLOWTAPE_REQUIRE_CHDB") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// Every analysis gives the same rows on ClickHouse (chDB, the ClickHouse
// engine in this process) as on DuckDB: over the simulator's incident,
// whole and in a window that cuts minutes, and over every real sample
// with the drops fixture, at each --level and --reporter that changes
// the SQL's path.
func TestClickHouseMatchesDuckDB(t *testing.T) {
	needCHDB(t)
	ctx := context.Background()
	incident := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	testutil.WriteRecording(t, incident, "incident", testutil.SimResponses(sim.Scenarios["incident"], 7, 150, start, start.Add(4*time.Minute)))
	samples := t.TempDir()
	for i, in := range append([]string{dropsFixture}, sampleFiles()...) {
		testutil.WriteRecording(t, samples, fmt.Sprintf("s%d", i), testutil.LoadResponses(t, in))
	}
	cut := analyze.Params{Since: start.Add(90*time.Second + 500*time.Millisecond), Until: start.Add(3*time.Minute + 10*time.Second)}
	for _, tc := range []struct {
		name string
		dir  string
		p    analyze.Params
	}{
		{"incident", incident, analyze.Params{}},
		{"incident-window", incident, cut},
		{"incident-pod-client", incident, analyze.Params{Level: "pod", Reporter: "client", Bucket: 30 * time.Second}},
		{"incident-service-both", incident, analyze.Params{Level: "service", Reporter: "both", Namespace: "default"}},
		{"samples", samples, analyze.Params{Bucket: 24 * time.Hour}},
	} {
		duck := open(t, tc.dir)
		ch, err := analyze.OpenClickHouse(ctx, []string{tc.dir}, tc.p.Since, tc.p.Until, analyze.ClickHouseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range analyze.Analyses() {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				want, err := duck.Run(ctx, name, tc.p)
				if err != nil {
					t.Fatal(err)
				}
				got, err := ch.Run(ctx, name, tc.p)
				if err != nil {
					t.Fatal(err)
				}
				if len(want.Rows) == 0 && name != "errors" && name != "drops" {
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
