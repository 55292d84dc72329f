package schema

import (
	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	relaypb "github.com/cilium/cilium/api/v1/relay"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type E = *observerpb.GetFlowsResponse

// Events is the row type of a recording's non-flow events: lost events, node
// status changes, and any other GetFlows response that is not a flow. A row
// holds the whole response, so replay can return it as it came.
var Events = newTable(KindEvents, func() E { return &observerpb.GetFlowsResponse{} }, eventColumns())

// EventKind names the kind of a GetFlows response: flow, lost_events,
// node_status, agent_event or debug_event (from exporter files: an
// ExportEvent's, kept as the unknown field of the same number), or unknown
// (a response type newer than this build, kept in the extra column).
func EventKind(r E) string {
	switch r.GetResponseTypes().(type) {
	case *observerpb.GetFlowsResponse_Flow:
		return "flow"
	case *observerpb.GetFlowsResponse_LostEvents:
		return "lost_events"
	case *observerpb.GetFlowsResponse_NodeStatus:
		return "node_status"
	}
	b := r.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		switch num {
		case exportAgentEvent:
			return "agent_event"
		case exportDebugEvent:
			return "debug_event"
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			break
		}
		b = b[n+m:]
	}
	return "unknown"
}

// Field numbers of ExportEvent's agent and debug events, which
// GetFlowsResponse does not have.
const (
	exportAgentEvent = 4
	exportDebugEvent = 5
)

func ensureLost(r E) *flowpb.LostEvent {
	if l := r.GetLostEvents(); l != nil {
		return l
	}
	l := &flowpb.LostEvent{}
	r.ResponseTypes = &observerpb.GetFlowsResponse_LostEvents{LostEvents: l}
	return l
}

func ensureNodeStatus(r E) *relaypb.NodeStatusEvent {
	if n := r.GetNodeStatus(); n != nil {
		return n
	}
	n := &relaypb.NodeStatusEvent{}
	r.ResponseTypes = &observerpb.GetFlowsResponse_NodeStatus{NodeStatus: n}
	return n
}

func eventColumns() []Column[E] {
	return []Column[E]{
		timeCol("time", "When the event happened (for lost events: when it was reported), UTC.",
			func(r E) *timestamppb.Timestamp { return r.GetTime() }, func(r E, v *timestamppb.Timestamp) { r.Time = v }).at("time"),
		strCol("node_name", "Node that reported the event.",
			func(r E) string { return r.GetNodeName() }, func(r E, v string) { r.NodeName = v }).at("node_name"),
		derived(cString, "event", "Kind of event: lost_events, node_status, agent_event or debug_event (from Cilium exporter files), or unknown (a newer response type); what no column holds is in extra.",
			func(r E) (string, bool) { return EventKind(r), true }),
		enumCol("lost_events_source", "Where events were lost: PERF_EVENT_RING_BUFFER (kernel to agent), OBSERVER_EVENTS_QUEUE (agent), HUBBLE_RING_BUFFER (reader too slow).",
			flowpb.LostEventSource_value,
			func(r E) flowpb.LostEventSource { return r.GetLostEvents().GetSource() },
			func(r E, v flowpb.LostEventSource) { ensureLost(r).Source = v }).at("lost_events.source"),
		col(cUint64, "num_events_lost", "Number of events lost; NULL for other events.",
			func(r E) (uint64, bool) { l := r.GetLostEvents(); return l.GetNumEventsLost(), l != nil },
			func(r E, v uint64) { ensureLost(r).NumEventsLost = v }).at("lost_events.num_events_lost"),
		col(cInt32, "lost_events_cpu", "CPU whose buffer lost the events, when known.",
			func(r E) (int32, bool) { c := r.GetLostEvents().GetCpu(); return c.GetValue(), c != nil },
			func(r E, v int32) { ensureLost(r).Cpu = wrapperspb.Int32(v) }).at("lost_events.cpu"),
		timeCol("lost_events_first", "Time of the first lost event, when known.",
			func(r E) *timestamppb.Timestamp { return r.GetLostEvents().GetFirst() },
			func(r E, v *timestamppb.Timestamp) { ensureLost(r).First = v }).at("lost_events.first"),
		timeCol("lost_events_last", "Time of the last lost event, when known.",
			func(r E) *timestamppb.Timestamp { return r.GetLostEvents().GetLast() },
			func(r E, v *timestamppb.Timestamp) { ensureLost(r).Last = v }).at("lost_events.last"),
		enumCol("node_state", "Node status change reported by hubble-relay: NODE_CONNECTED, NODE_UNAVAILABLE, NODE_GONE, NODE_ERROR.",
			relaypb.NodeState_value,
			func(r E) relaypb.NodeState { return r.GetNodeStatus().GetStateChange() },
			func(r E, v relaypb.NodeState) { ensureNodeStatus(r).StateChange = v }).at("node_status.state_change"),
		listCol("node_names", "Nodes the status change applies to.",
			func(r E) []string { return r.GetNodeStatus().GetNodeNames() },
			func(r E, v []string) { ensureNodeStatus(r).NodeNames = v }).at("node_status.node_names"),
		strCol("message", "Message of a node status change (e.g. the connection error).",
			func(r E) string { return r.GetNodeStatus().GetMessage() },
			func(r E, v string) { ensureNodeStatus(r).Message = v }).at("node_status.message"),
	}
}
