package analyze

import (
	"context"
	"fmt"
)

// shared are the views several analyses read that are worth computing
// once for many analyses: TCP connections, whose attempts are joined
// across files and judged at query time (0.4 s over 10M flows, read by
// services, graph, errors and timeline, and again for a report's baseline
// window). Requests are not: the derived tables pair them when they are
// written, and what is left costs less than holding millions of them in
// memory (a report of 10M flows took 12.7 s and 2.4 GB with them
// materialized, 8.0 s and 790 MB with connections only; BenchmarkReport10M).
// TestMaterializeKeepsEveryAnswer runs every analysis both ways.
var shared = []string{"connections"}

// Materialize computes the views that several analyses share once, into
// temporary tables the analyses then read instead of the views: for
// running many analyses over the same recording, as a report does. The
// tables hold the whole recording (analyses still take any window).
func (e *Engine) Materialize(ctx context.Context) error {
	if e.materialized {
		return nil
	}
	for _, v := range shared {
		if err := e.ensure(ctx, v); err != nil {
			return err
		}
		// A temporary table is found before the view of the same name,
		// and a temporary macro before the one the analyses call.
		q := fmt.Sprintf("CREATE OR REPLACE TEMP TABLE %[1]s AS SELECT * FROM main.%[1]s; "+
			"CREATE OR REPLACE TEMP MACRO ft_%[1]s(cols) AS TABLE SELECT COLUMNS(col -> cols IS NULL OR list_contains(cols, col)) FROM temp.%[1]s",
			v)
		if _, err := e.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("materialize %s: %w", v, firstLine(err))
		}
	}
	e.materialized = true
	return nil
}
