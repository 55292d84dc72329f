// Package simrecord records a simulated cluster through the real path: the
// simulator behind a loopback Observer API, the real recorder dialing it
// as it dials hubble-relay. flowtape demo and the tests that hold the
// analyses against the simulator's truth use it.
package simrecord

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/flowtape/flowtape/internal/buildinfo"
	"github.com/flowtape/flowtape/internal/hubblecli"
	"github.com/flowtape/flowtape/record"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// stallTimeout is how long after the simulation ended a recorder may take
// to receive the rest: it has everything within moments, and waiting
// longer would wait forever for flows that went missing.
const stallTimeout = 15 * time.Second

// Run runs the simulator cfg describes and records it into dir with the
// real recorder, until every flow the simulation produced is recorded. It
// returns the simulator's truth.
func Run(ctx context.Context, cfg sim.Config, dir string, progress func(record.Progress), log *slog.Logger) (sim.Truth, error) {
	cfg.Truth = true // the stop condition counts its flows
	c, err := sim.New(cfg)
	if err != nil {
		return sim.Truth{}, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return sim.Truth{}, fmt.Errorf("listen for the simulator: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go c.Run(ctx)        //nolint:errcheck // ends with ctx
	go c.Serve(ctx, lis) //nolint:errcheck // ends with ctx

	fl := hubblecli.ConnFlags()
	if err := fl.Parse([]string{"--server", lis.Addr().String()}); err != nil {
		return sim.Truth{}, err
	}
	d, err := hubblecli.NewDialer(fl)
	if err != nil {
		return sim.Truth{}, err
	}
	recCtx, stop := context.WithCancel(ctx)
	defer stop()
	var recorded atomic.Uint64
	stalled := make(chan uint64, 1)
	go func() {
		last, since := uint64(0), time.Now()
		for recCtx.Err() == nil {
			select {
			case <-recCtx.Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
			if n := recorded.Load(); n != last {
				last, since = n, time.Now()
			}
			if c.Finished() && time.Since(since) > stallTimeout {
				stalled <- last
				stop()
				return
			}
		}
	}()
	_, err = record.Run(recCtx, record.Options{Dialer: d, Since: cfg.Start.Add(-time.Hour),
		Sink: tape.SinkOptions{Dir: dir, Writer: buildinfo.Writer()}, Log: log,
		Progress: func(p record.Progress) {
			recorded.Store(p.Flows)
			if progress != nil {
				progress(p)
			}
			if c.Finished() && p.Flows >= c.Truth().Flows {
				stop()
			}
		}})
	if err != nil {
		return sim.Truth{}, fmt.Errorf("record the simulation: %w", err)
	}
	if ctx.Err() != nil {
		return sim.Truth{}, ctx.Err()
	}
	select {
	case n := <-stalled:
		return sim.Truth{}, fmt.Errorf("record the simulation: %d of its %d flows arrived, then nothing for %d s", n, c.Truth().Flows, int(stallTimeout.Seconds()))
	default:
	}
	return c.Truth(), nil
}
