package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Cilium monitor message types and trace sub-types (pkg/monitor/api).
const (
	msgDrop      = 1
	msgTrace     = 4
	msgAccessLog = 129

	traceToLxc   = 0
	traceFromLxc = 5
)

// ts converts simulated nanoseconds to a timestamp.
func ts(ns int64) *timestamppb.Timestamp {
	return &timestamppb.Timestamp{Seconds: ns / 1e9, Nanos: int32(ns % 1e9)}
}

// uuid returns a random (version 4) UUID from the simulation's generator,
// so that a seed reproduces the same ids.
func uuid(rng *rand.Rand) string {
	a, b := rng.Uint64(), rng.Uint64()
	a = a&^0xf000 | 0x4000
	b = b&^(0xc<<60) | 0x8<<60
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xffff, b>>48, b&0xffffffffffff)
}

// conn is one TCP (or UDP) 4-tuple between a client pod and a server pod.
type conn struct {
	client, server *Pod
	sport, dport   uint32
	udp            bool
	// names are the DNS names the server's address was looked up by, which
	// Cilium's FQDN cache adds to the flows (destination_names, or
	// source_names of replies); only for servers outside the cluster.
	names []string
}

func (c *conn) l4(reply bool, flags *flowpb.TCPFlags) *flowpb.Layer4 {
	src, dst := c.sport, c.dport
	if reply {
		src, dst = dst, src
	}
	if c.udp {
		return &flowpb.Layer4{Protocol: &flowpb.Layer4_UDP{UDP: &flowpb.UDP{SourcePort: src, DestinationPort: dst}}}
	}
	return &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{SourcePort: src, DestinationPort: dst, Flags: flags}}}
}

// base builds the parts every flow of c shares; reply swaps the endpoints.
func (g *generator) base(c *conn, at int64, node *Node, reply bool) *flowpb.Flow {
	src, dst := c.client, c.server
	if reply {
		src, dst = dst, src
	}
	f := &flowpb.Flow{
		Time:        ts(at),
		Uuid:        uuid(g.rng),
		Verdict:     flowpb.Verdict_FORWARDED,
		Ethernet:    &flowpb.Ethernet{Source: mac(src), Destination: mac(dst)},
		IP:          &flowpb.IP{Source: src.IP, Destination: dst.IP, IpVersion: flowpb.IPVersion_IPv4},
		Source:      src.Endpoint(),
		Destination: dst.Endpoint(),
		NodeName:    node.FullName(),
		NodeLabels:  node.Labels,
		IsReply:     wrapperspb.Bool(reply),
	}
	if c.server.ep == nil { // outside the cluster: no Kubernetes service, maybe a name
		if reply {
			f.SourceNames = c.names
		} else {
			f.DestinationNames = c.names
		}
		return f
	}
	svc := &flowpb.Service{Name: c.server.Service.Name, Namespace: c.server.Service.Namespace}
	if reply {
		f.SourceService = svc
	} else {
		f.DestinationService = svc
	}
	return f
}

func mac(p *Pod) string {
	return fmt.Sprintf("f2:%02x:%02x:%02x:%02x:%02x", p.Node.Index, p.ID>>8&0xff, p.ID&0xff, p.Service.Identity>>8&0xff, p.Service.Identity&0xff)
}

// l7Flow is an L7 access-log flow reported by the proxy on node for the
// pod on the given side (EGRESS at the client, INGRESS at the server).
func (g *generator) l7Flow(c *conn, at int64, atServer, response bool, l7 *flowpb.Layer7) *flowpb.Flow {
	node, dir := c.client.Node, flowpb.TrafficDirection_EGRESS
	if atServer {
		node, dir = c.server.Node, flowpb.TrafficDirection_INGRESS
	}
	f := g.base(c, at, node, response)
	f.L4 = c.l4(response, nil)
	f.Type = flowpb.FlowType_L7
	f.EventType = &flowpb.CiliumEventType{Type: msgAccessLog}
	f.TrafficDirection = dir
	f.L7 = l7
	f.ProxyPort = 15000 + uint32(node.Index)
	f.Summary = l7Summary(l7)
	return f
}

