//go:build !recorder

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/internal/simrecord"
	"github.com/flowtape/flowtape/printer"
	"github.com/flowtape/flowtape/sim"
)

func newDemoCmd() *cobra.Command {
	var (
		output   string
		start    string
		duration time.Duration
		rate     float64
		seed     uint64
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Record a simulated incident and analyze it: flowtape end to end in seconds",
		Long: `Start the simulated cluster (Online Boutique on 3 nodes) in this process, record
its incident scenario through the real Hubble Observer gRPC API into Parquet, as
flowtape record does against hubble-relay, then print the services, the
dependency graph and the coverage of the recording.

The simulated clock runs as fast as the recorder takes the flows: minutes of
traffic take seconds. The incident starts 2 minutes in: paymentservice answers
503 to 30% of Charge calls, cartservice gets 10x slower, and a deny policy drops
recommendationservice -> productcatalogservice. The recording stays in -o (a new
temporary directory by default) for flowtape query and analyze.`,
		Example: `  flowtape demo
  flowtape demo -o incident-demo && flowtape analyze timeline incident-demo`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if duration <= sim.Scenarios["incident"].IncidentAt {
				return usagef("--duration %s: the incident starts at %s; use more", duration, sim.Scenarios["incident"].IncidentAt)
			}
			if rate <= 0 {
				return usagef("--rate %v: must be positive", rate)
			}
			t0 := time.Now().Add(-duration).Truncate(time.Minute)
			if start != "" {
				var err error
				if t0, err = time.Parse(time.RFC3339Nano, start); err != nil {
					return usagef("invalid --start %q: use RFC 3339, e.g. 2026-11-25T13:00:00Z", start)
				}
			}
			if output == "" {
				dir, err := os.MkdirTemp("", "flowtape-demo-")
				if err != nil {
					return fmt.Errorf("create the demo's recording directory: %w", err)
				}
				output = dir
			}
			return runDemo(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), output,
				sim.Config{Scenario: sim.Scenarios["incident"], Seed: seed, Rate: rate, Duration: duration,
					Start: t0, Truth: true})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&output, "output", "o", "", "recording directory (default: a new temporary directory)")
	fl.DurationVar(&duration, "duration", defaults.DemoDuration, "simulated time to record")
	fl.Float64Var(&rate, "rate", defaults.DemoRate, "flows per simulated second")
	fl.Uint64Var(&seed, "seed", defaults.SimSeed, "random seed; the same seed and --start give the same flows")
	fl.StringVar(&start, "start", "", "simulated start time, RFC 3339 (default: --duration before now)")
	return cmd
}

func runDemo(ctx context.Context, stdout, stderr io.Writer, dir string, cfg sim.Config) error {
	fmt.Fprintf(stderr, "Simulating %s of Online Boutique (incident at +%s) and recording it through the Observer API to %s\n",
		cfg.Duration, cfg.Scenario.IncidentAt, dir)
	status := newStatusPrinter(stderr)
	start := time.Now()
	// The simulator ends its streams when it is done, and the recorder
	// would warn about that: only errors matter here.
	log := status.line.logger(slog.LevelError)
	t, err := simrecord.Run(ctx, cfg, dir, status.progress, log)
	status.done()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "Recorded %d flows in %s.\n", t.Flows, time.Since(start).Round(100*time.Millisecond))

	e, err := analyze.Open(ctx, []string{dir}, analyze.Options{})
	if err != nil {
		return err
	}
	defer e.Close()
	// The tables of analyze's default output: the main columns, which
	// fit a terminal (-o wide shows them all).
	for _, a := range []struct{ name, title string }{
		{"services", "Services (flowtape analyze services; every column with -o wide)"},
		{"graph", "Dependency graph (flowtape analyze graph; --format dot|mermaid draws it)"},
		{"coverage", "Coverage (flowtape analyze coverage)"},
	} {
		res, err := e.Run(ctx, a.name, analyze.Params{})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\n== %s\n", a.title)
		if err := printer.Print(stdout, "table", analyze.TableView(a.name, res)); err != nil {
			return err
		}
	}
	// What began talking to the outside with the incident: the question
	// after "what failed".
	if t.IncidentStart != nil {
		res, err := e.Run(ctx, "egress", analyze.Params{NewSince: *t.IncidentStart})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\n== Traffic leaving the cluster that began with the incident (flowtape analyze egress --new-since %s)\n",
			t.IncidentStart.Format(time.RFC3339))
		if err := printer.Print(stdout, "table", analyze.TableView("egress", res)); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "\nThe recording is in %s. Next:\n  flowtape report %s -o incident-demo.html\n  flowtape analyze timeline %s --bucket 10s\n  flowtape analyze errors %s\n  flowtape analyze graph %s --format mermaid\n  flowtape analyze egress %s\n  flowtape query %s \"SELECT server, status, count(*) FROM requests GROUP BY ALL ORDER BY 3 DESC\"\n",
		dir, dir, dir, dir, dir, dir, dir)
	return nil
}
