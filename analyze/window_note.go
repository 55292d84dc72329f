package analyze

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/flowtape/flowtape/printer"
)

// An analysis of a window that holds none of the recording's flows comes
// back empty, as it should (a window in a gap between two recordings holds
// nothing, and exit 0 says the analysis ran). But the usual cause at 3 a.m.
// is a --since/--until in the wrong day or time zone (a local time given
// without its offset is read as UTC), and an empty table does not say so:
// EmptyWindowNote does, naming where the flows are. A window that ends
// before the first flow or starts after the last, with one flag alone, is
// already an error (ft_window): this covers windows given with both.

// flowSpanSQL is the first and last flow of the files read, and how many
// traffic rows (a node's flows of a minute) overlap the window [$1, $2],
// in nanoseconds since the epoch:
// none, and the window holds no flow. derived_traffic_all is the whole
// recording on both paths (the summary path's derived_traffic is cut to
// the window).
const flowSpanSQL = `SELECT coalesce(epoch_ns(min(first_time)), 0), coalesce(epoch_ns(max(last_time)), 0),
    count(*) FILTER (WHERE epoch_ns(last_time) >= $1 AND epoch_ns(first_time) <= $2)
FROM derived_traffic_all`

// chFlowSpanSQL is flowSpanSQL in ClickHouse's dialect; the window's ends
// are filled in as nanoseconds.
const chFlowSpanSQL = `SELECT toString(coalesce(toUnixTimestamp64Nano(min(first_time)), 0)), toString(coalesce(toUnixTimestamp64Nano(max(last_time)), 0)),
    toString(countIf(toUnixTimestamp64Nano(last_time) >= %d AND toUnixTimestamp64Nano(first_time) <= %d))
FROM derived_traffic`

// EmptyWindowNote is a note for a result t of an analysis over the window
// p.Since-p.Until that is empty or counts no flow: where the flows of the
// files read are, when the window holds none of them. "" when t counts
// flows, no window was given, or the window holds flows (the analysis
// found nothing of its kind in them).
func (e *Engine) EmptyWindowNote(ctx context.Context, t printer.Table, p Params) (string, error) {
	if !needsWindowNote(t, p) {
		return "", nil
	}
	since, until := windowEnds(p)
	var first, last, in int64
	if err := e.db.QueryRowContext(ctx, flowSpanSQL, since.UnixNano(), until.UnixNano()).Scan(&first, &last, &in); err != nil {
		return "", fmt.Errorf("the recording's first and last flow: %w", firstLine(err))
	}
	return emptyWindowNote(p, first, last, in), nil
}

// EmptyWindowNote is Engine.EmptyWindowNote on ClickHouse.
func (e *ClickHouse) EmptyWindowNote(ctx context.Context, t printer.Table, p Params) (string, error) {
	if !needsWindowNote(t, p) {
		return "", nil
	}
	since, until := windowEnds(p)
	r, err := e.Query(ctx, fmt.Sprintf(chFlowSpanSQL, since.UnixNano(), until.UnixNano()))
	if err != nil {
		return "", fmt.Errorf("the recording's first and last flow: %w", err)
	}
	if len(r.Rows) != 1 || len(r.Rows[0]) != 3 {
		return "", fmt.Errorf("the recording's first and last flow: ClickHouse gave %d rows", len(r.Rows))
	}
	return emptyWindowNote(p, IntCell(r.Rows[0][0]), IntCell(r.Rows[0][1]), IntCell(r.Rows[0][2])), nil
}

// needsWindowNote: a window was given, and the result is empty or counts
// no flow (timeline's buckets and coverage's nodes are rows of zeros).
func needsWindowNote(t printer.Table, p Params) bool {
	if p.Since.IsZero() && p.Until.IsZero() {
		return false
	}
	flows := slices.Index(t.Columns, "flows")
	for _, r := range t.Rows {
		if flows < 0 || IntCell(r[flows]) != 0 {
			return false
		}
	}
	return true
}

// windowEnds is the window with an unset end open.
func windowEnds(p Params) (since, until time.Time) {
	since, until = p.Since, p.Until
	if since.IsZero() {
		since = time.Unix(0, -1<<63+1)
	}
	if until.IsZero() {
		until = time.Unix(0, 1<<63-1)
	}
	return since.UTC(), until.UTC()
}

func emptyWindowNote(p Params, first, last, in int64) string {
	if in > 0 || first == 0 && last == 0 {
		return ""
	}
	var w string
	switch {
	case p.Since.IsZero():
		w = "until " + p.Until.UTC().Format(time.RFC3339Nano)
	case p.Until.IsZero():
		w = "from " + p.Since.UTC().Format(time.RFC3339Nano)
	default:
		w = p.Since.UTC().Format(time.RFC3339Nano) + " to " + p.Until.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("the window (%s) holds none of the recording's flows, which run from %s to %s: "+
		"check --since and --until (a time without a zone offset is UTC)", w,
		time.Unix(0, first).UTC().Format(time.RFC3339), time.Unix(0, last).UTC().Format(time.RFC3339))
}
