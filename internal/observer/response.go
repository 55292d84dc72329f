// Package observer holds what flowtape's Observer API servers (replay and
// the simulator) share with each other and with the readers of recordings:
// a gRPC server with the health checks `hubble status` makes, GetFlows
// filters with Cilium's own implementation, and the responses Hubble sends.
package observer

import (
	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
)

// FlowResponse wraps a flow as the GetFlows response Hubble sends for it
// (the response's time and node are the flow's).
func FlowResponse(f *flowpb.Flow) *observerpb.GetFlowsResponse {
	return &observerpb.GetFlowsResponse{Time: f.GetTime(), NodeName: f.GetNodeName(),
		ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: f}}
}
