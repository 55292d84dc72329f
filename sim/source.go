package sim

import (
	"math/rand/v2"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"

	"github.com/flowtape/flowtape/internal/defaults"
)

// Source produces the simulated cluster's flows directly, in time order,
// without ring buffers or a server: for benchmarks and fixtures.
type Source struct{ g *generator }

// NewSource returns a flow source for a scenario, seed, rate and start.
func NewSource(scen Scenario, seed uint64, rate float64, start time.Time) *Source {
	if rate <= 0 {
		rate = defaults.SimRate
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	topo := NewTopology(defaults.SimNodes, rng)
	return &Source{g: newGenerator(topo, scen, start.UnixNano(), rate, rng)}
}

// Next returns the next flow.
func (s *Source) Next() *flowpb.Flow {
	return s.g.next().flow
}

// Take returns the next n flows.
func (s *Source) Take(n int) []*flowpb.Flow {
	out := make([]*flowpb.Flow, n)
	for i := range out {
		out[i] = s.Next()
	}
	return out
}
