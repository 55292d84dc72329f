package analyze_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowtape/flowtape/analyze"
)

// The SQL that flowtape query --print-setup prints sets up, on its own in
// a fresh DuckDB, views over which the analyses' SQL files give what
// Engine.Run gives, with the parameters set as variables by hand.
func TestSetupSQLRunsAlone(t *testing.T) {
	ctx := context.Background()
	dir, start := incidentAndSamples(t)
	e := open(t, dir)
	setup, err := e.SetupSQL(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	db := analyze.OpenDuckDB(t)
	if _, err := db.ExecContext(ctx, setup); err != nil {
		t.Fatalf("the printed setup does not run: %v", err)
	}

	since, until := start.Add(10*time.Second), start.Add(35*time.Second)
	ts := func(t time.Time) string { return "TIMESTAMP_NS '" + t.Format("2006-01-02 15:04:05.999999999") + "'" }
	for _, c := range []struct {
		analysis string
		params   analyze.Params
		vars     map[string]string // as a user sets them in the duckdb CLI
	}{
		{"services", analyze.Params{}, nil},
		{"services", analyze.Params{Reporter: "client", Namespace: "default"}, map[string]string{"reporter": "'client'", "namespace": "'default'"}},
		{"graph", analyze.Params{}, nil},
		{"graph", analyze.Params{Level: "service"}, map[string]string{"level": "'service'"}},
		{"graph", analyze.Params{Level: "pod", Since: since, Until: until}, map[string]string{"level": "'pod'", "since": ts(since), "until": ts(until)}},
		{"coverage", analyze.Params{}, nil},
		{"timeline", analyze.Params{Bucket: 24 * time.Hour}, map[string]string{"bucket": "86400"}},
		{"timeline", analyze.Params{Bucket: 5 * time.Second, Since: since, Until: until}, map[string]string{"bucket": "5", "since": ts(since), "until": ts(until)}},
		{"errors", analyze.Params{}, nil},
		{"errors", analyze.Params{Since: since}, map[string]string{"since": ts(since)}},
		{"drops", analyze.Params{}, nil},
		{"dns", analyze.Params{}, nil},
	} {
		name := fmt.Sprintf("%s %v", c.analysis, c.vars)
		c.params.Summaries = analyze.SummariesNever // the printed setup is the exact path's
		want, err := e.Run(ctx, c.analysis, c.params)
		if err != nil {
			t.Fatal(err)
		}
		if len(want.Rows) == 0 {
			t.Fatalf("%s: no rows, the comparison proves nothing", name)
		}
		for _, v := range []string{"since", "until", "namespace", "reporter", "level", "bucket"} {
			val := "NULL"
			if x, ok := c.vars[v]; ok {
				val = x
			}
			if _, err := db.ExecContext(ctx, "SET VARIABLE "+v+" = "+val); err != nil {
				t.Fatal(err)
			}
		}
		q, err := analyze.AnalysisSQL(c.analysis)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := analyze.ScanTable(rows)
		rows.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: over the printed setup\n%v\nwant (Engine.Run)\n%v", name, got, want)
		}
	}
}

// The printed setup names the files by absolute path: it runs in the
// duckdb CLI wherever that starts, not only where flowtape ran.
func TestSetupSQLNamesFilesByAbsolutePath(t *testing.T) {
	dir, _ := incidentAndSamples(t)
	t.Chdir(filepath.Dir(dir))
	e := open(t, filepath.Base(dir))
	setup, err := e.SetupSQL(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(setup, "'"+dir+string(filepath.Separator)) {
		t.Errorf("the setup does not name the files under %s:\n%s", dir, setup)
	}
	t.Chdir(t.TempDir())
	db := analyze.OpenDuckDB(t)
	if _, err := db.Exec(setup); err != nil {
		t.Fatalf("the printed setup does not run elsewhere: %v", err)
	}
	var n int64
	if err := db.QueryRow("SELECT count(*) FROM flows").Scan(&n); err != nil || n == 0 {
		t.Fatalf("flows over the printed setup: %d, %v", n, err)
	}
}
