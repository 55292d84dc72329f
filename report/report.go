// Package report writes postmortem documents (HTML and Markdown) from the
// results of the built-in analyses: every number in a report is a row of
// an analysis that `flowtape analyze` prints too, and the report's appendix
// holds the SQL that computed it.
package report

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/printer"
)

// Options say what a report covers.
type Options struct {
	// Title heads the document; empty: "Postmortem: " and the recordings.
	Title string
	// Since and Until bound the window reported on (zero: the recording's).
	Since, Until time.Time
	// Baseline is the window "what changed" compares against; nil: the part
	// of the window before the incident found in the timeline, if any.
	Baseline *Window
	// Bucket is the timeline's bucket; 0 picks one that gives the window
	// 60 to 150 buckets.
	Bucket time.Duration
	// Top is how many rows the top-N tables keep (0: defaults.ReportTop).
	Top int
}

// Window is a span of time, both ends inclusive.
type Window struct{ Since, Until time.Time }

func (w Window) String() string {
	return w.Since.UTC().Format(time.RFC3339Nano) + " to " + w.Until.UTC().Format(time.RFC3339Nano)
}

// Report is what a postmortem says, ready to be written in a format.
type Report struct {
	Title      string
	Recordings []string
	Window     Window
	Bucket     time.Duration
	Summary    Summary
	Timeline   []Point
	Incident   *Incident
	Graph      printer.Table // the graph analysis
	Services   printer.Table // the services analysis
	Changes    *Changes      // nil when there was nothing to compare against
	Errors     printer.Table // top rows of errors
	Drops      printer.Table // top rows of drops
	DNS        printer.Table // top failing rows of dns
	Sections   []Section     // the SQL of each analysis, for the appendix
}

// Summary is the first thing a reader needs: what was recorded and whether
// it is complete.
type Summary struct {
	Nodes        int
	Flows        int64
	Requests     int64
	L7           bool // an L7 proxy reported requests for some service
	Complete     bool
	LostEvents   int64
	LostBySource string // e.g. HUBBLE_RING_BUFFER=120,PERF_EVENT_RING_BUFFER=3
	FirstLost    string
	LastLost     string
	Coverage     printer.Table // the coverage analysis, a row per node
	Notes        []string      // what a reader must know to read the numbers right
}

// Section names an analysis a report section is built from, and the
// parameters it ran with, so that a reader can run it again.
type Section struct {
	Title    string
	Analysis string
	Params   string // flowtape analyze flags
	SQL      string
}

// Build runs the analyses a report needs over the recordings eng has open;
// paths name them in the report. It materializes eng's shared views (see
// analyze.Engine.Materialize) for the dozen analyses it runs.
func Build(ctx context.Context, eng analyze.Runner, paths []string, o Options) (*Report, error) {
	if o.Top <= 0 {
		o.Top = defaults.ReportTop
	}
	r := &Report{Title: o.Title, Recordings: paths}
	if r.Title == "" {
		r.Title = "Postmortem: " + strings.Join(paths, ", ")
	}
	// A report runs a dozen analyses over the same connections: join
	// their attempts across files once.
	if err := eng.Materialize(ctx); err != nil {
		return nil, err
	}
	// Each end of the window, and of a baseline, that lies past the
	// recording's own first or last flow is narrowed to it: rates divide
	// by the window, and a --since before the recording would make them,
	// and the timeline's baseline, too quiet (see recordingWindow).
	if !o.Since.IsZero() || !o.Until.IsZero() || o.Baseline != nil {
		first, last, err := flowSpan(ctx, eng, time.Time{}, time.Time{})
		if err != nil {
			return nil, err
		}
		if !o.Since.IsZero() || !o.Until.IsZero() {
			w := Window{o.Since, o.Until}.narrowedTo(first, last)
			o.Since, o.Until = w.Since, w.Until
			// (the first or last flow: as without --since or --until)
			if o.Until.Equal(last) {
				o.Until = time.Time{}
			}
			if o.Since.Equal(first) {
				o.Since = time.Time{}
			}
		}
		if o.Baseline != nil {
			b := o.Baseline.narrowedTo(first, last)
			o.Baseline = &b
		}
	}
	p := analyze.Params{Since: o.Since, Until: o.Until}
	run := func(title, name string, p analyze.Params) (printer.Table, error) {
		t, err := eng.Run(ctx, name, p)
		if err != nil {
			return t, err
		}
		q, _ := eng.SQLOf(name)
		flags := flagsOf(p)
		if f := eng.Flags(); f != "" {
			flags = strings.TrimSpace(flags + " " + f)
		}
		r.Sections = append(r.Sections, Section{Title: title, Analysis: name, Params: flags, SQL: q})
		return t, nil
	}

	cov, err := run("Summary and coverage", "coverage", p)
	if err != nil {
		return nil, err
	}
	if err := r.summarize(cov); errors.Is(err, errNoFlows) && (!o.Since.IsZero() || !o.Until.IsZero()) {
		return nil, fmt.Errorf("%s: no flows in the window %s: nothing to report", strings.Join(paths, " "), flagsOf(p))
	} else if errors.Is(err, errNoFlows) {
		return nil, fmt.Errorf("%s: the recording holds no flows, only events: nothing to report (flowtape analyze coverage shows what was lost)", strings.Join(paths, " "))
	} else if err != nil {
		return nil, err
	}
	if o.Since.IsZero() {
		o.Since = r.Window.Since
	}
	if o.Until.IsZero() {
		o.Until = r.Window.Until
	}
	r.Window = Window{o.Since, o.Until}
	p = analyze.Params{Since: o.Since, Until: o.Until}

	r.Bucket = o.Bucket
	if r.Bucket <= 0 {
		r.Bucket = pickBucket(r.Window.Until.Sub(r.Window.Since))
	}
	tp := p
	tp.Bucket = r.Bucket
	tl, err := run("Timeline", "timeline", tp)
	if err != nil {
		return nil, err
	}
	if r.Timeline, err = points(tl); err != nil {
		return nil, err
	}
	if r.Graph, err = run("Dependency graph", "graph", p); err != nil {
		return nil, err
	}
	if r.Services, err = run("Services", "services", p); err != nil {
		return nil, err
	}
	for _, row := range r.Services.Records() {
		r.Summary.Requests += analyze.IntCell(row["requests"])
		if row["visibility"] == "L7" {
			r.Summary.L7 = true
		}
	}
	r.Summary.Notes = append(r.Summary.Notes, analyze.Notes("services", r.Services)...)

	var baselineTL []Point
	if o.Baseline != nil {
		bp := analyze.Params{Since: o.Baseline.Since, Until: o.Baseline.Until, Bucket: r.Bucket}
		bt, err := eng.Run(ctx, "timeline", bp)
		if err != nil {
			return nil, fmt.Errorf("--baseline: %w", err)
		}
		if baselineTL, err = points(bt); err != nil {
			return nil, err
		}
	}
	r.Incident = findIncident(r.Timeline, baselineTL)

	base := o.Baseline
	if base == nil && r.Incident != nil && r.Incident.Start.After(r.Window.Since) {
		base = &Window{r.Window.Since, r.Incident.Start.Add(-time.Nanosecond)}
	}
	if base != nil {
		after := r.Window
		if o.Baseline == nil {
			after.Since = r.Incident.Start
		} else if cut, ok := withoutBaseline(after, *base); ok {
			// as flowtape diff: the baseline's rows would dilute every change
			after = cut
		}
		if r.Changes, err = Compare(ctx, eng, *base, eng, after, o.Top); err != nil {
			return nil, err
		}
		r.Changes.Given = o.Baseline != nil
		if !r.Changes.Given {
			r.Changes.Why = r.Incident.Why
		}
	}

	errs, err := run("Top errors", "errors", p)
	if err != nil {
		return nil, err
	}
	r.Errors = head(errs, o.Top)
	drops, err := run("Drops and policy denies", "drops", p)
	if err != nil {
		return nil, err
	}
	r.Drops = head(drops, o.Top)
	dns, err := run("DNS failures", "dns", p)
	if err != nil {
		return nil, err
	}
	r.DNS = head(failing(dns), o.Top)
	return r, nil
}

