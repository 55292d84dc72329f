// Package analyze opens flowtape recordings in embedded DuckDB and runs the
// built-in analyses, which are SQL files embedded in the binary.
package analyze

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"

	_ "github.com/duckdb/duckdb-go/v2" // registers the "duckdb" database/sql driver

	"github.com/flowtape/flowtape/schema"
)

// SQL holds the views and analyses, for users to read and reuse
// (flowtape query --views shows the views; the README links the files).
//
//go:embed sql
var SQL embed.FS

// Options tune the engine.
type Options struct {
	// MemoryLimit is DuckDB's memory_limit (e.g. "2GB"); beyond it,
	// operators spill to TempDir instead of failing. Empty: DuckDB's
	// default (80% of RAM).
	MemoryLimit string
	// TempDir is where DuckDB spills (default: DuckDB's, next to the
	// database, i.e. .tmp in the working directory).
	TempDir string
}

// Engine is an in-memory DuckDB database with views over recordings.
type Engine struct {
	db    *sql.DB
	files schema.Files
}

// Open checks the recordings' files (kind and schema version of each) and
// defines the views over them.
func Open(ctx context.Context, paths []string, o Options) (*Engine, error) {
	files, err := schema.FindFiles(paths...)
	if err != nil {
		return nil, err
	}
	for _, p := range slices.Concat(files.Flows, files.Events) {
		if _, err := schema.Stat(p); err != nil {
			return nil, err
		}
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	// One connection: settings and views belong to it.
	db.SetMaxOpenConns(1)
	e := &Engine{db: db, files: files}
	if err := e.setup(ctx, o); err != nil {
		db.Close()
		return nil, err
	}
	return e, nil
}

// Close releases the database.
func (e *Engine) Close() error { return e.db.Close() }

// Files are the recording files the views read.
func (e *Engine) Files() schema.Files { return e.files }

func (e *Engine) setup(ctx context.Context, o Options) error {
	var stmts []string
	if o.MemoryLimit != "" {
		stmts = append(stmts, fmt.Sprintf("SET memory_limit = %s", quote(o.MemoryLimit)))
	}
	if o.TempDir != "" {
		stmts = append(stmts, fmt.Sprintf("SET temp_directory = %s", quote(o.TempDir)))
	}
	stmts = append(stmts,
		baseView("flows_all", schema.KindFlows, e.files.Flows),
		flowsView(e.files.Flows),
		baseView("events", schema.KindEvents, e.files.Events))
	for _, s := range stmts {
		if _, err := e.db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("set up: %w", firstLine(err))
		}
	}
	return e.execFiles(ctx, "sql/macros.sql", "sql/views")
}

// execFiles runs embedded SQL files, or every file of a directory in name order.
func (e *Engine) execFiles(ctx context.Context, names ...string) error {
	for _, name := range names {
		var files []string
		if entries, err := fs.ReadDir(SQL, name); err == nil {
			for _, d := range entries {
				files = append(files, path.Join(name, d.Name()))
			}
		} else {
			files = []string{name}
		}
		for _, f := range files {
			b, err := SQL.ReadFile(f)
			if err != nil {
				return err
			}
			if _, err := e.db.ExecContext(ctx, string(b)); err != nil {
				return fmt.Errorf("%s: %w", f, firstLine(err))
			}
		}
	}
	return nil
}

// baseView reads the files of one kind; with none, an empty relation of
// the documented columns, so that every query works on any recording.
func baseView(name, kind string, files []string) string {
	if len(files) == 0 {
		var cols []string
		for _, c := range schema.Reference() {
			if c.Table == kind {
				cols = append(cols, fmt.Sprintf("CAST(NULL AS %s) AS %s", c.Type, quoteIdent(c.Name)))
			}
		}
		return fmt.Sprintf("CREATE OR REPLACE VIEW %s AS SELECT %s WHERE false", name, strings.Join(cols, ", "))
	}
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = quote(f)
	}
	return fmt.Sprintf("CREATE OR REPLACE VIEW %s AS SELECT * FROM read_parquet([%s], union_by_name = true)", name, strings.Join(quoted, ", "))
}

// flowsView is flows_all with each uuid once. A recorder drops the flows
// a resumed stream sends twice, so one recording session never repeats a
// uuid; files of several sessions (overlapping imports, recordings of the
// same cluster) may, and only then is the costly dedupe done.
func flowsView(files []string) string {
	if sessions(files) <= 1 {
		return "CREATE OR REPLACE VIEW flows AS SELECT * FROM flows_all"
	}
	return `CREATE OR REPLACE VIEW flows AS SELECT * FROM flows_all
QUALIFY uuid IS NULL OR row_number() OVER (PARTITION BY uuid ORDER BY time) = 1`
}

// sessions counts the recording sessions (recording ids, from the file
// names) files come from; a file not named by flowtape counts as its own.
func sessions(files []string) int {
	ids := map[string]bool{}
	for _, f := range files {
		parts := strings.Split(strings.TrimSuffix(filepath.Base(f), ".parquet"), "-")
		if len(parts) == 3 {
			ids[parts[1]] = true
		} else {
			ids[f] = true
		}
	}
	return len(ids)
}

func quote(s string) string      { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// firstLine keeps the first line of a DuckDB error: the rest is a caret
// diagram or a stack that does not help at 3 a.m.
func firstLine(err error) error {
	s := strings.TrimSpace(err.Error())
	if i := strings.IndexByte(s, '\n'); i > 0 {
		s = s[:i]
	}
	return fmt.Errorf("%s", s)
}

// DuckDBVersion is the version of the embedded DuckDB library.
func DuckDBVersion(ctx context.Context) (string, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return "", fmt.Errorf("open duckdb: %w", err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRowContext(ctx, "SELECT version()").Scan(&v); err != nil {
		return "", fmt.Errorf("duckdb version: %w", err)
	}
	return v, nil
}
