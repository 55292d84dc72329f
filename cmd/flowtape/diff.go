//go:build !recorder

package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/printer"
	"github.com/flowtape/flowtape/report"
	"github.com/flowtape/flowtape/tape"
)

func newDiffCmd() *cobra.Command {
	var (
		format, baseline string
		baseRecs         []string
		win              windowFlags
		cache            cacheFlags
		bucket           time.Duration
		top              int
		eng              engineFlags
		ch               clickhouseFlags
	)
	cmd := &cobra.Command{
		Use:   "diff DIR...",
		Short: "What changed between a normal window and the incident",
		Long: `Compare the incident with a baseline, as the report's "What changed" does:
services and edges ranked by how much their error rate, p99 latency,
requests/s, failed connections and dropped flows moved; edges that appeared
or vanished; drop reasons and failed DNS answers (query and rcode) the
baseline did not have.

The baseline is, in this order:
  --baseline SINCE..UNTIL      a window of the same recording (or, with
                               --baseline-recording, of that one)
  --baseline-recording DIR     another recording, all of it: last week's
                               normal hour, or a recording before a rollout
  neither                      the part of the window before the incident
                               found in the timeline (as flowtape report)

The incident's side is --since..--until (default: the recording, or from
the incident's start when the baseline is found in the timeline), less a
--baseline window of the same recording where they overlap. A window
without flows is an error. Rates are per second of each window, so windows
of different lengths compare. A share needs 20 requests, connections or
flows in both windows to count.

The table shows change, name, what and score; -o wide, json, csv and
markdown add the numbers before and after.`,
		Example: `  flowtape diff incident-42
  flowtape diff incident-42 --baseline 2026-11-25T12:00:00Z..2026-11-25T12:30:00Z
  flowtape diff incident-42 --baseline-recording last-tuesday -o json
  flowtape diff s3://flows/prod --since 2026-11-25T13:00:00Z --until 2026-11-25T13:30:00Z --baseline 2026-11-25T12:00:00Z..2026-11-25T12:30:00Z`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := printer.CheckFormat(format, slices.Insert(slices.Clone(printer.Formats), 1, "wide")...); err != nil {
				return usageError{err}
			}
			var o report.DiffOptions
			var err error
			if o.Since, o.Until, err = win.parse(); err != nil {
				return err
			}
			if !o.Since.IsZero() && !o.Until.IsZero() && !o.Until.After(o.Since) {
				return usagef("--since %s is not before --until %s", win.since, win.until)
			}
			if o.Baseline, err = parseBaseline(baseline); err != nil {
				return err
			}
			if cmd.Flags().Changed("bucket") && bucket <= 0 {
				return usagef("--bucket %s: use a positive length, e.g. 10s or 1m", bucket)
			}
			if top <= 0 {
				return usagef("--top %d: give how many services and edges to rank, e.g. %d", top, defaults.ReportTop)
			}
			o.Bucket, o.Top = bucket, top
			since, until := o.Since, o.Until
			if len(baseRecs) == 0 {
				since, until = withBaseline(since, until, o.Baseline)
			}
			e, closeEngine, err := openRunner(cmd, args, since, until, eng, ch, cache)
			if err != nil {
				return err
			}
			defer closeEngine()
			if len(baseRecs) > 0 {
				var bs, bu time.Time
				if b := o.Baseline; b != nil {
					bs, bu = b.Since, b.Until
				}
				be, closeBase, err := openRunner(cmd, baseRecs, bs, bu, eng, ch, cache)
				if err != nil {
					return fmt.Errorf("--baseline-recording: %w", err)
				}
				defer closeBase()
				o.BaselineEngine = be
				for _, p := range baseRecs {
					o.BaselineFrom = append(o.BaselineFrom, tape.DisplayName(p))
				}
			}
			names := make([]string, len(args))
			for i, a := range args {
				names[i] = tape.DisplayName(a)
			}
			c, err := report.WhatChanged(cmd.Context(), e, names, o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), c.Compared())
			t := c.Table()
			if len(t.Rows) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "Nothing changed noticeably.")
			}
			switch format {
			case "table":
				t = t.Select(report.DiffColumns...)
			case "wide":
				format = "table"
			}
			return printer.Print(cmd.OutOrStdout(), format, t)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&format, "format", "o", "table", "output format: table (change, name, what, score), wide (and the numbers before and after), "+
		strings.Join(printer.Formats[1:], ", "))
	fl.StringVar(&baseline, "baseline", "", "compare with this window, SINCE..UNTIL (default: the window before the incident found in the timeline)")
	fl.StringSliceVar(&baseRecs, "baseline-recording", nil, "compare with this recording (directory, glob or bucket URL; repeat for several): all of it, or its --baseline window")
	win.add(fl, "the incident's side from", "the incident's side until")
	fl.DurationVar(&bucket, "bucket", 0, "the timeline's bucket the incident is looked for in (default: 60 to 150 buckets over the window)")
	fl.IntVar(&top, "top", defaults.ReportTop, "how many services and how many edges to rank")
	cache.add(fl)
	eng.add(cmd)
	ch.add(cmd)
	return cmd
}
