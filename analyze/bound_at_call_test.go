package analyze

import (
	"context"
	"strings"
	"testing"
)

// The big table macros over the views are bound when a query calls them,
// not also when they are created (ft_bound_at_call in macros.sql): each
// is created in a DuckDB that has none of the views it reads. Without
// the guard, DuckDB binds the macro at creation, and there fails on the
// first view that is missing (the control below), so this test fails
// where a macro loses its guard or DuckDB changes the rule.
func TestTableMacrosBoundAtCall(t *testing.T) {
	ctx := context.Background()
	db := OpenDuckDB(t)
	macros, err := SQL.ReadFile("sql/macros.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, string(macros)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, macro string }{
		{"sql/views/requests.sql", "ft_requests_of"},
		{"sql/views/requests_counted.sql", "ft_requests_counted"},
		{"sql/views/requests_counted.sql", "ft_requests_in"},
		{"sql/views/connections.sql", "ft_connections"},
		{"sql/views/connections.sql", "ft_connections_in"},
		{"sql/views/connections.sql", "ft_connections_judged"},
		{connectionsSingle, "ft_connections"},
		{trafficInWhole, "ft_traffic_in"},
		{trafficInCut, "ft_traffic_in"},
		{"sql/summary/views.sql", "ft_s_requests_in"},
		{"sql/summary/views.sql", "ft_s_connections_in"},
	} {
		stmt := macroStatement(t, c.file, c.macro)
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Errorf("%s: %s is bound when it is created: %v", c.file, c.macro, firstLine(err))
		}
	}

	// the control: the same macro without its guard
	stmt := macroStatement(t, "sql/views/requests.sql", "ft_requests_of")
	unguarded := strings.Replace(stmt, "FROM ft_bound_at_call(cols), ", "FROM ", 1)
	if unguarded == stmt {
		t.Fatal("ft_requests_of reads no ft_bound_at_call(cols)")
	}
	_, err = db.ExecContext(ctx, unguarded)
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("ft_requests_of without its guard: %v, want an error naming a view that does not exist "+
			"(DuckDB binds a table macro when it is created)", err)
	}
}

// macroStatement is the statement of file that creates macro.
func macroStatement(t *testing.T, file, macro string) string {
	t.Helper()
	b, err := SQL.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range splitStatements(string(b)) {
		if created := createdBy(stmt); len(created) == 1 && created[0] == macro {
			return stmt
		}
	}
	t.Fatalf("%s creates no %s", file, macro)
	return ""
}
