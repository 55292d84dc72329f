package analyze_test

import (
	"context"
	"fmt"
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
)

// runFresh runs an analysis on an engine of its own: an engine that read
// the summaries for one analysis reads them for no other.
func runFresh(t *testing.T, dir, name string, p analyze.Params) printer.Table {
	t.Helper()
	switch name {
	case "timeline":
		p.Bucket = time.Hour // the samples span months
	case "slo":
		p.Bucket = 5 * time.Minute // the longest step slo takes
	}
	res, err := open(t, dir).Run(context.Background(), name, p)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}

// Every column a default table names is a column of its analysis, on the
// exact path and on the summaries' (the ClickHouse analyses have the same
// columns: TestClickHouseMatchesDuckDB).
func TestTableColumnsExist(t *testing.T) {
	dir := sampleRecording(t, testutil.SampleFiles...)
	for _, name := range analyze.Analyses() {
		for _, summaries := range []string{analyze.SummariesAuto, analyze.SummariesNever} {
			res := runFresh(t, dir, name, analyze.Params{Summaries: summaries})
			for _, c := range analyze.TableColumns(name) {
				if !slices.Contains(res.Columns, c) {
					t.Errorf("%s (summaries %s): the default table's column %q is not one of %v", name, summaries, c, res.Columns)
				}
			}
		}
	}
}

// The default tables of the real samples fit a terminal of 132 columns;
// every column of them (-o wide) does not.
func TestDefaultTablesFit(t *testing.T) {
	const width = 132
	dir := sampleRecording(t, testutil.SampleFiles...)
	widest := func(tb printer.Table) int {
		var b strings.Builder
		if err := printer.Print(&b, "table", tb); err != nil {
			t.Fatal(err)
		}
		w := 0
		for _, line := range strings.Split(b.String(), "\n") {
			w = max(w, len([]rune(line)))
		}
		return w
	}
	for _, name := range analyze.Analyses() {
		// (level is graph's, by errors')
		for _, p := range []analyze.Params{{}, {Summaries: analyze.SummariesNever}, {Level: "service", By: "edge", Summaries: analyze.SummariesNever}} {
			res := runFresh(t, dir, name, p)
			narrow, wide := widest(analyze.TableView(name, res)), widest(res)
			how := fmt.Sprintf("%s (summaries %q, level %q, by %q)", name, p.Summaries, p.Level, p.By)
			t.Logf("%s: %d columns wide, %d with -o wide", how, narrow, wide)
			if narrow > width {
				t.Errorf("%s: the default table is %d columns wide, more than %d", how, narrow, width)
			}
			if analyze.TableColumns(name) != nil && wide <= width {
				t.Errorf("%s: every column fits in %d (%d): the default table need not leave any out", how, width, wide)
			}
		}
	}
}

// The default table keeps its columns, in their order, with endpoints as
// namespace/name, and leaves out columns empty in every row.
func TestTableView(t *testing.T) {
	graph := printer.Table{
		Columns: []string{"source", "source_namespace", "destination", "destination_namespace", "protocols", "ports",
			"rps", "error_rate", "p99_ms", "connections", "drops", "health"},
		Rows: [][]any{
			{"frontend", "shop", "cart", "shop", "TCP,grpc", "7070", 2.5, 0.0, nil, int64(3), int64(0), "healthy"},
			{"frontend", "shop", "world", nil, "TCP", "443", nil, nil, nil, int64(1), int64(0), "healthy"},
		},
	}
	for _, tc := range []struct {
		name string
		in   printer.Table
		want printer.Table
	}{
		{"graph", graph, printer.Table{
			// p99_ms is empty in every row
			Columns: []string{"source", "destination", "protocols", "rps", "error_rate", "connections", "drops", "health"},
			Rows: [][]any{
				{"shop/frontend", "shop/cart", "TCP,grpc", 2.5, 0.0, int64(3), int64(0), "healthy"},
				{"shop/frontend", "world", "TCP", nil, nil, int64(1), int64(0), "healthy"},
			},
		}},
		// no rows: the header stays as it is
		{"graph", printer.Table{Columns: graph.Columns}, printer.Table{Columns: analyze.TableColumns("graph")}},
		// an analysis without a column list keeps every column that says something
		{"nope", printer.Table{Columns: []string{"a", "b"}, Rows: [][]any{{"x", ""}}},
			printer.Table{Columns: []string{"a"}, Rows: [][]any{{"x"}}}},
	} {
		got := analyze.TableView(tc.name, tc.in)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("TableView(%s, %v):\n got %v\nwant %v", tc.name, tc.in, got, tc.want)
		}
	}
	// The result itself is left as it was (json and -o wide print it).
	if fmt.Sprint(graph.Rows[0][0]) != "frontend" {
		t.Errorf("TableView changed the result: %v", graph.Rows[0])
	}
}

// The README's table of the default columns is these lists.
func TestREADMEListsTableColumns(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "| analysis | default table |")
	if !ok {
		t.Fatal("README.md has no table of the default columns (| analysis | default table |)")
	}
	listed := map[string]string{}
	for _, line := range strings.Split(section, "\n")[2:] {
		cells := strings.Split(line, "|")
		if len(cells) != 4 {
			break
		}
		listed[strings.Trim(strings.TrimSpace(cells[1]), "`")] = strings.TrimSpace(cells[2])
	}
	for _, name := range analyze.Analyses() {
		cols := analyze.TableColumns(name)
		if cols == nil {
			continue
		}
		if want := "`" + strings.Join(cols, "`, `") + "`"; listed[name] != want {
			t.Errorf("README.md lists the default table of %s as %q, want %q", name, listed[name], want)
		}
		delete(listed, name)
	}
	for name := range listed {
		t.Errorf("README.md lists default columns of %s, which has none", name)
	}
}