// l7Summary is the summary line Cilium's L7 parser writes (seven/http.go, dns.go).
func l7Summary(l7 *flowpb.Layer7) string {
	if h := l7.GetHttp(); h != nil {
		req := h.GetMethod() + " " + h.GetUrl()
		if l7.GetType() == flowpb.L7FlowType_RESPONSE {
			return fmt.Sprintf("%s %d %dms (%s)", h.GetProtocol(), h.GetCode(), l7.GetLatencyNs()/1e6, req)
		}
		return h.GetProtocol() + " " + req
	}
	d := l7.GetDns()
	qtypes := strings.Join(d.GetQtypes(), ",")
	if l7.GetType() == flowpb.L7FlowType_REQUEST {
		return fmt.Sprintf("DNS Query %s %s", d.GetQuery(), qtypes)
	}
	answer := ""
	switch {
	case d.GetRcode() == 3:
		answer = "RCode: Non-Existent Domain"
	case len(d.GetIps()) > 0:
		answer = fmt.Sprintf("%q", strings.Join(d.GetIps(), ","))
	}
	return fmt.Sprintf("DNS Answer %s TTL: %d (Proxy %s %s)", answer, d.GetTtl(), d.GetQuery(), qtypes)
}

// tcpSummary is the summary line Cilium's L3/L4 parser writes.
func tcpSummary(fl *flowpb.TCPFlags) string {
	var parts []string
	for _, x := range []struct {
		on   bool
		name string
	}{{fl.GetSYN(), "SYN"}, {fl.GetACK(), "ACK"}, {fl.GetRST(), "RST"}, {fl.GetFIN(), "FIN"}, {fl.GetPSH(), "PSH"}} {
		if x.on {
			parts = append(parts, x.name)
		}
	}
	return "TCP Flags: " + strings.Join(parts, ", ")
}

// traceFlow is an L3/L4 trace of one TCP segment at an endpoint: leaving the
// sender's pod (FROM_ENDPOINT, on the sender's node) or arriving at the
// receiver's pod (TO_ENDPOINT, on the receiver's node).
func (g *generator) traceFlow(c *conn, at int64, reply, atReceiver bool, flags *flowpb.TCPFlags, reason flowpb.TraceReason) *flowpb.Flow {
	sender, receiver := c.client, c.server
	if reply {
		sender, receiver = receiver, sender
	}
	node, point, sub := sender.Node, flowpb.TraceObservationPoint_FROM_ENDPOINT, int32(traceFromLxc)
	if atReceiver {
		node, point, sub = receiver.Node, flowpb.TraceObservationPoint_TO_ENDPOINT, int32(traceToLxc)
	}
	// Direction is that of the connection as seen by the local endpoint.
	dir := flowpb.TrafficDirection_EGRESS
	if atReceiver != reply { // the local endpoint is the server
		dir = flowpb.TrafficDirection_INGRESS
	}
	f := g.base(c, at, node, reply)
	f.L4 = c.l4(reply, flags)
	f.Type = flowpb.FlowType_L3_L4
	f.EventType = &flowpb.CiliumEventType{Type: msgTrace, SubType: sub}
	f.TraceObservationPoint = point
	f.TraceReason = reason
	f.TrafficDirection = dir
	f.Summary = tcpSummary(flags)
	if !reply && atReceiver {
		f.IngressAllowedBy = []*flowpb.Policy{g.allowPolicy(c.server.Service)}
	}
	return f
}

func (g *generator) allowPolicy(s *Service) *flowpb.Policy {
	return &flowpb.Policy{Name: "allow-" + s.Name, Namespace: s.Namespace, Kind: "CiliumNetworkPolicy", Revision: 3,
		Labels: []string{"k8s:io.cilium.k8s.policy.derived-from=CiliumNetworkPolicy", "k8s:io.cilium.k8s.policy.name=allow-" + s.Name,
			"k8s:io.cilium.k8s.policy.namespace=" + s.Namespace}}
}

// dropFlow is a packet dropped at the receiver's node.
func (g *generator) dropFlow(c *conn, at int64, reason flowpb.DropReason, deniedBy *flowpb.Policy) *flowpb.Flow {
	f := g.base(c, at, c.server.Node, false)
	f.Verdict = flowpb.Verdict_DROPPED
	f.L4 = c.l4(false, &flowpb.TCPFlags{SYN: true})
	f.Type = flowpb.FlowType_L3_L4
	f.EventType = &flowpb.CiliumEventType{Type: msgDrop, SubType: int32(reason)}
	f.DropReason = uint32(reason)
	f.DropReasonDesc = reason
	f.Summary = tcpSummary(f.GetL4().GetTCP().GetFlags())
	f.TrafficDirection = flowpb.TrafficDirection_INGRESS
	if deniedBy != nil {
		f.IngressDeniedBy = []*flowpb.Policy{deniedBy}
	}
	f.IsReply = wrapperspb.Bool(false)
	return f
}

func headers(kv ...string) []*flowpb.HTTPHeader {
	out := make([]*flowpb.HTTPHeader, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, &flowpb.HTTPHeader{Key: kv[i], Value: kv[i+1]})
	}
	return out
}
