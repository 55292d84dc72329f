package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	hubtime "github.com/cilium/cilium/hubble/pkg/time"
	"github.com/spf13/cobra"

	"github.com/flowtape/flowtape/importer"
	"github.com/flowtape/flowtape/internal/buildinfo"
	"github.com/flowtape/flowtape/record"
	"github.com/flowtape/flowtape/schema"
)

func newImportCmd() *cobra.Command {
	var (
		output string
		strict bool
	)
	cmd := &cobra.Command{
		Use:   "import FILE... -o DIR",
		Short: "Turn Hubble JSON (hubble observe, exporter, sysdump files) into a recording",
		Long: `Import Hubble flows that are already on disk into a recording directory, the same
as flowtape record writes, for analysis and replay:

  - hubble observe -o jsonpb output, and the hubble-flows-*.json files of a
    cilium sysdump (one GetFlowsResponse per line)
  - Cilium's flow exporter files (hubble-export-file-path; one ExportEvent per
    line, with lost events and node status), rotated ones included
  - hubble observe -o json output (one bare flow per line)

Files may be plain, gzip'd or zstd-compressed (detected from their content);
"-" reads standard input. Lines of any length are read, and fields this
flowtape does not know are kept. A bad line is reported with its file and line
number and skipped (--strict stops instead). The import appears in DIR only
once complete; DIR may be new or an existing recording to add to.`,
		Example: `  hubble observe --last 10000 -o jsonpb > flows.json
  flowtape import flows.json -o incident-42

  # the exporter's rotated files, and a sysdump
  flowtape import /var/run/cilium/hubble/events.log* -o node-a
  flowtape import cilium-sysdump-*/hubble-flows-*.json -o sysdump

  # straight from hubble
  hubble observe --since 1h -o jsonpb | flowtape import - -o last-hour`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" {
				return usagef("-o DIR is required: the recording directory to write")
			}
			status := newStatusLine(cmd.ErrOrStderr(), "importing")
			res, err := importer.Import(cmd.Context(), importer.Options{
				Inputs: args, Stdin: cmd.InOrStdin(), Strict: strict, Log: status.logger(logLevel(cmd)),
				Sink: record.SinkOptions{Dir: output, Writer: buildinfo.Writer()},
				Progress: func(p importer.Progress) {
					rate := float64(p.Lines) / max(p.Elapsed.Seconds(), 1e-3)
					line := fmt.Sprintf("%s  %s read", p.Elapsed.Round(time.Second), humanBytes(p.Read))
					if p.Size > 0 {
						line = fmt.Sprintf("%s  %s of %s (%.0f%%)", p.Elapsed.Round(time.Second), humanBytes(p.Read), humanBytes(p.Size), 100*float64(p.Read)/float64(p.Size))
					}
					line += fmt.Sprintf("  lines %d  %.0f/s  bad %d", p.Lines, rate, p.BadLines)
					if p.Remaining > 0 {
						line += fmt.Sprintf("  ETA %s", p.Remaining.Round(time.Second))
					}
					status.show(line, "read", p.Read, "size", p.Size, "lines", p.Lines, "lines_per_s", int(rate), "bad_lines", p.BadLines, "eta", p.Remaining.Round(time.Second))
				},
			})
			status.done()
			if errors.Is(err, record.ErrPartial) {
				return fmt.Errorf("import into %s: %w; see its manifest.json", output, err)
			}
			if err != nil {
				return fmt.Errorf("import into %s: %w; nothing was added to it", output, err)
			}
			printImportSummary(cmd, output, res)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "recording directory to write (created if needed; an existing recording is added to)")
	cmd.Flags().BoolVar(&strict, "strict", false, "stop at the first bad line instead of skipping it")
	return cmd
}

