package replay

import (
	"context"
	"runtime/debug"
	"strings"
	"time"

	observerpb "github.com/cilium/cilium/api/v1/observer"
	relaypb "github.com/cilium/cilium/api/v1/relay"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/flowtape/flowtape/tape"
)

// Options say how a Server plays recordings.
type Options struct {
	// Speed is recorded seconds per wall-clock second for requests that
	// follow; 0 replays as fast as the client takes flows.
	Speed float64
	// ShiftToNow stamps each flow a following request gets with the time
	// it is sent, so the recording looks live to tools that expect that.
	ShiftToNow bool
	// Clock paces following requests; nil is the wall clock.
	Clock Clock
}

// Server is the Observer API over a set of recordings, answering as
// hubble-relay does for a cluster whose nodes are the recorded ones.
type Server struct {
	observerpb.UnimplementedObserverServer
	paths []string
	cat   *Catalog // of the files at start
	opts  Options
}

// New reads the catalog of the recordings at paths (directories, globs or
// Parquet files) and returns a server for them.
func New(ctx context.Context, paths []string, opts Options) (*Server, error) {
	files, err := tape.FindFiles(paths...)
	if err != nil {
		return nil, err
	}
	cat, err := Describe(ctx, files)
	if err != nil {
		return nil, err
	}
	if opts.Clock == nil {
		opts.Clock = wallClock{}
	}
	return &Server{paths: paths, cat: cat, opts: opts}, nil
}

// Catalog is what the server serves.
func (s *Server) Catalog() *Catalog { return s.cat }

// Version is what the server reports as its version: the Cilium API it
// speaks, marked as flowtape's (the hubble CLI compares the major and minor
// parts with its own).
var Version = apiVersion()

func apiVersion() string {
	v := "0.0.0"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/cilium/cilium" {
				v = strings.TrimPrefix(d.Version, "v")
			}
		}
	}
	return v + "+flowtape-replay"
}

// ServerStatus counts the recording as if it were the ring buffers of its
// nodes: every recorded flow is held, and was seen, and lost events count
// as seen. The uptime is the recording's span, so that clients computing
// rates from it (hubble list nodes) show the recorded rates.
func (s *Server) ServerStatus(context.Context, *observerpb.ServerStatusRequest) (*observerpb.ServerStatusResponse, error) {
	resp := &observerpb.ServerStatusResponse{
		NumFlows:            s.cat.Flows,
		MaxFlows:            s.cat.Flows,
		SeenFlows:           s.cat.Flows + s.cat.Lost,
		UptimeNs:            span(s.cat.First, s.cat.Last),
		Version:             Version,
		NumConnectedNodes:   wrapperspb.UInt32(uint32(len(s.cat.Nodes))),
		NumUnavailableNodes: wrapperspb.UInt32(0),
	}
	if d := s.cat.Last.Sub(s.cat.First); d > 0 {
		resp.FlowsRate = float64(s.cat.Flows) / d.Seconds()
	}
	return resp, nil
}

// GetNodes lists the recorded nodes, each with its recorded flows.
func (s *Server) GetNodes(context.Context, *observerpb.GetNodesRequest) (*observerpb.GetNodesResponse, error) {
	resp := &observerpb.GetNodesResponse{}
	for _, n := range s.cat.Nodes {
		resp.Nodes = append(resp.Nodes, &observerpb.Node{
			Name: n.Name, Version: Version, State: relaypb.NodeState_NODE_CONNECTED,
			UptimeNs: span(n.First, n.Last), NumFlows: n.Flows, MaxFlows: n.Flows, SeenFlows: n.Flows,
			Tls: &observerpb.TLS{},
		})
	}
	return resp, nil
}

// GetNamespaces lists the namespaces recorded flows came from or went to.
func (s *Server) GetNamespaces(context.Context, *observerpb.GetNamespacesRequest) (*observerpb.GetNamespacesResponse, error) {
	resp := &observerpb.GetNamespacesResponse{}
	for _, ns := range s.cat.Namespaces {
		resp.Namespaces = append(resp.Namespaces, &observerpb.Namespace{Cluster: ns.Cluster, Namespace: ns.Namespace})
	}
	return resp, nil
}

// connected is the node status event hubble-relay sends first: the nodes
// flows will come from.
func (s *Server) connected(at time.Time) *observerpb.GetFlowsResponse {
	return &observerpb.GetFlowsResponse{
		Time: timestamppb.New(at),
		ResponseTypes: &observerpb.GetFlowsResponse_NodeStatus{NodeStatus: &relaypb.NodeStatusEvent{
			StateChange: relaypb.NodeState_NODE_CONNECTED, NodeNames: s.cat.NodeNames(),
		}},
	}
}

func span(from, to time.Time) uint64 { return uint64(max(0, to.Sub(from))) }
