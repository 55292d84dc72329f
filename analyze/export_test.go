package analyze

import (
	"database/sql"
	"testing"
)

// VariablesSQL sets the variables the macros read, for tests that set up
// DuckDB without an engine.
func VariablesSQL() string { return variablesSQL() }

// OpenDuckDB is a fresh in-memory DuckDB of one connection (variables and
// temporary macros belong to a connection), closed when the test ends.
func OpenDuckDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	return db
}

// ViewConnections makes e read the connections view's general
// definition, never connections_single.sql's.
func (e *Engine) ViewConnections() { e.viewConnections = true }

// SingleConnections reports whether e reads connections_single.sql's
// connections.
func (e *Engine) SingleConnections() bool { return e.singleConnections }
