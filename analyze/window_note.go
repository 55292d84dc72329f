package analyze

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/flowtape/flowtape/printer"
)

// An analysis of a window that holds none of the recording's flows comes
// back empty, as it should (exit 0 says the analysis ran). But the usual
// cause at 3 a.m. is a --since/--until in the wrong day or time zone (an
// offset or Z is part of every time flowtape takes, and Z is UTC, not the
// clock on the wall), and an empty table does not say so: WindowNote
// does, naming where the flows are, or the gap the window falls in (a
// recorder that was down: coverage says more). A window that ends before
// the first flow or starts after the last, with one flag alone, is an
// error (ft_window) except for timeline and coverage, which stretch the
// window over lost events too.

// flowSpanSQL is the first and last flow of the files read, how many
// traffic rows (a node's flows of a minute) overlap the window [$1, $2],
// in nanoseconds since the epoch (none: the window holds no flow), and
// the last flow before it and the first after it. derived_traffic_all is
// the whole recording on both paths (the summary path's derived_traffic
// is cut to the window).
const flowSpanSQL = `SELECT coalesce(epoch_ns(min(first_time)), 0), coalesce(epoch_ns(max(last_time)), 0),
    count(*) FILTER (WHERE epoch_ns(last_time) >= $1 AND epoch_ns(first_time) <= $2),
    coalesce(epoch_ns(max(last_time) FILTER (WHERE epoch_ns(last_time) < $1)), 0),
    coalesce(epoch_ns(min(first_time) FILTER (WHERE epoch_ns(first_time) > $2)), 0)
FROM derived_traffic_all`

// chFlowSpanSQL is flowSpanSQL in ClickHouse's dialect; the window's ends
// are filled in as nanoseconds.
const chFlowSpanSQL = `SELECT toString(coalesce(toUnixTimestamp64Nano(min(first_time)), 0)), toString(coalesce(toUnixTimestamp64Nano(max(last_time)), 0)),
    toString(countIf(toUnixTimestamp64Nano(last_time) >= %[1]d AND toUnixTimestamp64Nano(first_time) <= %[2]d)),
    toString(coalesce(toUnixTimestamp64Nano(maxIf(last_time, toUnixTimestamp64Nano(last_time) < %[1]d)), 0)),
    toString(coalesce(toUnixTimestamp64Nano(minIf(first_time, toUnixTimestamp64Nano(first_time) > %[2]d)), 0))
FROM derived_traffic`

// flowSpan is what flowSpanSQL gives, in nanoseconds since the epoch.
type flowSpan struct{ first, last, in, before, after int64 }

// WindowNote is a note on the window p.Since-p.Until of an analysis's
// result t. Where t is empty or counts no flow: where the flows of the
// files read are, when the window holds none of them ("" when it holds
// some: the analysis found nothing of its kind in them). Where t has rates
// (per second of the window): how little of the window the flows cover,
// when they cover less than 99% of it: a window that reaches an hour past
// a recorder that stopped divides its minutes of traffic by the hour. ""
// without a window. From a bucket, the files read are those of the
// window's hours: the caller says so.
func (e *Engine) WindowNote(ctx context.Context, t printer.Table, p Params) (string, error) {
	if !needsWindowNote(t, p) {
		return "", nil
	}
	since, until := windowEnds(p)
	var s flowSpan
	if err := e.db.QueryRowContext(ctx, flowSpanSQL, since.UnixNano(), until.UnixNano()).Scan(&s.first, &s.last, &s.in, &s.before, &s.after); err != nil {
		return "", fmt.Errorf("the recording's first and last flow: %w", firstLine(err))
	}
	return noteOnWindow(t, p, s), nil
}

