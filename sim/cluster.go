package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"

	"github.com/flowtape/flowtape/internal/defaults"
)

// Config configures a simulated cluster. The zero value of each field means
// its default (package defaults: SimRate, SimNodes, SimRingCapacity).
type Config struct {
	Scenario Scenario
	Seed     uint64
	// Rate is the target number of flows per simulated second.
	Rate float64
	// Speed is how many simulated seconds pass per wall-clock second; 0
	// means as fast as the slowest following reader takes the flows (no
	// reader ever loses flows then).
	Speed float64
	// Start is the simulated time of the first flow.
	Start time.Time
	// Duration ends the simulation after this much simulated time; streams
	// that follow end once they have everything. 0 runs forever.
	Duration time.Duration
	// Nodes is the number of nodes; RingCapacity the flows each node's
	// Hubble ring buffer keeps.
	Nodes        int
	RingCapacity int
	// Truth enables the per-request bookkeeping behind Truth().
	Truth bool
	// NoReaders runs the simulation for its truth alone: at speed 0 it
	// does not wait for readers that will never come.
	NoReaders bool
	// AgentTLSServerName, when set, is the TLS server name the Peer
	// service announces for every agent (ServeAgents then serves them with
	// TLS, given as a server option), as Cilium announces
	// <node>.<cluster>.hubble-grpc.cilium.io.
	AgentTLSServerName string
}

// Cluster is a running simulated cluster.
type Cluster struct {
	cfg   Config
	topo  *Topology
	gen   *generator
	truth *truthAcc

	startWall time.Time
	startSim  int64
	endSim    int64 // 0: never

	mu         sync.Mutex
	rings      []*ring
	nodeIndex  map[string]int
	changed    chan struct{} // closed when flows were written or the run ended
	consumed   chan struct{} // closed when a follower advanced
	followers  map[*cursorSet]struct{}
	idleFloor  []uint64
	pending    *item
	done       bool
	agentAddrs []string
}

// New builds a cluster; Run makes it produce flows.
func New(cfg Config) (*Cluster, error) {
	if cfg.Rate == 0 {
		cfg.Rate = defaults.SimRate
	}
	if cfg.Rate < 0 || cfg.Speed < 0 {
		return nil, errors.New("rate and speed must not be negative")
	}
	if cfg.Nodes == 0 {
		cfg.Nodes = defaults.SimNodes
	}
	if cfg.RingCapacity == 0 {
		cfg.RingCapacity = defaults.SimRingCapacity
	}
	if cfg.RingCapacity < 1 || cfg.Nodes < 1 {
		return nil, fmt.Errorf("ring capacity and nodes must be at least 1")
	}
	if cfg.Scenario.Name == "" {
		cfg.Scenario = Scenarios[defaults.SimScenario]
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Now()
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	topo := NewTopology(cfg.Nodes, rng)
	start := cfg.Start.UnixNano()
	c := &Cluster{
		cfg: cfg, topo: topo, gen: newGenerator(topo, cfg.Scenario, start, cfg.Rate, rng),
		startSim: start, nodeIndex: map[string]int{},
		changed: make(chan struct{}), consumed: make(chan struct{}),
		followers: map[*cursorSet]struct{}{}, idleFloor: make([]uint64, cfg.Nodes),
	}
	if cfg.Duration > 0 {
		c.endSim = start + int64(cfg.Duration)
	}
	if cfg.Truth {
		c.truth = newTruthAcc(cfg.Scenario, cfg.Seed, cfg.Rate, start)
	}
	for i, n := range topo.Nodes {
		c.rings = append(c.rings, newRing(cfg.RingCapacity))
		c.nodeIndex[n.FullName()] = i
	}
	return c, nil
}

// Topology is the simulated cluster's layout.
func (c *Cluster) Topology() *Topology { return c.topo }

// Config is the effective configuration, defaults filled in.
func (c *Cluster) Config() Config { return c.cfg }

// Truth returns what the simulation has produced so far (Config.Truth must be set).
func (c *Cluster) Truth() Truth {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.truth == nil {
		return Truth{}
	}
	return c.truth.result()
}

// Finished reports whether the simulation has reached its duration.
func (c *Cluster) Finished() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done
}

