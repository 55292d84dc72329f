//go:build !recorder

package main

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/report"
	"github.com/flowtape/flowtape/tape"
)

// withBaseline is the window since..until stretched over the baseline b
// (nil: none), so that a bucket's files of both are fetched; a zero end
// stays open.
func withBaseline(since, until time.Time, b *report.Window) (time.Time, time.Time) {
	if b != nil {
		if !since.IsZero() && b.Since.Before(since) {
			since = b.Since
		}
		if !until.IsZero() && b.Until.After(until) {
			until = b.Until
		}
	}
	return since, until
}

// parseBaseline reads --baseline SINCE..UNTIL; "" is none.
func parseBaseline(baseline string) (*report.Window, error) {
	if baseline == "" {
		return nil, nil
	}
	from, to, ok := strings.Cut(baseline, "..")
	if !ok {
		return nil, usagef("--baseline %q: give SINCE..UNTIL, e.g. 2026-11-25T12:00:00Z..2026-11-25T12:30:00Z", baseline)
	}
	b, e, err := parseWindow(from, to)
	if err != nil {
		return nil, usagef("--baseline %q: %v", baseline, err)
	}
	if b.IsZero() || e.IsZero() || !e.After(b) {
		return nil, usagef("--baseline %q: give SINCE..UNTIL with SINCE before UNTIL", baseline)
	}
	return &report.Window{Since: b, Until: e}, nil
}

func newReportCmd() *cobra.Command {
	var (
		output, format, baseline, title string
		win                             windowFlags
		cache                           cacheFlags
		bucket                          time.Duration
		eng                             engineFlags
		ch                              clickhouseFlags
	)
	cmd := &cobra.Command{
		Use:   "report DIR... -o report.html|report.md",
		Short: "Write a postmortem (HTML or Markdown) from recordings",
		Long: `Write what happened as a document: a self-contained HTML page (inline CSS, script
and SVG; it fetches nothing) or Markdown for a postmortem document.

  1. Summary: window, nodes, flows, whether L7 data is there, coverage and a
     warning when the recording is incomplete (events lost)
  2. Timeline: requests, error rate, p99 latency and drops per bucket, with the
     incident marked: the first buckets where the error rate or the share of
     dropped flows departed from the baseline
  3. Dependency graph, edges coloured by health (Markdown: a Mermaid block)
  4. Services (the services analysis; sortable in HTML)
  5. What changed: services and edges whose error rate, latency or traffic
     moved most against --baseline (default: the window before the incident),
     edges that appeared or vanished, new drop reasons
  6. Top errors, drops and policy denies, DNS failures
  7. Appendix: the SQL of each section, to run again with flowtape query

Every number comes from the built-in analyses (flowtape analyze).`,
		Example: `  flowtape report incident-42 -o incident-42.html
  flowtape report incident-42 -o incident-42.md --since 2026-11-25T13:00:00Z --until 2026-11-25T13:30:00Z
  flowtape report incident-42 -o report.html --baseline 2026-11-25T12:00:00Z..2026-11-25T12:30:00Z`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" {
				return usagef("missing -o/--output: the report file to write (.html or .md), or - for standard output with --format")
			}
			if format == "" {
				switch strings.ToLower(filepath.Ext(output)) {
				case ".html", ".htm":
					format = "html"
				case ".md", ".markdown":
					format = "markdown"
				default:
					return usagef("-o %s: name the file .html or .md, or give --format html|markdown", output)
				}
			}
			if format != "html" && format != "markdown" {
				return usagef("--format %q: use html or markdown", format)
			}
			var o report.Options
			var err error
			if o.Since, o.Until, err = win.parse(); err != nil {
				return err
			}
			if o.Baseline, err = parseBaseline(baseline); err != nil {
				return err
			}
			// 0 is the default (a bucket fitting the window); the rest as
			// for flowtape analyze.
			if err := (analyze.Params{Since: o.Since, Until: o.Until, Bucket: bucket}).Validate(); err != nil {
				return usageError{err}
			}
			o.Bucket, o.Title = bucket, title
			since, until := withBaseline(o.Since, o.Until, o.Baseline)
			e, closeEngine, err := openRunner(cmd, args, since, until, eng, ch, cache)
			if err != nil {
				return err
			}
			defer closeEngine()
			start := time.Now()
			names := make([]string, len(args))
			for i, a := range args {
				names[i] = tape.DisplayName(a)
			}
			r, err := report.Build(cmd.Context(), e, names, o)
			if err != nil {
				return err
			}
			err = writeOutput(cmd.OutOrStdout(), output, func(w io.Writer) error {
				if format == "html" {
					return report.WriteHTML(w, r)
				}
				return report.WriteMarkdown(w, r)
			})
			if err != nil {
				return err
			}
			if output != "-" {
				incident := "no incident found"
				if r.Incident != nil {
					incident = fmt.Sprintf("incident from %s", r.Incident.Start.UTC().Format(time.RFC3339))
				}
				slog.Default().Info("wrote "+output, "flows", r.Summary.Flows, "incident", incident, "took", time.Since(start).Round(time.Millisecond))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&output, "output", "o", "", "the report to write: .html or .md (- for standard output, with --format)")
	fl.StringVar(&format, "format", "", "html or markdown (default: from the -o file's extension)")
	win.add(fl, "report from", "report until")
	cache.add(fl)
	fl.StringVar(&baseline, "baseline", "", "compare with this window, SINCE..UNTIL (default: the window before the incident found)")
	fl.DurationVar(&bucket, "bucket", 0, "timeline bucket, e.g. 10s or 1m (default: 60 to 150 buckets over the window)")
	fl.StringVar(&title, "title", "", "the report's title (default: Postmortem: and the recordings)")
	eng.add(cmd)
	ch.add(cmd)
	return cmd
}
