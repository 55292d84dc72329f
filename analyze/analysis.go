package analyze

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/flowtape/flowtape/printer"
)

// Params are the parameters every analysis takes, set as DuckDB variables
// (getvariable in the SQL files) so that the files run as they are.
type Params struct {
	Since, Until time.Time
	Namespace    string
	// Reporter is server (default), client or both: which proxy's view of
	// a request counts (see requests.sql).
	Reporter string
}

// Analyses lists the built-in analyses.
func Analyses() []string {
	entries, _ := fs.ReadDir(SQL, "sql/analyses")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".sql"))
	}
	return out
}

// AnalysisSQL is the SQL of an analysis.
func AnalysisSQL(name string) (string, error) {
	b, err := SQL.ReadFile("sql/analyses/" + name + ".sql")
	if err != nil {
		return "", fmt.Errorf("unknown analysis %q: use one of %s", name, strings.Join(Analyses(), ", "))
	}
	return string(b), nil
}

// Run runs a built-in analysis.
func (e *Engine) Run(ctx context.Context, name string, p Params) (printer.Table, error) {
	q, err := AnalysisSQL(name)
	if err != nil {
		return printer.Table{}, err
	}
	switch p.Reporter {
	case "", "server", "client", "both":
	default:
		return printer.Table{}, fmt.Errorf("unknown reporter %q: use server, client or both", p.Reporter)
	}
	vars := []struct {
		name string
		val  any
	}{
		{"since", timeOrNil(p.Since)}, {"until", timeOrNil(p.Until)},
		{"namespace", strOrNil(p.Namespace)}, {"reporter", strOrNil(p.Reporter)},
	}
	for _, v := range vars {
		stmt := fmt.Sprintf("SET VARIABLE %s = NULL", v.name)
		switch x := v.val.(type) {
		case time.Time:
			stmt = fmt.Sprintf("SET VARIABLE %s = TIMESTAMP_NS %s", v.name, quote(x.UTC().Format("2006-01-02 15:04:05.999999999")))
		case string:
			stmt = fmt.Sprintf("SET VARIABLE %s = %s", v.name, quote(x))
		}
		if _, err := e.db.ExecContext(ctx, stmt); err != nil {
			return printer.Table{}, fmt.Errorf("%s: %w", name, firstLine(err))
		}
	}
	t, err := e.Query(ctx, q)
	if err != nil {
		return t, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func strOrNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}