// Followers is how many GetFlows streams follow the cluster now.
func (c *Cluster) Followers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.followers)
}

// Run produces flows until ctx ends or the duration is reached.
func (c *Cluster) Run(ctx context.Context) error {
	c.mu.Lock()
	c.startWall = time.Now()
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.done = true
		c.broadcastLocked()
		c.mu.Unlock()
	}()
	for {
		if err := ctx.Err(); err != nil {
			return nil //nolint:nilerr // cancellation is the normal way to stop
		}
		var wait <-chan struct{}
		var sleep time.Duration
		c.mu.Lock()
		limit := int64(1<<63 - 1)
		if c.cfg.Speed > 0 {
			limit = c.startSim + int64(float64(time.Since(c.startWall))*c.cfg.Speed)
		}
		wrote, finished := 0, false
		for wrote < 4096 {
			if c.pending == nil {
				c.pending = c.gen.next()
			}
			p := c.pending
			if c.endSim != 0 && p.at >= c.endSim {
				finished = true
				break
			}
			if p.at > limit {
				sleep = time.Duration(float64(p.at-limit)/c.cfg.Speed) + time.Millisecond
				sleep = min(sleep, 20*time.Millisecond)
				break
			}
			n, ok := c.nodeIndex[p.flow.GetNodeName()]
			if !ok {
				c.pending = nil
				continue
			}
			if c.cfg.Speed == 0 && !c.cfg.NoReaders && !c.roomLocked(n) {
				wait = c.consumed
				break
			}
			c.rings[n].write(entry{at: p.at, flow: p.flow})
			if c.truth != nil {
				c.truth.observe(p.at, p.flow, p.rec)
			}
			c.pending = nil
			wrote++
		}
		if wrote > 0 {
			c.broadcastLocked()
		}
		c.mu.Unlock()
		if finished {
			return nil
		}
		switch {
		case wait != nil:
			select {
			case <-wait:
			case <-ctx.Done():
			}
		case sleep > 0:
			select {
			case <-time.After(sleep):
			case <-ctx.Done():
			}
		}
	}
}

// roomLocked reports whether node n's ring may take a flow without lapping
// a follower (speed 0). Without followers a ring fills once and then waits
// for a reader, so that a new reader with --first sees the run from its start.
func (c *Cluster) roomLocked(n int) bool {
	floor, following := ^uint64(0), false
	for cs := range c.followers {
		// An agent's follower reads one node only.
		if cs.serves(n) && cs.pos[n] < floor {
			floor, following = cs.pos[n], true
		}
	}
	if !following {
		floor = c.idleFloor[n]
	}
	return c.rings[n].head-floor < uint64(len(c.rings[n].buf))
}

func (c *Cluster) broadcastLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *Cluster) signalConsumedLocked() {
	close(c.consumed)
	c.consumed = make(chan struct{})
}

// entry is one flow in a ring buffer.
type entry struct {
	at   int64
	flow *flowpb.Flow
}

// ring is a node's Hubble ring buffer: the last len(buf) flows.
type ring struct {
	buf  []entry
	head uint64 // flows ever written; the next write goes to head % len(buf)
}

func newRing(capacity int) *ring { return &ring{buf: make([]entry, capacity)} }

func (r *ring) write(e entry) {
	r.buf[r.head%uint64(len(r.buf))] = e
	r.head++
}

func (r *ring) oldest() uint64 {
	if r.head > uint64(len(r.buf)) {
		return r.head - uint64(len(r.buf))
	}
	return 0
}

func (r *ring) at(i uint64) entry { return r.buf[i%uint64(len(r.buf))] }

func (r *ring) size() uint64 { return r.head - r.oldest() }

func timeOf(ns int64) time.Time { return time.Unix(0, ns).UTC() }