// WindowNote is Engine.WindowNote on ClickHouse.
func (e *ClickHouse) WindowNote(ctx context.Context, t printer.Table, p Params) (string, error) {
	if !needsWindowNote(t, p) {
		return "", nil
	}
	since, until := windowEnds(p)
	r, err := e.Query(ctx, fmt.Sprintf(chFlowSpanSQL, since.UnixNano(), until.UnixNano()))
	if err != nil {
		return "", fmt.Errorf("the recording's first and last flow: %w", err)
	}
	if len(r.Rows) != 1 || len(r.Rows[0]) != 5 {
		return "", fmt.Errorf("the recording's first and last flow: ClickHouse gave %d rows", len(r.Rows))
	}
	c := r.Rows[0]
	return noteOnWindow(t, p, flowSpan{IntCell(c[0]), IntCell(c[1]), IntCell(c[2]), IntCell(c[3]), IntCell(c[4])}), nil
}

// Noter says why a result may mislead: Engine and ClickHouse.
type Noter interface {
	WindowNote(ctx context.Context, t printer.Table, p Params) (string, error)
	NamespaceNote(ctx context.Context, t printer.Table, p Params) (string, error)
}

var (
	_ Noter = (*Engine)(nil)
	_ Noter = (*ClickHouse)(nil)
)

// ResultNote is the note on a result t of an analysis of p: a namespace
// no flow has (the likelier cause of an empty result), else the window's;
// "" for none. An error is of the notes' own queries: the result stands
// without them.
func ResultNote(ctx context.Context, n Noter, t printer.Table, p Params) (string, error) {
	note, nsErr := n.NamespaceNote(ctx, t, p)
	if note != "" {
		return note, nil
	}
	note, err := n.WindowNote(ctx, t, p)
	return note, errors.Join(nsErr, err)
}

// needsWindowNote: a window was given, and the result is empty or counts
// no flow, or has rates.
func needsWindowNote(t printer.Table, p Params) bool {
	return (!p.Since.IsZero() || !p.Until.IsZero()) && (countsNoFlow(t) || hasRates(t))
}

// hasRates: a row has a rate (rps; NULL in every row where no L7 proxy
// reported requests).
func hasRates(t printer.Table) bool {
	rps := slices.Index(t.Columns, "rps")
	return rps >= 0 && slices.ContainsFunc(t.Rows, func(r []any) bool { return r[rps] != nil })
}

// countsNoFlow: the result is empty, or its flows are all zero
// (timeline's buckets and coverage's nodes are rows of zeros).
func countsNoFlow(t printer.Table) bool {
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

func noteOnWindow(t printer.Table, p Params, s flowSpan) string {
	if s.first == 0 && s.last == 0 {
		return ""
	}
	ts := func(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }
	var w string
	switch {
	case p.Since.IsZero():
		w = "until " + ts(p.Until.UnixNano())
	case p.Until.IsZero():
		w = "from " + ts(p.Since.UnixNano())
	default:
		w = ts(p.Since.UnixNano()) + " to " + ts(p.Until.UnixNano())
	}
	if s.in > 0 {
		if !hasRates(t) {
			return ""
		}
		// the window as ft_window takes it, and the part of it the flows span
		t0, t1 := s.first, s.last
		if !p.Since.IsZero() {
			t0 = p.Since.UnixNano()
		}
		if !p.Until.IsZero() {
			t1 = p.Until.UnixNano()
		}
		covered := time.Duration(min(t1, s.last) - max(t0, s.first))
		window := time.Duration(t1 - t0)
		if float64(covered) >= 0.99*float64(window) || window-covered < time.Second {
			return ""
		}
		return fmt.Sprintf("the window (%s) reaches past the recording's flows (%s to %s): its rates divide by the whole window (%s), "+
			"of which the flows cover %s", w, ts(s.first), ts(s.last), window.Round(time.Second), covered.Round(time.Second))
	}
	if !countsNoFlow(t) {
		return ""
	}
	if s.before != 0 && s.after != 0 {
		return fmt.Sprintf("the window (%s) holds no flows: it falls in a gap of the recording, between its flows of %s and %s "+
			"(flowtape analyze coverage says whether flows were lost)", w, ts(s.before), ts(s.after))
	}
	return fmt.Sprintf("the window (%s) holds none of the recording's flows, which run from %s to %s: "+
		"check --since and --until (Z is UTC; a local time needs its offset, e.g. +02:00)", w, ts(s.first), ts(s.last))
}
