package analyze

import (
	"io/fs"
	"slices"
	"testing"
)

// An analysis gets the views it reads: from FROM and JOIN, and from the
// names passed to the macros (FROM ft_in_window('connections', ...)),
// not from names its CTEs shadow.
func TestRefsOfTheAnalyses(t *testing.T) {
	e := &Engine{all: (&Engine{}).steps(), provider: map[string]int{}}
	for i, s := range e.all {
		for _, n := range s.provides {
			e.provider[n] = i
		}
	}
	for _, c := range []struct {
		name string
		want []string
	}{
		{"services", []string{"ft_window", "ft_traffic_in", "ft_requests_in", "ft_connections_in"}},
		{"graph", []string{"ft_graph_nodes", "ft_requests_in", "ft_connections_in", "derived_traffic_all"}},
		{"errors", []string{"ft_requests_in"}},
		{"timeline", []string{"ft_requests_in"}},
		{"drops", []string{"drops"}},
		{"dns", []string{"dns"}},
	} {
		q, err := AnalysisSQL(c.name)
		if err != nil {
			t.Fatal(err)
		}
		got := e.refs(q)
		for _, w := range c.want {
			if !slices.Contains(got, w) {
				t.Errorf("%s reads %v: no %s", c.name, got, w)
			}
		}
	}
	for q, want := range map[string][]string{
		"WITH traffic AS (SELECT 1 AS n) SELECT * FROM traffic":                    nil,
		"WITH x AS (SELECT 1), pods AS NOT MATERIALIZED (FROM flows) FROM pods, x": {"flows"},
		"DESCRIBE requests": {"requests"},
		"SELECT * FROM edges -- FROM connections\nJOIN dns USING (node_name)":      {"edges", "dns"},
		"SELECT getvariable('ft_pods_renamed'), * FROM ft_in_window('drops', 'w')": {"ft_in_window", "ft_pods_renamed", "drops"},
		// a view named with its schema (the step that makes pod_renames a
		// table reads main.pod_renames)
		"SELECT count(*) > 0 FROM main.pod_renames": {"pod_renames"},
		// the macros a query calls, and no name in a comment
		"SELECT ft_error_rate (e, n), FT_HEALTH(r) FROM x -- ft_since()": {"ft_error_rate", "ft_health"},
	} {
		got := e.refs(q)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("refs(%q) = %v, want %v", q, got, want)
		}
	}
}

// No SQL of flowtape names a CTE like a view (refs would not set it up).
func TestNoCTEShadowsAView(t *testing.T) {
	e := &Engine{all: (&Engine{}).steps(), provider: map[string]int{}}
	for i, s := range e.all {
		for _, n := range s.provides {
			e.provider[n] = i
		}
	}
	texts := map[string]string{}
	for _, s := range e.all {
		if s.file != "" {
			b, _ := SQL.ReadFile(s.file)
			texts[s.file] = string(b)
		}
	}
	for _, name := range Analyses() {
		texts[name], _ = AnalysisSQL(name)
	}
	for name, q := range texts {
		for _, m := range cteName.FindAllStringSubmatch(sqlComment.ReplaceAllString(q, ""), -1) {
			if _, ok := e.provider[m[1]]; ok {
				t.Errorf("%s: CTE %s has the name of a view or macro", name, m[1])
			}
		}
	}
}

// A view file is split at the semicolons that end statements, not at those
// in strings, quoted names or comments; each view is a step of its own.
func TestSplitStatements(t *testing.T) {
	text := "-- a view; with a comment\nCREATE OR REPLACE MACRO m() AS ';';\n" +
		"CREATE OR REPLACE VIEW v AS SELECT 1 AS \"a;b\"; -- after;\n-- only a comment;\n"
	got := splitStatements(text)
	want := []string{
		"-- a view; with a comment\nCREATE OR REPLACE MACRO m() AS ';';",
		"CREATE OR REPLACE VIEW v AS SELECT 1 AS \"a;b\";",
	}
	if !slices.Equal(got, want) {
		t.Errorf("splitStatements = %q, want %q", got, want)
	}
	// every statement of a file the setup splits creates one view or
	// macro (one that did not would be set up by no query)
	files, _ := fs.Glob(SQL, "sql/views/*.sql")
	files = append(files, "sql/macros.sql", "sql/window.sql", "sql/slo.sql", "sql/summary/rows.sql", "sql/summary/views.sql")
	for _, f := range files {
		b, _ := SQL.ReadFile(f)
		for _, stmt := range splitStatements(string(b)) {
			if len(createdBy(stmt)) != 1 {
				t.Errorf("%s: a statement that creates %v: %.80q", f, createdBy(stmt), stmt)
			}
		}
	}
	if got := splitStatements("/* a; 'b */ SELECT 1; SELECT 2;"); len(got) != 2 {
		t.Errorf("a block comment: %q", got)
	}
	e := &Engine{}
	steps := map[string]string{}
	for _, s := range e.steps() {
		for _, p := range s.provides {
			steps[p] = s.title
		}
	}
	if steps["connections"] == steps["ft_connections"] || steps["ft_connections"] == steps["ft_connections_in"] ||
		steps["ft_since"] == steps["ft_until"] {
		t.Errorf("steps: %q, %q, %q, %q, %q; want a step per view and per macro",
			steps["connections"], steps["ft_connections"], steps["ft_connections_in"], steps["ft_since"], steps["ft_until"])
	}
}
