//go:build !recorder

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/flowtape/flowtape/importer"
	"github.com/flowtape/flowtape/internal/buildinfo"
	"github.com/flowtape/flowtape/tape"
)

func newImportCmd() *cobra.Command {
	var (
		output  string
		strict  bool
		derived bool
		spool   spoolFlags
	)
	cmd := &cobra.Command{
		Use:   "import FILE... -o DIR|URL",
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
once complete; DIR may be new or an existing recording to add to.

-o may be a bucket URL: the import is written to a local spool (--spool) and
uploaded; the command ends once the bucket confirmed every file.

` + bucketHelp,
		Example: `  hubble observe --last 10000 -o jsonpb > flows.json
  flowtape import flows.json -o incident-42

  # the exporter's rotated files, and a sysdump
  flowtape import /var/run/cilium/hubble/events.log* -o node-a
  flowtape import cilium-sysdump-*/hubble-flows-*.json -o sysdump

  # straight from hubble
  hubble observe --since 1h -o jsonpb | flowtape import - -o last-hour

  # into object storage
  flowtape import flows.json -o s3://acme-flows/incidents/42`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if output == "" {
				return usagef("-o DIR is required: the recording directory to write")
			}
			dir := output
			if tape.IsBucketURL(output) {
				dir = spool.dir(output)
				up, err := startUpload(cmd.Context(), output, dir, nil, slog.Default())
				if err != nil {
					return fmt.Errorf("-o: %w", err)
				}
				defer func() {
					if err == nil {
						err = up.closeCtx(cmd.Context(), cmd.ErrOrStderr())
					} else {
						up.close(cmd.ErrOrStderr(), 0) //nolint:errcheck // the import failed: say that
					}
				}()
			}
			status := newStatusLine(cmd.ErrOrStderr(), "importing")
			res, err := importer.Import(cmd.Context(), importer.Options{
				Inputs: args, Stdin: cmd.InOrStdin(), Strict: strict, Log: status.logger(logLevel(cmd)),
				Sink: tape.SinkOptions{Dir: dir, Writer: buildinfo.Writer(), NoDerived: !derived},
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
			if errors.Is(err, tape.ErrPartial) {
				return fmt.Errorf("import into %s: %w; see its manifest.json", output, err)
			}
			if err != nil {
				return fmt.Errorf("import into %s: %w; nothing was added to it", output, err)
			}
			printImportSummary(cmd, output, res)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "recording directory to write (created if needed; an existing recording is added to), or bucket URL (s3://, gs://, azblob://, file://)")
	spool.add(cmd.Flags(), false)
	cmd.Flags().BoolVar(&strict, "strict", false, "stop at the first bad line instead of skipping it")
	cmd.Flags().BoolVar(&derived, "derived", true, "write the derived tables the analyses read with the flows (else run flowtape reindex before analysing)")
	return cmd
}

func printImportSummary(cmd *cobra.Command, output string, res importer.Result) {
	s := res.Session
	var bytes, bad, lines, events int64
	for _, f := range res.Source.Files {
		bytes += f.Bytes
		bad += f.BadLines
		lines += f.Lines
		events += f.Events
	}
	elapsed := s.End.Sub(s.Start)
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "imported %d flows and %d events from %d lines of %d file(s) (%s) into %s in %s (%.0f lines/s)\n",
		s.Totals.Flows, events, lines, len(res.Source.Files), humanBytes(bytes), output, elapsed.Round(time.Millisecond),
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