// errNoFlows: the window holds events at most.
var errNoFlows = errors.New("no flows")

// summarize reads the coverage analysis: its first row is the recording.
func (r *Report) summarize(cov printer.Table) error {
	rows := cov.Records()
	if len(rows) == 0 || rows[0]["node"] != "(all)" {
		return fmt.Errorf("coverage: no summary row")
	}
	all := rows[0]
	if analyze.IntCell(all["flows"]) == 0 {
		return errNoFlows
	}
	s := &r.Summary
	s.Nodes = len(rows) - 1
	s.Flows = analyze.IntCell(all["flows"])
	s.LostEvents = analyze.IntCell(all["lost_events"])
	s.LostBySource = toString(all["lost_by_source"])
	s.FirstLost, s.LastLost = toString(all["first_lost"]), toString(all["last_lost"])
	s.Complete = all["complete"] == true
	s.Coverage = printer.Table{Columns: cov.Columns, Rows: cov.Rows[1:]}
	var err error
	if r.Window.Since, err = parseTime(all["first_flow"]); err != nil {
		return fmt.Errorf("coverage: %w", err)
	}
	if r.Window.Until, err = parseTime(all["last_flow"]); err != nil {
		return fmt.Errorf("coverage: %w", err)
	}
	if !s.Complete {
		msg := "the recording is incomplete"
		if s.LostEvents > 0 {
			msg += fmt.Sprintf(": %d events were lost (%s) between %s and %s", s.LostEvents, s.LostBySource, s.FirstLost, s.LastLost)
		}
		if u := analyze.IntCell(all["unavailable"]); u > 0 {
			msg += fmt.Sprintf("; node streams were unavailable %d times", u)
		}
		s.Notes = append(s.Notes, msg+": counts below are lower bounds.")
	}
	return nil
}

// pickBucket chooses a round bucket that gives a window 60 to 150 of them.
func pickBucket(span time.Duration) time.Duration {
	for _, b := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second,
		30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
		30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour} {
		if span/b <= 150 {
			return b
		}
	}
	return 24 * time.Hour
}

// flagsOf spells parameters as the flags of flowtape analyze.
func flagsOf(p analyze.Params) string {
	var f []string
	if !p.Since.IsZero() {
		f = append(f, "--since "+p.Since.UTC().Format(time.RFC3339Nano))
	}
	if !p.Until.IsZero() {
		f = append(f, "--until "+p.Until.UTC().Format(time.RFC3339Nano))
	}
	if p.Bucket > 0 {
		f = append(f, "--bucket "+p.Bucket.String())
	}
	return strings.Join(f, " ")
}

func head(t printer.Table, n int) printer.Table {
	if len(t.Rows) > n {
		t.Rows = t.Rows[:n]
	}
	return t
}

// failing keeps the rows with errors (the dns analysis lists answers too).
func failing(t printer.Table) printer.Table {
	out := printer.Table{Columns: t.Columns}
	for i, row := range t.Records() {
		if analyze.IntCell(row["errors"]) > 0 {
			out.Rows = append(out.Rows, t.Rows[i])
		}
	}
	return out
}
