package analyze_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/sim"
)

// incidentAndSamples records 40 s of the simulator's incident (from
// start) and the real samples: every analysis has rows over it.
func incidentAndSamples(t *testing.T) (dir string, start time.Time) {
	t.Helper()
	start = time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	scen := sim.Scenarios["incident"]
	scen.IncidentAt = 20 * time.Second
	resps := testutil.SimResponses(scen, 9, 300, start, start.Add(40*time.Second))
	resps = append(resps, testutil.SampleResponses(t)...)
	dir = t.TempDir()
	testutil.WriteRecording(t, dir, "incident", resps)
	return dir, start
}

// Materialized views change how long analyses take, never what they say:
// every analysis, in and out of a window, gives the same rows.
func TestMaterializeKeepsEveryAnswer(t *testing.T) {
	dir, start := incidentAndSamples(t)
	ctx := context.Background()
	plain, err := analyze.Open(ctx, []string{dir}, analyze.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	mat, err := analyze.Open(ctx, []string{dir}, analyze.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mat.Close()
	if err := mat.Materialize(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range []analyze.Params{
		{Bucket: 24 * time.Hour},
		{Since: start.Add(15 * time.Second), Until: start.Add(30 * time.Second), Bucket: 5 * time.Second},
		{Namespace: "default", Level: "pod", Bucket: 24 * time.Hour},
		{Reporter: "client", Bucket: 24 * time.Hour},
	} {
		for _, name := range analyze.Analyses() {
			if name == "slo" && p.Level == "pod" {
				continue // refused: slo's rows are services or edges
			}
			p := p
			if name == "slo" && p.Bucket > 5*time.Minute {
				// slo's steps divide 5 minutes, and the samples are years
				// before the incident: the incident's hour
				p.Bucket = time.Minute
				if p.Since.IsZero() {
					p.Since, p.Until = start, start.Add(time.Hour)
				}
			}
			want, err := plain.Run(ctx, name, p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := mat.Run(ctx, name, p)
			if err != nil {
				t.Fatal(err)
			}
			if len(want.Rows) == 0 {
				t.Errorf("%s %+v: no rows, the comparison proves nothing", name, p)
			}
			if !reflect.DeepEqual(want, got) {
				t.Errorf("%s %+v differs once the views are materialized", name, p)
			}
		}
	}
}

// A materialized engine reads the connections once: its analyses read the
// table, not the files (removed here after Materialize).
func TestMaterializedAnalysesReadNoConnectionFile(t *testing.T) {
	dir, _ := incidentAndSamples(t)
	ctx := context.Background()
	eng, err := analyze.Open(ctx, []string{dir}, analyze.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	// the exact path: the summaries' would not read the connection files
	p := analyze.Params{Bucket: 24 * time.Hour, Summaries: analyze.SummariesNever}
	want := map[string]any{}
	for _, name := range []string{"services", "graph", "errors", "timeline"} {
		if want[name], err = eng.Run(ctx, name, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := eng.Materialize(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "connections")); err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		got, err := eng.Run(ctx, name, p)
		if err != nil {
			t.Fatalf("%s after the connection files went: %v", name, err)
		}
		if !reflect.DeepEqual(w, got) {
			t.Errorf("%s differs when it reads the materialized connections", name)
		}
	}
}
