//go:build !recorder

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/printer"
	"github.com/flowtape/flowtape/sim"
)

type simFlags struct {
	listen       string
	agentsListen string
	scenario     string
	rate         float64
	seed         uint64
	speed        string
	duration     time.Duration
	history      time.Duration
	start        string
	nodes        int
	ringCapacity int
	truth        string
	incidentAt   time.Duration
	printTruth   bool
	format       string
}

func newSimCmd() *cobra.Command {
	var f simFlags
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run a simulated Cilium cluster (Online Boutique) that serves the Hubble Observer API",
		Long: `Run a simulated Cilium cluster with Google's microservices demo (Online Boutique)
and serve its flows over the real Hubble Observer gRPC API, as hubble-relay does,
and optionally as one Cilium agent per node with the Peer service (for a real
hubble-relay to aggregate). Use it to try flowtape, hubble and other Observer API
clients without a cluster.

The incident scenario starts 2 minutes into the simulation: paymentservice answers
503 to 30% of Charge calls, cartservice gets 10x slower, a deny policy drops
recommendationservice -> productcatalogservice, and currencyservice begins calling
a bare address outside the cluster (203.0.113.66:4444). Egress all along:
paymentservice to api.stripe.com:443, emailservice to smtp.sendgrid.net:587.

With --speed max the simulated clock runs as fast as the slowest following reader
takes the flows, so an hour of traffic takes seconds and nothing is lost; without
a following reader, each node's ring buffer fills once and then waits. With
--duration, streams that follow end once the simulation is over.`,
		Example: `  # a cluster in real time, on hubble's default port
  flowtape sim
  hubble observe --server localhost:4245 --last 20

  # an incident, 10x faster than real time, with the truth for checking analyses
  flowtape sim --scenario incident --speed 10 --truth truth.json

  # agents on ports 4244-4246 for a real hubble-relay
  flowtape sim --agents-listen localhost:4244
  hubble-relay serve --peer-service localhost:4244 --disable-server-tls --disable-client-tls`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runSim(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", defaults.ListenAddress, "address of the cluster-wide Observer API (as hubble-relay); empty to disable")
	fl.StringVar(&f.agentsListen, "agents-listen", "", "serve node i as a Cilium agent (Observer + Peer) on HOST:PORT+i; port 0 picks free ports")
	fl.StringVar(&f.scenario, "scenario", defaults.SimScenario, "what happens: steady or incident")
	fl.Float64Var(&f.rate, "rate", defaults.SimRate, "flows per simulated second")
	fl.Uint64Var(&f.seed, "seed", defaults.SimSeed, "random seed; the same seed gives the same flows")
	fl.StringVar(&f.speed, "speed", defaults.Speed, "simulated seconds per wall-clock second, or max (as fast as readers take it)")
	fl.DurationVar(&f.duration, "duration", 0, "end the simulation after this much simulated time (0: run until interrupted)")
	fl.DurationVar(&f.history, "history", defaults.SimHistory, "with a numeric --speed, start this long before now so the ring buffers are full at once")
	fl.StringVar(&f.start, "start", "", "simulated start time, RFC 3339 (default: now minus --history)")
	fl.IntVar(&f.nodes, "nodes", defaults.SimNodes, "number of nodes")
	fl.IntVar(&f.ringCapacity, "ring-capacity", defaults.SimRingCapacity, "flows each node's Hubble ring buffer keeps")
	fl.DurationVar(&f.incidentAt, "incident-at", sim.Scenarios["incident"].IncidentAt, "with --scenario incident, when the incident begins after the start")
	fl.BoolVar(&f.printTruth, "print-truth", false, "with --duration: print the truth per service when the simulation ends, and exit")
	fl.StringVarP(&f.format, "format", "f", "table", "format of --print-truth: table, json, csv, markdown")
	fl.StringVar(&f.truth, "truth", "", "write what the scenario produced (per service, edge and minute) as JSON to this file when the simulation ends")
	return cmd
}

func runSim(cmd *cobra.Command, f simFlags) error {
	scen, err := sim.ScenarioByName(f.scenario)
	if err != nil {
		return usageError{err}
	}
	if f.incidentAt < 0 {
		return usagef("invalid --incident-at %v: must not be negative", f.incidentAt)
	}
	scen.IncidentAt = f.incidentAt
	speed, err := parseSpeed(f.speed)
	if err != nil {
		return err
	}
	if f.rate <= 0 {
		return usagef("invalid --rate %v: must be positive", f.rate)
	}
	if f.printTruth && f.duration == 0 {
		return usagef("--print-truth needs --duration: the truth is printed when the simulation ends")
	}
	if err := printer.CheckFormat(f.format); err != nil {
		return usageError{err}
	}
	if f.listen == "" && f.agentsListen == "" && !f.printTruth {
		return usagef("nothing to serve: set --listen or --agents-listen")
	}
	start := time.Now()
	if speed > 0 {
		start = start.Add(-f.history)
	}
	if f.start != "" {
		if start, err = time.Parse(time.RFC3339Nano, f.start); err != nil {
			return usagef("invalid --start %q: use RFC 3339, e.g. 2026-11-25T13:00:00Z", f.start)
		}
	}
	c, err := sim.New(sim.Config{Scenario: scen, Seed: f.seed, Rate: f.rate, Speed: speed, Start: start,
		Duration: f.duration, Nodes: f.nodes, RingCapacity: f.ringCapacity, Truth: f.truth != "" || f.printTruth,
		NoReaders: f.listen == "" && f.agentsListen == ""})
	if err != nil {
		return usageError{err}
	}
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	out := cmd.OutOrStdout()
	if f.listen != "" {
		lis, err := net.Listen("tcp", f.listen)
		if err != nil {
			return fmt.Errorf("--listen %s: %w", f.listen, err)
		}
		fmt.Fprintf(out, "flowtape sim: Observer API (relay) on %s: %d nodes, scenario %s, %g flows/s, speed %s\n",
			lis.Addr(), f.nodes, scen.Name, f.rate, f.speed)
		fmt.Fprintf(out, "  try: hubble observe --server %s --last 20\n", lis.Addr())
		g.Go(func() error { return c.Serve(ctx, lis) })
	}
	if f.agentsListen != "" {
		lis, err := sim.ListenAgents(f.agentsListen, f.nodes)
		if err != nil {
			return usagef("--agents-listen: %v", err)
		}
		for i, l := range lis {
			fmt.Fprintf(out, "flowtape sim: agent %s on %s\n", c.Topology().Nodes[i].FullName(), l.Addr())
		}
		g.Go(func() error { return c.ServeAgents(ctx, lis) })
	}
	g.Go(func() error {
		if err := c.Run(ctx); err != nil {
			return err
		}
		if f.truth != "" {
			if err := c.Truth().WriteFile(f.truth); err != nil {
				return fmt.Errorf("--truth %s: %w", f.truth, err)
			}
			slog.Info("wrote truth", "file", f.truth)
		}
		if f.printTruth && ctx.Err() == nil {
			defer cancel()
			return printer.Print(out, f.format, truthTable(c.Truth()))
		}
		if ctx.Err() == nil {
			slog.Info("simulation finished; still serving until interrupted", "duration", f.duration)
		}
		return nil
	})
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// truthTable is the per-service truth, as --print-truth shows it.
func truthTable(tr sim.Truth) printer.Table {
	t := printer.Table{Columns: []string{"service", "namespace", "requests", "errors", "error_rate", "no_response",
		"p50_ms", "p95_ms", "p99_ms", "drops", "connections"}}
	for _, s := range tr.Services {
		var drops uint64
		for _, n := range s.Drops {
			drops += n
		}
		rate := 0.0
		if s.Requests > 0 {
			rate = float64(s.Errors) / float64(s.Requests)
		}
		t.Rows = append(t.Rows, []any{s.Service, s.Namespace, s.Requests, s.Errors, rate, s.NoResponse,
			s.P50Ms, s.P95Ms, s.P99Ms, drops, s.Connections})
	}
	return t
}
