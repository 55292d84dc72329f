package main

import (
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/flowtape/flowtape/importer"
	"github.com/flowtape/flowtape/internal/hubblecli"
	"github.com/flowtape/flowtape/tape"
)

func newExportCmd() *cobra.Command {
	var (
		output, format string
		win            windowFlags
		cache          cacheFlags
	)
	filters := hubblecli.NewFilterFlags()
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
			var w tape.Window
			if w.Since, w.Until, err = win.parse(); err != nil {
				return err
			}
			paths, done, err := cache.localPaths(cmd, args, w.Since, w.Until)
			if err != nil {
				return err
			}
			defer done()
			var st importer.ExportStats
			err = writeOutput(cmd.OutOrStdout(), output, func(out io.Writer) error {
				var err error
				st, err = importer.Export(cmd.Context(), importer.ExportOptions{Paths: paths, Allow: allow, Deny: deny, Window: w}, out)
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
	win.add(fl, "only what happened since", "only what happened until")
	cache.add(fl)
	fl.AddFlagSet(filters.FlagSet())
	return cmd
}
