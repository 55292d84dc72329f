package sim

import (
	"fmt"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
)

// Scenario is what happens in the simulated cluster over time.
type Scenario struct {
	Name string
	// IncidentAt is when, after the start, the incident begins (incident only).
	IncidentAt time.Duration
	// PaymentErrorRate is the share of Charge calls answered 503 during the incident.
	PaymentErrorRate float64
	// CartLatencyFactor multiplies cartservice's processing time during the incident.
	CartLatencyFactor float64
	// DenyPolicy, when set, drops recommendationservice -> productcatalogservice during the incident.
	DenyPolicy *flowpb.Policy
}

// Scenarios by name, for --scenario.
var Scenarios = map[string]Scenario{
	"steady": {Name: "steady"},
	"incident": {
		Name: "incident", IncidentAt: 2 * time.Minute, PaymentErrorRate: 0.30, CartLatencyFactor: 10,
		DenyPolicy: &flowpb.Policy{Name: "deny-recommendation-to-catalog", Namespace: "default", Kind: "CiliumNetworkPolicy", Revision: 12,
			Labels: []string{"k8s:io.cilium.k8s.policy.derived-from=CiliumNetworkPolicy",
				"k8s:io.cilium.k8s.policy.name=deny-recommendation-to-catalog", "k8s:io.cilium.k8s.policy.namespace=default"}},
	},
}

// ScenarioByName returns the named scenario or a one-line error listing the valid names.
func ScenarioByName(name string) (Scenario, error) {
	s, ok := Scenarios[name]
	if !ok {
		return Scenario{}, fmt.Errorf("unknown scenario %q: use steady or incident", name)
	}
	return s, nil
}

func (s Scenario) incident(sinceStart int64) bool {
	return s.Name == "incident" && sinceStart >= int64(s.IncidentAt)
}
