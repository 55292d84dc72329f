package analyze

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/flowtape/flowtape/printer"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// Query runs any SQL over the views and returns its result; the views it
// reads are set up first.
func (e *Engine) Query(ctx context.Context, q string, args ...any) (printer.Table, error) {
	if err := e.ensure(ctx, e.refs(q)...); err != nil {
		return printer.Table{}, err
	}
	for {
		t, err := e.query(ctx, q, args...)
		// A view read in a way refs does not see (DESCRIBE requests).
		if m := missingObject.FindStringSubmatch(errString(err)); m != nil {
			if i, ok := e.provider[strings.ToLower(m[1])]; ok && !e.done[i] {
				if err := e.ensure(ctx, strings.ToLower(m[1])); err != nil {
					return printer.Table{}, err
				}
				continue
			}
		}
		if err != nil {
			err = e.blame(ctx, err)
		}
		return t, err
	}
}

// missingObject is DuckDB's error for a view or macro that is not set up.
var missingObject = regexp.MustCompile(`Catalog Error: (?:Table(?: Function)?|Scalar Function|Macro Function) with name (\w+) does not exist`)

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// blame names the file behind a read error that does not name one: DuckDB
// reports a damaged page ("Invalid Error: Variable-length int over 10
// bytes") without saying where, and at 3 a.m. the file is what matters.
// Only such errors cost the extra read of every file.
// A damaged derived file is derived again from its flows (reindex
// --force: reindex alone looks at the footers only).
func (e *Engine) blame(ctx context.Context, err error) error {
	msg := err.Error()
	var derived []string
	for _, kind := range schema.DerivedKinds {
		derived = append(derived, e.derived[kind]...)
	}
	damaged := func(f string) error {
		if slices.Contains(derived, f) {
			return fmt.Errorf("%w (%s is damaged: run flowtape reindex --force %s to derive it again from its flows)",
				err, f, strings.Join(recordingsOf([]string{f}), " "))
		}
		if slices.Contains(e.files.Flows, f) {
			// the command says what to do, as of a flow file cut short
			return &tape.UnreadableError{Path: f, Err: err}
		}
		return fmt.Errorf("%w (%s is damaged: move it out of the recording to analyse the rest)", err, f)
	}
	if strings.Contains(msg, ".parquet") {
		for _, f := range derived {
			if strings.Contains(msg, f) {
				return damaged(f)
			}
		}
		return err
	}
	// "Invalid Input Error" is also what error() and bad arguments raise:
	// only the bare "Invalid Error" of a page that does not decode counts.
	if !strings.Contains(msg, "Invalid Error:") {
		return err
	}
	for _, f := range slices.Concat(e.files.Flows, e.files.Events, derived) {
		if ctx.Err() != nil {
			return err
		}
		rows, qerr := e.db.QueryContext(ctx, "SELECT * FROM read_parquet("+quote(f)+")")
		if qerr == nil {
			for rows.Next() {
			}
			qerr = rows.Err()
			rows.Close()
		}
		if qerr != nil {
			return damaged(f)
		}
	}
	return err
}

func (e *Engine) query(ctx context.Context, q string, args ...any) (printer.Table, error) {
	start := time.Now()
	rows, err := e.db.QueryContext(ctx, q, args...)
	if err != nil {
		return printer.Table{}, fmt.Errorf("query: %w", firstLine(err))
	}
	defer rows.Close()
	t, err := ScanTable(rows)
	slog.Debug("ran the query", "rows", len(t.Rows), "took", time.Since(start))
	return t, err
}

// ScanTable reads a DuckDB result into a table of printable values (times
// as RFC 3339, UUIDs and big integers as strings, lists of strings as
// []string).
func ScanTable(rows *sql.Rows) (printer.Table, error) {
	var t printer.Table
	var err error
	if t.Columns, err = rows.Columns(); err != nil {
		return t, err
	}
	for rows.Next() {
		vals := make([]any, len(t.Columns))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return t, fmt.Errorf("query: %w", firstLine(err))
		}
		for i, v := range vals {
			vals[i] = plain(v)
		}
		t.Rows = append(t.Rows, vals)
	}
	if err := rows.Err(); err != nil {
		return t, fmt.Errorf("query: %w", firstLine(err))
	}
	return t, nil
}

func plain(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case *big.Int:
		return x.String()
	case []byte:
		return fmt.Sprintf("%x", x)
	case duckdb.UUID:
		return x.String()
	case *duckdb.UUID:
		return x.String()
	case []any:
		// Lists of strings print as lists of strings in every format.
		strs := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return v
			}
			strs = append(strs, s)
		}
		return strs
	}
	return v
}

// View describes one of the views.
type View struct {
	Name    string   `json:"name"`
	Columns []Column `json:"columns"`
}

// Column is a view's column.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// ViewNames are the views users query, in the order --views lists them
// and they are created (flows and events read the files; the others are
// sql/views/NAME.sql and may read the views before them).
var ViewNames = []string{"flows", "events", "pods", "pod_renames", "edges", "traffic", "requests", "requests_counted", "connections", "drops", "dns"}

// Views describes every view.
func (e *Engine) Views(ctx context.Context) ([]View, error) {
	if err := e.ensure(ctx, ViewNames...); err != nil {
		return nil, err
	}
	var out []View
	for _, name := range ViewNames {
		rows, err := e.db.QueryContext(ctx, "SELECT column_name, column_type FROM (DESCRIBE "+name+")")
		if err != nil {
			return nil, fmt.Errorf("describe %s: %w", name, firstLine(err))
		}
		v := View{Name: name}
		for rows.Next() {
			var c Column
			if err := rows.Scan(&c.Name, &c.Type); err != nil {
				rows.Close()
				return nil, err
			}
			v.Columns = append(v.Columns, c)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("describe %s: %w", name, firstLine(err))
		}
		out = append(out, v)
	}
	return out, nil
}
