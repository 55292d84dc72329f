package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/printer"
)

func newAnalyzeCmd() *cobra.Command {
	var (
		format, since, until string
		p                    analyze.Params
		showSQL              bool
		eng                  engineFlags
	)
	cmd := &cobra.Command{
		Use:   "analyze NAME DIR...",
		Short: "Run a built-in analysis over recordings",
		Long: `Run a built-in analysis over recordings (directories, globs or Parquet files).
Each analysis is an SQL file (analyze/sql/analyses; --sql prints it) over the
views of flowtape query.

  services  one row per service: requests, rps, errors, error_rate (5xx, and
            gRPC calls not answered 200), client_errors, no_response,
            p50/p90/p95/p99/max latency (exact, nearest-rank), outbound
            requests, drops by reason, policy denies, TCP resets, DNS errors,
            health (Kiali's thresholds: 0.1% degraded, 10% failure)

A request is counted once: at the server's proxy, at the client's where no
server proxy saw it (--reporter server|client|both). Rates divide by the
analysed window (--since/--until, else the recording's).`,
		Example: `  flowtape analyze services incident-42
  flowtape analyze services incident-42 -n default --since 2026-11-25T13:00:00Z --format markdown
  flowtape analyze services incident-42 --sql`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := printer.CheckFormat(format); err != nil {
				return usageError{err}
			}
			q, err := analyze.AnalysisSQL(args[0])
			if err != nil {
				return usageError{err}
			}
			if showSQL {
				fmt.Fprint(cmd.OutOrStdout(), q)
				return nil
			}
			if len(args) < 2 {
				return usagef("give the recordings to analyze: flowtape analyze %s DIR...", args[0])
			}
			if p.Since, p.Until, err = parseWindow(since, until); err != nil {
				return err
			}
			switch p.Reporter {
			case "server", "client", "both":
			default:
				return usagef("--reporter %q: use server, client or both", p.Reporter)
			}
			e, err := analyze.Open(cmd.Context(), args[1:], eng.options())
			if err != nil {
				return err
			}
			defer e.Close()
			t, err := e.Run(cmd.Context(), args[0], p)
			if err != nil {
				return err
			}
			return printer.Print(cmd.OutOrStdout(), format, t)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&format, "format", "table", "output format: "+strings.Join(printer.Formats, ", "))
	fl.StringVar(&since, "since", "", "analyse from this time (RFC 3339 or relative, e.g. 5m)")
	fl.StringVar(&until, "until", "", "analyse until this time (RFC 3339 or relative)")
	fl.StringVarP(&p.Namespace, "namespace", "n", "", "only services of this namespace")
	fl.StringVar(&p.Reporter, "reporter", "server", "whose view of a request counts: server (client where no server saw it), client, or both")
	fl.BoolVar(&showSQL, "sql", false, "print the analysis's SQL and exit")
	eng.add(cmd)
	return cmd
}
