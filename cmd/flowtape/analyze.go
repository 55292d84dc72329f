//go:build !recorder

package main

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/printer"
	"github.com/flowtape/flowtape/tape"
)

func newAnalyzeCmd() *cobra.Command {
	var (
		format   string
		win      windowFlags
		cache    cacheFlags
		p        analyze.Params
		showSQL  bool
		newSince string
		eng      engineFlags
		ch       clickhouseFlags
	)
	cmd := &cobra.Command{
		Use:   "analyze NAME DIR...",
		Short: "Run a built-in analysis over recordings",
		Long: `Run a built-in analysis over recordings (directories, globs or Parquet files).
Each analysis is an SQL file (analyze/sql/analyses; --sql prints it) over the
views of flowtape query. JSON output uses the column names below.

The table (the default output) shows the main columns of each analysis, with
endpoints as namespace/name, so that a row fits a terminal, as kubectl get
does; -o wide shows every column, as json, csv and markdown do.

  services  one row per service: requests, rps, errors, error_rate (5xx, and
            gRPC calls not answered 200), client_errors, no_response,
            p50/p90/p95/p99/max latency (exact, nearest-rank), outbound
            requests, connections and connection failures, drops by reason,
            policy denies, TCP resets, DNS errors, health (Kiali's thresholds:
            0.1% degraded, 10% failure). visibility says whether an L7 proxy
            saw the service (L7) or only L3/L4 flows did (L4: GKE Dataplane V2)
  graph     who calls whom (--level workload|service|pod): per edge requests,
            rps, errors, error_rate, p50/p95/p99, share of the caller's
            traffic, flows, connections, drops, verdicts, protocols, ports;
            --format dot|mermaid draws it
  errors    failing edges and endpoints (method and path, or gRPC method) with
            their status codes; TCP connection failures where no L7 proxy was;
            --by edge: one row per edge, protocol and port
  drops     dropped packets by reason, edge and denying policy
  dns       DNS answers by client and query, failures first, with rcodes
  slo       per service (--level edge: per edge) and SLI: availability (requests
            not failed; connections where no L7 proxy was), latency with
            --latency; events, good_percent against --objective (99.9), the
            error budget the window burned, and when the SRE workbook's
            burn-rate alerts (1h/5m at 14.4x, 6h/30m at 6x) would have paged
  egress    traffic leaving the cluster (world, CIDR/FQDN or no identity; an
            address no flow places in a pod or on a node):
            per client workload, destination (the DNS name Cilium or a DNS
            answer in the recording gave the address, else the address),
            port, protocol and verdict: flows, connections, first and last
            seen. Hubble flows have no byte counts. --new-since T: only
            destinations no flow before T went to
  timeline  per --bucket: flows, requests, errors, error rate, p99, no
            response, drops, policy denies, connection failures, lost events
  coverage  did we see everything: window, flows per node, events lost by
            source and time, stream unavailability

A request is counted once: at the server's proxy, at the client's where no
server proxy saw it (--reporter server|client|both). Rates divide by the
analysed window (--since/--until, else the recording's). Over windows longer
than an hour, services, graph, timeline, errors (--by edge) and slo read the
per-minute summaries written with the flows, and say so (--summaries).`,
		Example: `  flowtape analyze services incident-42
  flowtape analyze services incident-42 -o wide
  flowtape analyze services incident-42 -n default --since 2026-11-25T13:00:00Z --format markdown
  flowtape analyze graph incident-42 --format dot | dot -Tsvg > graph.svg
  flowtape analyze timeline incident-42 --bucket 10s
  flowtape analyze errors prod-recorder --since 24h --by edge
  flowtape analyze slo incident-42 --objective 99.9 --latency 300ms
  flowtape analyze egress incident-42 --new-since 2026-11-25T13:02:00Z
  flowtape analyze services incident-42 --sql
  flowtape analyze services incident-42 --engine chdb
  flowtape analyze graph s3://flows/prod --engine clickhouse --clickhouse clickhouse://default:@ch:9000/default`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			onCH, err := ch.clickhouse()
			if err != nil {
				return err
			}
			q, err := analyze.AnalysisSQL(args[0])
			if err == nil && onCH {
				q, err = analyze.ClickHouseAnalysisSQL(args[0])
			}
			if err != nil {
				return usageError{err}
			}
			formats := printer.Formats
			if args[0] == "graph" {
				formats = printer.GraphFormats
			}
			if err := printer.CheckFormat(format, slices.Insert(slices.Clone(formats), 1, "wide")...); err != nil {
				return usageError{err}
			}
			if showSQL && (!onCH || len(args) < 2) {
				fmt.Fprint(cmd.OutOrStdout(), q)
				return nil
			}
			if len(args) < 2 {
				return usagef("give the recordings to analyze: flowtape analyze %s DIR...", args[0])
			}
			var given []string
			cmd.Flags().Visit(func(f *pflag.Flag) { given = append(given, f.Name) })
			if err := analyze.CheckFlags(args[0], given); err != nil {
				return usageError{err}
			}
			if p.Since, p.Until, err = win.parse(); err != nil {
				return err
			}
			if p.NewSince, err = parseTime("--new-since", newSince, "2026-11-25T13:02:00Z", "30m"); err != nil {
				return err
			}
			if cmd.Flags().Changed("objective") && p.Objective == 0 {
				return usagef("--objective 0: give a percentage of good events below 100, e.g. 99.9")
			}
			if cmd.Flags().Changed("bucket") && p.Bucket <= 0 {
				return usagef("--bucket %s: use a positive length, e.g. 10s, 1m or 5m", p.Bucket)
			}
			if err := p.ValidateFor(args[0]); err != nil {
				return usageError{err}
			}
			var t printer.Table
			var noter analyze.Noter // the engine that ran it
			if onCH {
				// ClickHouse reads the recording where it lies: a
				// directory (chDB), or the bucket itself.
				e, err := analyze.OpenClickHouse(cmd.Context(), args[1:], p.Since, p.Until, ch.options())
				if err != nil {
					return err
				}
				defer e.Close()
				if showSQL {
					// The whole query, ready for clickhouse client.
					q, err := e.AnalysisQuery(args[0], p)
					if err != nil {
						return err
					}
					fmt.Fprintln(cmd.OutOrStdout(), q)
					return nil
				}
				if t, err = e.Run(cmd.Context(), args[0], p); err != nil {
					return err
				}
				noter = e
			} else {
				e, closeEngine, err := openDuckDB(cmd, args[1:], p.Since, p.Until, eng, cache)
				if err != nil {
					return err
				}
				defer closeEngine()
				if t, err = e.Run(cmd.Context(), args[0], p); err != nil {
					return err
				}
				if e.PathNote != "" {
					fmt.Fprintln(cmd.ErrOrStderr(), "note: "+e.PathNote)
				}
				noter = e
			}
			// The note is help, not the answer: the analysis stands without it.
			note, err := analyze.ResultNote(cmd.Context(), noter, t, p)
			if err != nil {
				slog.Debug("no note on the result", "error", err)
			}
			if note != "" {
				if slices.ContainsFunc(args[1:], tape.IsBucketURL) {
					note += "; from a bucket, only the files of the window's hours were read"
				}
				fmt.Fprintln(cmd.ErrOrStderr(), "note: "+note)
			}
			for _, n := range analyze.Notes(args[0], t) {
				fmt.Fprintln(cmd.ErrOrStderr(), "note: "+n)
			}
			switch format {
			case "table":
				t = analyze.TableView(args[0], t)
			case "wide":
				format = "table"
			}
			if args[0] == "graph" {
				return printer.PrintGraph(cmd.OutOrStdout(), format, t)
			}
			return printer.Print(cmd.OutOrStdout(), format, t)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&format, "format", "o", "table", "output format: table (the main columns; endpoints as namespace/name), wide (every column), "+
		strings.Join(printer.Formats[1:], ", ")+" (every column); for graph also dot, mermaid")
	win.add(fl, "analyse from", "analyse until")
	cache.add(fl)
	fl.StringVarP(&p.Namespace, "namespace", "n", "", "only services (edges, clients) of this namespace")
	fl.StringVar(&p.Level, "level", defaults.Level, "graph: what a node is: workload, service or pod; slo: a row per service, or per edge with edge")
	fl.StringVar(&p.By, "by", "", "errors: one row per endpoint of an edge (path) or per edge, protocol and port (edge); "+
		"default path, edge where the summaries are read (--summaries)")
	fl.DurationVar(&p.Bucket, "bucket", defaults.Bucket, "timeline: bucket length, e.g. 10s, 1m or 5m; slo: how often the burn-rate alerts are evaluated")
	fl.Float64Var(&p.Objective, "objective", defaults.SLOObjective, "slo: the objective, a percentage of good events")
	fl.DurationVar(&p.Latency, "latency", 0, "slo: add a latency SLI, the share of answered requests no slower than this, e.g. 300ms")
	fl.StringVar(&newSince, "new-since", "", "egress: only destinations no flow before this time went to (RFC 3339, or relative to now, e.g. 30m)")
	fl.StringVar(&p.Reporter, "reporter", defaults.Reporter, "whose view of a request counts: server (client where no server saw it), client, or both")
	fl.BoolVar(&showSQL, "sql", false, "print the analysis's SQL and exit")
	fl.StringVar(&p.Summaries, "summaries", analyze.SummariesAuto, fmt.Sprintf("services, graph, timeline, errors, slo: read the per-minute summaries: "+
		"auto (for windows over %s), always or never (every request and connection)", defaults.SummaryWindow))
	eng.add(cmd)
	ch.add(cmd)
	return cmd
}