func printImportSummary(cmd *cobra.Command, output string, res importer.Result) {
	s := res.Session
	var bytes, bad, lines, events int64
	for _, f := range s.Source.Files {
		bytes += f.Bytes
		bad += f.BadLines
		lines += f.Lines
		events += f.Events
	}
	elapsed := s.End.Sub(s.Start)
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "imported %d flows and %d events from %d lines of %d file(s) (%s) into %s in %s (%.0f lines/s)\n",
		s.Totals.Flows, events, lines, len(s.Source.Files), humanBytes(bytes), output, elapsed.Round(time.Millisecond),
		float64(lines)/max(elapsed.Seconds(), 1e-3))
	if s.Totals.FirstFlow != nil {
		fmt.Fprintf(w, "flows from %s to %s\n", s.Totals.FirstFlow.Format(time.RFC3339Nano), s.Totals.LastFlow.Format(time.RFC3339Nano))
	}
	var lost uint64
	for _, n := range s.Totals.LostEvents {
		lost += n
	}
	if lost > 0 {
		fmt.Fprintf(w, "the input reports %d lost events (%v): the recording is incomplete there\n", lost, s.Totals.LostEvents)
	}
	if bad > 0 {
		fmt.Fprintf(w, "skipped %d bad lines (see the warnings above)\n", bad)
	}
	if res.Unknown > 0 {
		fmt.Fprintf(w, "kept %d JSON fields this flowtape does not know (a newer Cilium); export writes them back\n", res.Unknown)
	}
	if res.Mismatches > 0 {
		fmt.Fprintf(w, "%d lines had a response time or node different from their flow's; the flow's were kept\n", res.Mismatches)
	}
}

// parseWindow parses --since and --until as hubble observe does (RFC 3339
// or relative to now); empty is unset.
func parseWindow(since, until string) (from, to time.Time, err error) {
	if since != "" {
		if from, err = hubtime.FromString(since); err != nil {
			return from, to, usagef("invalid --since %q: %v", since, err)
		}
	}
	if until != "" {
		if to, err = hubtime.FromString(until); err != nil {
			return from, to, usagef("invalid --until %q: %v", until, err)
		}
	}
	return from, to, nil
}

func newExportCmd() *cobra.Command {
	var (
		output, format, since, until string
	)
	filters := record.NewFilterFlags()
	cmd := &cobra.Command{
		Use:   "export DIR... [-o FILE|-] [filters]",
		Short: "Write recordings back as Hubble jsonpb, for hubble observe --input-file",
		Long: `Export the flows and events of recordings (directories, globs or Parquet files) as
Hubble jsonpb: one GetFlowsResponse per line, in time order, as
hubble observe -o jsonpb prints them. hubble observe --input-file reads the
result. The filter flags are hubble observe's; lost events and node status
changes are kept whatever the filters, as a Hubble server sends them.`,
		Example: `  flowtape export incident-42 > flows.json
  hubble observe --input-file flows.json --verdict DROPPED

  # one namespace, one time window, compressed
  flowtape export incident-42 -n default --since 2026-11-25T13:00:00Z --until 2026-11-25T13:05:00Z | gzip > default.json.gz`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "jsonpb" {
				return usagef("--format %q: only jsonpb is supported", format)
			}
			allow, deny, err := filters.Filters()
			if err != nil {
				return usageError{err}
			}
			var w schema.Window
			if w.Since, w.Until, err = parseWindow(since, until); err != nil {
				return err
			}
			var st importer.ExportStats
			err = writeOutput(cmd.OutOrStdout(), output, func(out io.Writer) error {
				var err error
				st, err = importer.Export(cmd.Context(), importer.ExportOptions{Paths: args, Allow: allow, Deny: deny, Window: w}, out)
				return err
			})
			if err != nil {
				return err
			}
			slog.Default().Info("exported", "flows", st.Flows, "events", st.Events)
			if st.Skipped > 0 {
				slog.Default().Warn("left out events that Hubble jsonpb cannot hold (agent and debug events from exporter files, or newer event types)", "count", st.Skipped)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&output, "output", "o", "-", "file to write, readable by you only like the recording (- for standard output)")
	fl.StringVar(&format, "format", "jsonpb", "output format: jsonpb (hubble observe -o jsonpb)")
	fl.StringVar(&since, "since", "", "only what happened since this time (RFC 3339 or relative, e.g. 5m)")
	fl.StringVar(&until, "until", "", "only what happened until this time (RFC 3339 or relative)")
	fl.AddFlagSet(filters.FlagSet())
	return cmd
}
