package report

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/printer"
)

// DiffOptions say what flowtape diff compares: the incident window of a
// recording with a baseline, which is a window of the same recording
// (Baseline), another recording (BaselineEngine, all of it or its
// Baseline window), or, with neither given, the part of the window before
// the incident the timeline shows, as the report finds it.
type DiffOptions struct {
	// Since and Until bound the incident's side (zero: the recording's).
	Since, Until time.Time
	Baseline     *Window
	// BaselineEngine has the baseline's recordings open, BaselineFrom
	// names them; nil: the baseline is a window of the incident's.
	BaselineEngine analyze.Runner
	BaselineFrom   []string
	// Bucket is the timeline's bucket the incident is looked for in (0:
	// as the report picks it).
	Bucket time.Duration
	// Top bounds the ranked services and edges (0: defaults.ReportTop).
	Top int
}

// WhatChanged is the report's "what changed" on its own: it settles both
// windows as DiffOptions says and compares them (Compare). Each engine
// runs coverage first, as the report does: it says whether a window holds
// flows at all (an empty one would list every edge as new or vanished),
// and it keeps the engine on the exact path for the analyses after it (an
// engine reads the summaries for one analysis only).
func WhatChanged(ctx context.Context, eng analyze.Runner, paths []string, o DiffOptions) (*Changes, error) {
	if o.Top <= 0 {
		o.Top = defaults.ReportTop
	}
	after, err := recordingWindow(ctx, eng, paths, o.Since, o.Until)
	if err != nil {
		return nil, err
	}
	base, baseEng, why := o.Baseline, o.BaselineEngine, ""
	switch {
	case baseEng != nil:
		var since, until time.Time
		if base != nil {
			since, until = base.Since, base.Until
		}
		w, err := recordingWindow(ctx, baseEng, o.BaselineFrom, since, until)
		if err != nil {
			return nil, fmt.Errorf("--baseline-recording: %w", err)
		}
		base = &w
	case base != nil:
		w, err := recordingWindow(ctx, eng, paths, base.Since, base.Until)
		if err != nil {
			return nil, fmt.Errorf("--baseline %s: %w", base, err)
		}
		base = &w
		// The incident's side leaves the baseline out: within it, the
		// baseline's own rows would dilute every change.
		cut, ok := withoutBaseline(after, *base)
		if !ok {
			return nil, fmt.Errorf("--baseline %s covers the whole window %s: nothing is left to compare with it; "+
				"give --since and --until for the incident's side", base, after)
		}
		after = cut
	default:
		bucket := o.Bucket
		if bucket <= 0 {
			bucket = pickBucket(after.Until.Sub(after.Since))
		}
		tl, err := eng.Run(ctx, "timeline", analyze.Params{Since: after.Since, Until: after.Until, Bucket: bucket})
		if err != nil {
			return nil, err
		}
		pts, err := points(tl)
		if err != nil {
			return nil, err
		}
		inc := findIncident(pts, nil)
		switch {
		case inc == nil:
			return nil, fmt.Errorf("%s: no incident found in the timeline of %s (%s buckets), so no window before it to compare with: "+
				"give --baseline SINCE..UNTIL or --baseline-recording DIR", strings.Join(paths, " "), after, bucket)
		case !inc.Start.After(after.Since):
			return nil, fmt.Errorf("%s: the incident (%s) begins where the window does, %s: no window before it to compare with: "+
				"give --baseline SINCE..UNTIL or --baseline-recording DIR", strings.Join(paths, " "), inc.Why, after.Since.UTC().Format(time.RFC3339Nano))
		}
		base = &Window{after.Since, inc.Start.Add(-time.Nanosecond)}
		after.Since, why = inc.Start, inc.Why
	}
	if baseEng == nil {
		baseEng = eng
	}
	c, err := Compare(ctx, baseEng, *base, eng, after, o.Top)
	if err != nil {
		return nil, err
	}
	c.Given, c.BaselineFrom, c.Why = o.Baseline != nil || o.BaselineEngine != nil, o.BaselineFrom, why
	return c, nil
}

// withoutBaseline is the window w without the baseline b where they
// overlap: what follows b, or, where b reaches w's end, what precedes it.
// ok is false when b covers all of w.
func withoutBaseline(w, b Window) (Window, bool) {
	switch {
	case b.Until.Before(w.Since) || b.Since.After(w.Until):
	case b.Until.Before(w.Until):
		w.Since = b.Until.Add(time.Nanosecond)
	case b.Since.After(w.Since):
		w.Until = b.Since.Add(-time.Nanosecond)
	default:
		return w, false
	}
	return w, true
}

// recordingWindow is since..until, each end that is zero taken from the
// window's first or last flow (the coverage analysis), and each that lies
// past the recording's own first or last flow narrowed to it: a side's
// rates divide by its window, and a --since half an hour before the
// recording made its baseline 16 times too quiet, and every service of the
// incident a surge. An error if the window holds no flow.
func recordingWindow(ctx context.Context, eng analyze.Runner, paths []string, since, until time.Time) (Window, error) {
	w := Window{since, until}
	first, last, err := flowSpan(ctx, eng, since, until)
	if err != nil {
		return w, err
	}
	if first.IsZero() {
		return w, fmt.Errorf("%s: no flows in the window %s: nothing to compare", strings.Join(paths, " "), flagsOf(analyze.Params{Since: since, Until: until}))
	}
	if !since.IsZero() || !until.IsZero() {
		// the recording's own span: an end within it stays as given
		recFirst, recLast, err := flowSpan(ctx, eng, time.Time{}, time.Time{})
		if err != nil {
			return w, err
		}
		w = w.narrowedTo(recFirst, recLast)
	}
	if w.Since.IsZero() {
		w.Since = first
	}
	if w.Until.IsZero() {
		w.Until = last
	}
	return w, nil
}

