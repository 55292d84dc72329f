package analyze

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// What: where every row of derived_connections is an attempt of its own
// (no row of an unknown attempt, no two rows of one attempt), the engine
// defines ft_connections as sql/connections_single.sql does: each row an
// attempt, judged, without the view's ordering of a connection's rows in
// time and joining of an attempt's rows across files
// (sql/views/connections.sql).
//
// Why: those steps find nothing to do then, but DuckDB plans and runs
// them all the same, a dozen operators and hash tables: 20-30 ms of the
// 300 ms services takes over 1M flows in one file (median of 21 runs),
// where most of the time is such fixed cost (issue 14's note).
//
// The trade-off: two definitions of the view's rows. The single one is
// the general one with what is empty left out: with no attempt NULL, no
// row is ordered in time (unsure is empty); with no two rows of one
// attempt, every row is an attempt alone (multi is empty). Both read the
// same macros for the rest (ft_attempt_row, ft_connections_judged).
// TestConnectionsSingleGivesTheViewsRows compares the two on recordings
// of each shape, and that it is taken where it may be.
//
// How the engine knows: the files' Parquet statistics say whether any row
// has no attempt, or does not open its attempt (it continues one of
// another file); where none, each attempt must be in the files once (read
// here: 1 ms over 1M flows; at most maxSingleAttempts), as two sessions
// may hold the same attempt, and so may one file, rarely (a SYN at the
// very instant the row before it ended: the writer names an attempt by its
// SYN's time). Not on the summary path, where derived_connections holds
// only the connections that have a row which does not open its attempt
// (or none): the variant would seldom apply, and reading every
// connections file's statistics for it would cost a long window thousands
// of footers.
const connectionsSingle = "sql/connections_single.sql"

// singleAttempts reports whether every row of derived_connections is an
// attempt of its own.
func (e *Engine) singleAttempts(ctx context.Context) (bool, error) {
	files := e.derived[schema.KindConnections]
	if len(files) == 0 || e.viewConnections || e.onSummaries() {
		return false, nil
	}
	// The view first: it checks the files' footers, and says what to run
	// of a damaged or foreign one, before the statistics below read them.
	if err := e.ensure(ctx, "derived_connections"); err != nil {
		return false, err
	}
	var ok bool
	var rows int64
	err := e.db.QueryRowContext(ctx, `SELECT count(*) FILTER (path_in_schema = 'attempt') > 0
    AND count(*) FILTER (path_in_schema = 'opens') = count(*) FILTER (path_in_schema = 'attempt')
    AND coalesce(bool_and(stats_null_count = 0 AND (path_in_schema = 'attempt' OR stats_min_value = 'true')), false),
    coalesce(sum(row_group_num_rows) FILTER (path_in_schema = 'attempt'), 0)
FROM parquet_metadata(`+quoteList(files)+`) WHERE path_in_schema IN ('attempt', 'opens')`).Scan(&ok, &rows)
	if err != nil {
		return false, fmt.Errorf("read the statistics of %d connections files: %w", len(files), firstLine(err))
	}
	if !ok || rows > maxSingleAttempts {
		return false, nil
	}
	// Each attempt once: read here, from the files, as DuckDB's count of
	// them cost a third of what the variant saves (10 ms of fixed cost;
	// the 22k attempts of 1M flows take a millisecond here). Rows that two
	// sessions hold alike count twice here, where the view keeps one: the
	// general definition then, which is right anyway.
	seen := map[int64]struct{}{}
	for _, p := range files {
		if !attemptsOnce(ctx, p, seen) {
			return false, nil
		}
	}
	return true, nil
}

// attemptsOnce adds the attempts of connections file p to seen, and
// reports whether each was new (and none NULL). A file it cannot read is
// no file of single attempts: the general definition reads it then, in
// DuckDB, which says what is wrong with it and what to run.
func attemptsOnce(ctx context.Context, p string, seen map[int64]struct{}) bool {
	err := tape.ReadColumns(ctx, p, []string{"attempt"}, func(rec arrow.RecordBatch) error {
		col, isInt := rec.Column(0).(*array.Int64)
		if !isInt || col.NullN() > 0 {
			return errNotSingle
		}
		for _, v := range col.Int64Values() {
			if _, dup := seen[v]; dup {
				return errNotSingle
			}
			seen[v] = struct{}{}
		}
		return nil
	})
	return err == nil
}

// maxSingleAttempts bounds the attempts read to know (a map of them, 10 MB
// at most): what the variant saves is fixed cost, worth it where an
// analysis takes a fraction of a second (10M flows hold 271k rows, 22k in
// 1M), not past it, where a window of a big recording would read them all.
const maxSingleAttempts = 1 << 18

// errNotSingle ends the reading of attempts at the first that is not an
// attempt of its own.
var errNotSingle = errors.New("an attempt of several rows, or of none")
