package sim

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	observerpb "github.com/cilium/cilium/api/v1/observer"
	peerpb "github.com/cilium/cilium/api/v1/peer"
	relaypb "github.com/cilium/cilium/api/v1/relay"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/flowtape/flowtape/internal/observer"
)

// Version is what the simulated Hubble servers report as their version.
const Version = "1.20.2+flowtape-sim"

// observerServer serves the Observer API for a set of nodes: all of them
// (as hubble-relay) or one (as that node's agent).
type observerServer struct {
	observerpb.UnimplementedObserverServer
	c     *Cluster
	nodes []int
	relay bool
}

// ObserverServer returns the Observer service of the whole cluster, as
// hubble-relay serves it.
func (c *Cluster) ObserverServer() observerpb.ObserverServer {
	all := make([]int, len(c.topo.Nodes))
	for i := range all {
		all[i] = i
	}
	return &observerServer{c: c, nodes: all, relay: true}
}

// AgentServer returns the Observer service of one node's Cilium agent.
func (c *Cluster) AgentServer(node int) observerpb.ObserverServer {
	return &observerServer{c: c, nodes: []int{node}}
}

func (s *observerServer) GetFlows(req *observerpb.GetFlowsRequest, stream grpc.ServerStreamingServer[observerpb.GetFlowsResponse]) error {
	key := "hubble-server-version"
	if s.relay {
		key = "hubble-relay-version"
	}
	if err := stream.SendHeader(metadata.Pairs(key, Version)); err != nil {
		return err
	}
	return s.c.streamFlows(stream.Context(), req, s.nodes, stream.Send)
}

func (s *observerServer) ServerStatus(context.Context, *observerpb.ServerStatusRequest) (*observerpb.ServerStatusResponse, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	resp := &observerpb.ServerStatusResponse{Version: Version, UptimeNs: s.c.uptimeNs()}
	for _, n := range s.nodes {
		r := s.c.rings[n]
		resp.NumFlows += r.size()
		resp.MaxFlows += uint64(len(r.buf))
		resp.SeenFlows += r.head
	}
	if s.relay {
		resp.NumConnectedNodes = wrapperspb.UInt32(uint32(len(s.nodes)))
		resp.NumUnavailableNodes = wrapperspb.UInt32(0)
	}
	if el := time.Duration(resp.UptimeNs); el > 0 {
		resp.FlowsRate = float64(resp.SeenFlows) / el.Seconds()
	}
	return resp, nil
}

func (s *observerServer) GetNodes(context.Context, *observerpb.GetNodesRequest) (*observerpb.GetNodesResponse, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	resp := &observerpb.GetNodesResponse{}
	for _, n := range s.nodes {
		r := s.c.rings[n]
		resp.Nodes = append(resp.Nodes, &observerpb.Node{
			Name: s.c.topo.Nodes[n].FullName(), Version: Version, Address: s.c.agentAddr(n),
			State: relaypb.NodeState_NODE_CONNECTED, UptimeNs: s.c.uptimeNs(),
			NumFlows: r.size(), MaxFlows: uint64(len(r.buf)), SeenFlows: r.head,
		})
	}
	return resp, nil
}

func (s *observerServer) GetNamespaces(context.Context, *observerpb.GetNamespacesRequest) (*observerpb.GetNamespacesResponse, error) {
	resp := &observerpb.GetNamespacesResponse{}
	for _, ns := range s.c.topo.Namespaces() {
		resp.Namespaces = append(resp.Namespaces, &observerpb.Namespace{Cluster: ClusterName, Namespace: ns})
	}
	return resp, nil
}

func (c *Cluster) uptimeNs() uint64 {
	if c.startWall.IsZero() {
		return 0
	}
	return uint64(time.Since(c.startWall))
}

// agentAddr is where node n's agent listens, once ServeAgents has run.
func (c *Cluster) agentAddr(n int) string {
	if n < len(c.agentAddrs) {
		return c.agentAddrs[n]
	}
	return ""
}

// peerServer is the Peer service of an agent: it lists every node and where
// its Hubble server listens, which is how hubble-relay finds the agents.
type peerServer struct {
	peerpb.UnimplementedPeerServer
	c *Cluster
}

func (p *peerServer) Notify(_ *peerpb.NotifyRequest, stream grpc.ServerStreamingServer[peerpb.ChangeNotification]) error {
	for i, n := range p.c.topo.Nodes {
		cn := &peerpb.ChangeNotification{Name: n.FullName(), Address: p.c.agentAddr(i), Type: peerpb.ChangeNotificationType_PEER_ADDED}
		if name := p.c.cfg.AgentTLSServerName; name != "" {
			cn.Tls = &peerpb.TLS{ServerName: name}
		}
		if err := stream.Send(cn); err != nil {
			return err
		}
	}
	<-stream.Context().Done()
	return nil
}

// Serve serves the cluster-wide Observer API (as hubble-relay) on lis until
// ctx ends.
func (c *Cluster) Serve(ctx context.Context, lis net.Listener, opts ...grpc.ServerOption) error {
	srv := observer.NewServer(opts...)
	observerpb.RegisterObserverServer(srv, c.ObserverServer())
	return observer.Serve(ctx, srv, lis)
}

// ServeAgents serves each node as a Cilium agent (Observer and Peer) on its
// own listener until ctx ends; lis[i] serves node i.
func (c *Cluster) ServeAgents(ctx context.Context, lis []net.Listener, opts ...grpc.ServerOption) error {
	if len(lis) != len(c.topo.Nodes) {
		return fmt.Errorf("need one listener per node: got %d for %d nodes", len(lis), len(c.topo.Nodes))
	}
	c.mu.Lock()
	c.agentAddrs = make([]string, len(lis))
	for i, l := range lis {
		c.agentAddrs[i] = l.Addr().String()
	}
	c.mu.Unlock()
	errc := make(chan error, len(lis))
	for i, l := range lis {
		srv := observer.NewServer(opts...)
		observerpb.RegisterObserverServer(srv, c.AgentServer(i))
		peerpb.RegisterPeerServer(srv, &peerServer{c: c})
		go func() { errc <- observer.Serve(ctx, srv, l) }()
	}
	var first error
	for range lis {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// ListenAgents opens one listener per node on HOST:PORT+i (port 0: free
// ports), for ServeAgents.
func ListenAgents(addr string, nodes int) ([]net.Listener, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("invalid agents address %q: use HOST:PORT", addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("invalid agents port %q", portStr)
	}
	var out []net.Listener
	for i := 0; i < nodes; i++ {
		p := 0
		if port != 0 {
			p = port + i
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}