// narrowedTo is w with each end that lies past first or last (a
// recording's first and last flow) moved to it. Zero ends stay zero, and a
// window that holds none of first..last stays as it is: its caller says
// that it holds no flows.
func (w Window) narrowedTo(first, last time.Time) Window {
	if first.IsZero() || !w.Until.IsZero() && w.Until.Before(first) || w.Since.After(last) {
		return w
	}
	if !w.Since.IsZero() && w.Since.Before(first) {
		w.Since = first
	}
	if w.Until.After(last) {
		w.Until = last
	}
	return w
}

// flowSpan is the first and last flow of the window since..until (zero
// ends: the recording's), from the coverage analysis; zero times where it
// holds none.
func flowSpan(ctx context.Context, eng analyze.Runner, since, until time.Time) (first, last time.Time, err error) {
	cov, err := eng.Run(ctx, "coverage", analyze.Params{Since: since, Until: until})
	if err != nil {
		return first, last, err
	}
	rows := cov.Records()
	if len(rows) == 0 || analyze.IntCell(rows[0]["flows"]) == 0 {
		return first, last, nil
	}
	if first, err = parseTime(rows[0]["first_flow"]); err != nil {
		return first, last, fmt.Errorf("coverage: %w", err)
	}
	if last, err = parseTime(rows[0]["last_flow"]); err != nil {
		return first, last, fmt.Errorf("coverage: %w", err)
	}
	return first, last, nil
}

// Kinds of rows in Changes.Table, in the order it lists them.
const (
	KindService       = "service"
	KindEdge          = "edge"
	KindNewEdge       = "new edge"
	KindVanishedEdge  = "vanished edge"
	KindNewDropReason = "new drop reason"
	KindNewDNSFailure = "new dns failure"
)

// DiffColumns are the columns of Changes.Table that a terminal shows (the
// rest: flowtape diff -o wide, json, csv, markdown).
var DiffColumns = []string{"change", "name", "what", "score"}

// Table is Changes as one table, a row per change: ranked services, then
// ranked edges, edges that appeared and vanished, new drop reasons and
// new DNS failures. Numbers a window lacks are NULL; score ranks services
// and edges only (new and vanished edges are by name, drop reasons and DNS
// failures by count, which what says).
func (c *Changes) Table() printer.Table {
	t := printer.Table{Columns: []string{"change", "name", "what", "score",
		"error_rate_before", "error_rate_after", "p99_ms_before", "p99_ms_after", "rps_before", "rps_after",
		"connection_failure_share_before", "connection_failure_share_after", "drop_share_before", "drop_share_after"}}
	cell := func(f float64) any {
		if math.IsNaN(f) {
			return nil
		}
		return f
	}
	for _, part := range []struct {
		kind   string
		rows   []Change
		scored bool
	}{{KindService, c.Services, true}, {KindEdge, c.Edges, true}, {KindNewEdge, c.Appeared, false},
		{KindVanishedEdge, c.Vanished, false}, {KindNewDropReason, c.NewDropReasons, false}, {KindNewDNSFailure, c.NewDNSFailures, false}} {
		numbered := part.kind != KindNewDropReason && part.kind != KindNewDNSFailure
		for _, ch := range part.rows {
			row := []any{part.kind, ch.Name, ch.What, nil}
			if part.scored {
				row[3] = math.Round(ch.Score*10) / 10
			}
			for _, v := range [][2]float64{ch.ErrorRate, ch.P99ms, ch.RPS, ch.FailShare, ch.DropShare} {
				if numbered {
					row = append(row, cell(v[0]), cell(v[1]))
				} else {
					row = append(row, nil, nil)
				}
			}
			t.Rows = append(t.Rows, row)
		}
	}
	return t
}

// Compared says in a sentence what was compared with what.
func (c *Changes) Compared() string {
	base := "Baseline: the window before the incident"
	switch {
	case len(c.BaselineFrom) > 0:
		base = "Baseline: " + strings.Join(c.BaselineFrom, " ")
	case c.Given:
		base = "Baseline (--baseline)"
	}
	s := fmt.Sprintf("%s %s, compared with %s", base, c.Baseline, c.Incident)
	if c.Why != "" {
		s += " (the incident: " + c.Why + ")"
	}
	return s + "."
}

// List is a titled list of changes that are not ranked by score.
type List struct {
	Title string
	Items []Change
}

// Lists are the edges that appeared or vanished, the new drop reasons and
// the new DNS failures, titled, as the report prints them.
func (c *Changes) Lists() []List {
	return []List{{"Edges that appeared", c.Appeared}, {"Edges that vanished", c.Vanished},
		{"New drop reasons", c.NewDropReasons}, {"New DNS failures", c.NewDNSFailures}}
}
