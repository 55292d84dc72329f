package schema

import (
	"regexp"
	"strings"
	"unicode"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type F = *flowpb.Flow

// Flows is the flow row type: one row per flow.Flow (cilium v1.20 API).
var Flows = newTable(KindFlows, func() F { return &flowpb.Flow{} }, flowColumns())

func ensureIP(f F) *flowpb.IP {
	if f.IP == nil {
		f.IP = &flowpb.IP{}
	}
	return f.IP
}

func ensureEth(f F) *flowpb.Ethernet {
	if f.Ethernet == nil {
		f.Ethernet = &flowpb.Ethernet{}
	}
	return f.Ethernet
}

func ensureL7(f F) *flowpb.Layer7 {
	if f.L7 == nil {
		f.L7 = &flowpb.Layer7{}
	}
	return f.L7
}

func ensureHTTP(f F) *flowpb.HTTP {
	l7 := ensureL7(f)
	if h, ok := l7.Record.(*flowpb.Layer7_Http); ok && h.Http != nil {
		return h.Http
	}
	h := &flowpb.HTTP{}
	l7.Record = &flowpb.Layer7_Http{Http: h}
	return h
}

func ensureDNS(f F) *flowpb.DNS {
	l7 := ensureL7(f)
	if d, ok := l7.Record.(*flowpb.Layer7_Dns); ok && d.Dns != nil {
		return d.Dns
	}
	d := &flowpb.DNS{}
	l7.Record = &flowpb.Layer7_Dns{Dns: d}
	return d
}

func ensureEventType(f F) *flowpb.CiliumEventType {
	if f.EventType == nil {
		f.EventType = &flowpb.CiliumEventType{}
	}
	return f.EventType
}

// ports returns the transport ports of TCP, UDP and SCTP flows.
func ports(f F) (src, dst uint32, ok bool) {
	switch p := f.GetL4().GetProtocol().(type) {
	case *flowpb.Layer4_TCP:
		return p.TCP.GetSourcePort(), p.TCP.GetDestinationPort(), p.TCP != nil
	case *flowpb.Layer4_UDP:
		return p.UDP.GetSourcePort(), p.UDP.GetDestinationPort(), p.UDP != nil
	case *flowpb.Layer4_SCTP:
		return p.SCTP.GetSourcePort(), p.SCTP.GetDestinationPort(), p.SCTP != nil
	}
	return 0, 0, false
}

// setPort writes a port into whichever transport the flow carries; the
// residual column keeps the (empty) transport message, so it is there.
func setPort(f F, v uint32, source bool) {
	var s, d *uint32
	switch p := f.GetL4().GetProtocol().(type) {
	case *flowpb.Layer4_TCP:
		if p.TCP != nil {
			s, d = &p.TCP.SourcePort, &p.TCP.DestinationPort
		}
	case *flowpb.Layer4_UDP:
		if p.UDP != nil {
			s, d = &p.UDP.SourcePort, &p.UDP.DestinationPort
		}
	case *flowpb.Layer4_SCTP:
		if p.SCTP != nil {
			s, d = &p.SCTP.SourcePort, &p.SCTP.DestinationPort
		}
	}
	if s == nil {
		return
	}
	if source {
		*s = v
	} else {
		*d = v
	}
}

func icmp(f F) (typ, code uint32, ok bool) {
	switch p := f.GetL4().GetProtocol().(type) {
	case *flowpb.Layer4_ICMPv4:
		return p.ICMPv4.GetType(), p.ICMPv4.GetCode(), p.ICMPv4 != nil
	case *flowpb.Layer4_ICMPv6:
		return p.ICMPv6.GetType(), p.ICMPv6.GetCode(), p.ICMPv6 != nil
	}
	return 0, 0, false
}

func setICMP(f F, v uint32, isType bool) {
	var t, c *uint32
	switch p := f.GetL4().GetProtocol().(type) {
	case *flowpb.Layer4_ICMPv4:
		if p.ICMPv4 != nil {
			t, c = &p.ICMPv4.Type, &p.ICMPv4.Code
		}
	case *flowpb.Layer4_ICMPv6:
		if p.ICMPv6 != nil {
			t, c = &p.ICMPv6.Type, &p.ICMPv6.Code
		}
	}
	if t == nil {
		return
	}
	if isType {
		*t = v
	} else {
		*c = v
	}
}

// RequestID is a flow's request ID as the derived requests table and the
// flows views take it: its first X-Request-Id header's value ("" where
// there is none).
func RequestID(f F) string { return httpHeader(f, HeaderRequestID) }

// httpHeader is the first value of an HTTP header, by case-insensitive name.
func httpHeader(f F, name string) string {
	for _, h := range f.GetL7().GetHttp().GetHeaders() {
		if strings.EqualFold(h.GetKey(), name) {
			return h.GetValue()
		}
	}
	return ""
}

// HeaderFold is how httpHeader's strings.EqualFold matches an ASCII
// header name: from lists every rune that folds to an ASCII letter but is
// not that lowercase letter (A-Z, the Kelvin sign, the long s), to the
// letter it folds to, rune for rune. The analyses' SQL maps one onto the
// other (translate) to compare header names as Go does.
func HeaderFold() (from, to string) {
	var f, t []rune
	for c := 'a'; c <= 'z'; c++ {
		for r := unicode.SimpleFold(c); r != c; r = unicode.SimpleFold(r) {
			f, t = append(f, r), append(t, c)
		}
	}
	return string(f), string(t)
}

// What the derivation of request IDs (requests.request_id, the flows
// view's http_request_id) and l7_protocol looks at. The analyses' SQL
// computes the same values (analyze hands these to DuckDB as variables), so
// that the two cannot drift apart.
const (
	// HeaderRequestID is Envoy's request ID header (http_request_id).
	HeaderRequestID = "x-request-id"
	// HeaderContentType, GRPCContentType: a gRPC call's content-type
	// starts with application/grpc (application/grpc+proto, ...).
	HeaderContentType = "content-type"
	GRPCContentType   = "application/grpc"
	// GRPCProtocol, GRPCMethod and GRPCURLPattern tell a gRPC call whose
	// headers Hubble left out: an HTTP/2 POST to /package.Service/Method.
	// The pattern is RE2 syntax, which Go and DuckDB share.
	GRPCProtocol   = "HTTP/2"
	GRPCMethod     = "POST"
	GRPCURLPattern = `^[a-z]+://[^/]+/[A-Za-z0-9_.]+\.[A-Za-z0-9_]+/[A-Za-z0-9_]+$`
)

var grpcURL = regexp.MustCompile(GRPCURLPattern)

// l7Protocol tells gRPC from other HTTP the way gRPC defines itself: a
// content-type of application/grpc, or, where Hubble left the headers out,
// an HTTP/2 POST to /package.Service/Method.
func l7Protocol(f F) string {
	l7 := f.GetL7()
	switch {
	case l7.GetHttp() != nil:
		h := l7.GetHttp()
		if strings.HasPrefix(httpHeader(f, HeaderContentType), GRPCContentType) ||
			h.GetProtocol() == GRPCProtocol && h.GetMethod() == GRPCMethod && grpcURL.MatchString(h.GetUrl()) {
			return "grpc"
		}
		return "http"
	case l7.GetDns() != nil:
		return "dns"
	case l7.GetKafka() != nil:
		return "kafka"
	}
	return ""
}

// l4Protocol names the transport as hubble observe prints it.
func l4Protocol(f F) string {
	switch f.GetL4().GetProtocol().(type) {
	case *flowpb.Layer4_TCP:
		return "TCP"
	case *flowpb.Layer4_UDP:
		return "UDP"
	case *flowpb.Layer4_ICMPv4:
		return "ICMPv4"
	case *flowpb.Layer4_ICMPv6:
		return "ICMPv6"
	case *flowpb.Layer4_SCTP:
		return "SCTP"
	case *flowpb.Layer4_VRRP:
		return "VRRP"
	case *flowpb.Layer4_IGMP:
		return "IGMP"
	}
	return ""
}

func tcpFlagCol(name string, get func(*flowpb.TCPFlags) bool, set func(*flowpb.TCPFlags, bool)) Column[F] {
	return col(cBool, "tcp_"+strings.ToLower(name), "TCP "+name+" flag; NULL when the flow carries no TCP flags.",
		func(f F) (bool, bool) {
			fl := f.GetL4().GetTCP().GetFlags()
			return get(fl), fl != nil
		},
		func(f F, v bool) {
			if tcp := f.GetL4().GetTCP(); tcp != nil {
				if tcp.Flags == nil {
					tcp.Flags = &flowpb.TCPFlags{}
				}
				set(tcp.Flags, v)
			}
		}).at("l4.TCP.flags." + name)
}

func policyNames(ps []*flowpb.Policy) ([]string, bool) {
	if len(ps) == 0 {
		return nil, false
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		if p.GetNamespace() != "" {
			out[i] = p.GetNamespace() + "/" + p.GetName()
		} else {
			out[i] = p.GetName()
		}
	}
	return out, true
}

// appLabels are the labels that name an application, in order of preference.
var appLabels = []string{"app.kubernetes.io/name", "app", "k8s-app", "name"}

// endpointColumns are the columns of flow.source or flow.destination.
func endpointColumns(side string, get func(F) *flowpb.Endpoint, ensure func(F) *flowpb.Endpoint,
	getNames func(F) []string, setNames func(F, []string),
	getSvc func(F) *flowpb.Service, ensureSvc func(F) *flowpb.Service) []Column[F] {
	p := side + "_"
	return []Column[F]{
		strCol(p+"namespace", "Kubernetes namespace of the "+side+" endpoint.",
			func(f F) string { return get(f).GetNamespace() }, func(f F, v string) { ensure(f).Namespace = v }).at(side + ".namespace"),
		strCol(p+"pod_name", "Pod name of the "+side+" endpoint.",
			func(f F) string { return get(f).GetPodName() }, func(f F, v string) { ensure(f).PodName = v }).at(side + ".pod_name"),
		strCol(p+"workload", "Name of the first workload (Deployment, StatefulSet, ...) owning the "+side+" pod.",
			func(f F) string {
				if w := get(f).GetWorkloads(); len(w) > 0 {
					return w[0].GetName()
				}
				return ""
			},
			func(f F, v string) {
				ep := ensure(f)
				if len(ep.Workloads) == 0 {
					ep.Workloads = append(ep.Workloads, &flowpb.Workload{})
				}
				ep.Workloads[0].Name = v
			}).at(side + ".workloads[0].name"),
		strCol(p+"workload_kind", "Kind of the first workload owning the "+side+" pod.",
			func(f F) string {
				if w := get(f).GetWorkloads(); len(w) > 0 {
					return w[0].GetKind()
				}
				return ""
			},
			func(f F, v string) {
				ep := ensure(f)
				if len(ep.Workloads) == 0 {
					ep.Workloads = append(ep.Workloads, &flowpb.Workload{})
				}
				ep.Workloads[0].Kind = v
			}).at(side + ".workloads[0].kind"),
		derived(cString, p+"app", "Application label of the "+side+" endpoint (app.kubernetes.io/name, app, k8s-app or name).",
			func(f F) (string, bool) {
				v := labelValue(get(f).GetLabels(), appLabels...)
				return v, v != ""
			}),
		listCol(p+"labels", "Labels of the "+side+" endpoint's security identity, as \"source:key=value\".",
			func(f F) []string { return get(f).GetLabels() }, func(f F, v []string) { ensure(f).Labels = v }).at(side + ".labels"),
		col(cUint32, p+"identity", "Security identity of the "+side+" endpoint (1 host, 2 world, ...); NULL when the endpoint is absent.",
			func(f F) (uint32, bool) { ep := get(f); return ep.GetIdentity(), ep != nil },
			func(f F, v uint32) { ensure(f).Identity = v }).at(side + ".identity"),
		col(cUint32, p+"endpoint_id", "Cilium endpoint ID of the "+side+" endpoint (local endpoints only); NULL when the endpoint is absent.",
			func(f F) (uint32, bool) { ep := get(f); return ep.GetID(), ep != nil },
			func(f F, v uint32) { ensure(f).ID = v }).at(side + ".ID"),
		strCol(p+"cluster_name", "Cluster of the "+side+" endpoint (Cluster Mesh).",
			func(f F) string { return get(f).GetClusterName() }, func(f F, v string) { ensure(f).ClusterName = v }).at(side + ".cluster_name"),
		strCol(p+"service_name", "Kubernetes service the "+side+" address belongs to.",
			func(f F) string { return getSvc(f).GetName() }, func(f F, v string) { ensureSvc(f).Name = v }).at(side + "_service.name"),
		strCol(p+"service_namespace", "Namespace of that service.",
			func(f F) string { return getSvc(f).GetNamespace() }, func(f F, v string) { ensureSvc(f).Namespace = v }).at(side + "_service.namespace"),
		listCol(p+"names", "DNS names the "+side+" IP was resolved from (FQDN policy cache).",
			getNames, setNames).at(side + "_names"),
		derived(cString, p+"endpoint", "Name of the "+side+" endpoint as this flow alone tells it: its workload, else app label, else pod, else reserved identity (world, host, kube-apiserver, ...), else the DNS name its IP was resolved from, else the IP. The analyses name a pod by the best name any of its flows gives it (the pods view).",
			func(f F) (string, bool) {
				ip := f.GetIP().GetDestination()
				if side == "source" {
					ip = f.GetIP().GetSource()
				}
				n := endpointName(get(f), getNames(f), ip)
				return n, n != ""
			}),
	}
}

// ReservedIdentities are Cilium's fixed numeric identities by name
// (pkg/identity); the analyses' SQL (ft_name) reads this map, handed to it
// as a variable, for files written before source_endpoint existed.
var ReservedIdentities = map[uint32]string{1: "host", 2: "world", 3: "unmanaged", 4: "health", 5: "init",
	6: "remote-node", 7: "kube-apiserver", 8: "ingress", 9: "world-ipv4", 10: "world-ipv6"}

// endpointName is ft_name of analyze/sql/macros.sql (which reads the
// stored source_app for the app label), computed once when a row is written: reading the six columns it needs costs a query more
// than the rest of its work.
func endpointName(ep *flowpb.Endpoint, names []string, ip string) string {
	if w := ep.GetWorkloads(); len(w) > 0 && w[0].GetName() != "" {
		return w[0].GetName()
	}
	if v := labelValue(ep.GetLabels(), appLabels...); v != "" {
		return v
	}
	if ep.GetPodName() != "" {
		return ep.GetPodName()
	}
	if ep != nil {
		if r, ok := ReservedIdentities[ep.GetIdentity()]; ok {
			return r
		}
	}
	if len(names) > 0 {
		if n := strings.TrimRight(names[0], "."); n != "" {
			return n
		}
	}
	return ip
}

func flowColumns() []Column[F] {
	cols := []Column[F]{
		timeCol("time", "When the event was observed, UTC, nanoseconds.",
			func(f F) *timestamppb.Timestamp { return f.GetTime() }, func(f F, v *timestamppb.Timestamp) { f.Time = v }).at("time"),
		col(cUUID, "uuid", "Unique flow ID assigned by Hubble (absent in flows of older Cilium).",
			func(f F) ([16]byte, bool) { return parseUUID(f.GetUuid()) },
			func(f F, v [16]byte) { f.Uuid = formatUUID(v) }).at("uuid"),
		strCol("node_name", "Node that observed the flow, as cluster/node behind hubble-relay.",
			func(f F) string { return f.GetNodeName() }, func(f F, v string) { f.NodeName = v }).at("node_name"),
		listCol("node_labels", "Labels of that node.",
			func(f F) []string { return f.GetNodeLabels() }, func(f F, v []string) { f.NodeLabels = v }).at("node_labels"),
		enumCol("verdict", "FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED or TRANSLATED.", flowpb.Verdict_value,
			func(f F) flowpb.Verdict { return f.GetVerdict() }, func(f F, v flowpb.Verdict) { f.Verdict = v }).at("verdict"),
		enumCol("drop_reason_desc", "Why a DROPPED flow was dropped, e.g. POLICY_DENIED.", flowpb.DropReason_value,
			func(f F) flowpb.DropReason { return f.GetDropReasonDesc() }, func(f F, v flowpb.DropReason) { f.DropReasonDesc = v }).at("drop_reason_desc"),
		col(cUint32, "drop_reason", "Numeric drop reason (deprecated by Cilium in favour of drop_reason_desc).",
			func(f F) (uint32, bool) { return f.GetDropReason(), true }, func(f F, v uint32) { f.DropReason = v }).at("drop_reason"),
		enumCol("type", "Flow type: L3_L4, L7 or SOCK.", flowpb.FlowType_value,
			func(f F) flowpb.FlowType { return f.GetType() }, func(f F, v flowpb.FlowType) { f.Type = v }).at("Type"),
		col(cInt32, "event_type", "Cilium monitor event type (1 drop, 4 trace, 5 policy verdict, 129 L7 access log, ...).",
			func(f F) (int32, bool) { e := f.GetEventType(); return e.GetType(), e != nil },
			func(f F, v int32) { ensureEventType(f).Type = v }).at("event_type.type"),
		col(cInt32, "event_subtype", "Cilium monitor event sub-type (observation point of traces, reason of drops).",
			func(f F) (int32, bool) { e := f.GetEventType(); return e.GetSubType(), e != nil },
			func(f F, v int32) { ensureEventType(f).SubType = v }).at("event_type.sub_type"),
		enumCol("traffic_direction", "INGRESS or EGRESS, from the point of view of the local endpoint.", flowpb.TrafficDirection_value,
			func(f F) flowpb.TrafficDirection { return f.GetTrafficDirection() }, func(f F, v flowpb.TrafficDirection) { f.TrafficDirection = v }).at("traffic_direction"),
		enumCol("trace_observation_point", "Where in the datapath a trace was observed (TO_ENDPOINT, FROM_ENDPOINT, TO_PROXY, TO_STACK, ...).", flowpb.TraceObservationPoint_value,
			func(f F) flowpb.TraceObservationPoint { return f.GetTraceObservationPoint() },
			func(f F, v flowpb.TraceObservationPoint) { f.TraceObservationPoint = v }).at("trace_observation_point"),
		enumCol("trace_reason", "Connection-tracking state of a trace: NEW, ESTABLISHED, REPLY, RELATED, ...", flowpb.TraceReason_value,
			func(f F) flowpb.TraceReason { return f.GetTraceReason() }, func(f F, v flowpb.TraceReason) { f.TraceReason = v }).at("trace_reason"),
		col(cBool, "is_reply", "Whether the flow is a reply (response direction of a connection); NULL when Cilium could not tell.",
			func(f F) (bool, bool) { r := f.GetIsReply(); return r.GetValue(), r != nil },
			func(f F, v bool) { f.IsReply = wrapperspb.Bool(v) }).at("is_reply"),
		col(cBool, "reply", "Deprecated reply flag of older Cilium versions (see is_reply).",
			func(f F) (bool, bool) { return f.GetReply(), true }, func(f F, v bool) { f.Reply = v }).at("reply"),
		strCol("ip_source", "Source IP address.",
			func(f F) string { return f.GetIP().GetSource() }, func(f F, v string) { ensureIP(f).Source = v }).at("IP.source"),
		strCol("ip_source_xlated", "Source IP after SNAT, where Cilium translated it.",
			func(f F) string { return f.GetIP().GetSourceXlated() }, func(f F, v string) { ensureIP(f).SourceXlated = v }).at("IP.source_xlated"),
		strCol("ip_destination", "Destination IP address.",
			func(f F) string { return f.GetIP().GetDestination() }, func(f F, v string) { ensureIP(f).Destination = v }).at("IP.destination"),
		enumCol("ip_version", "IPv4 or IPv6.", flowpb.IPVersion_value,
			func(f F) flowpb.IPVersion { return f.GetIP().GetIpVersion() }, func(f F, v flowpb.IPVersion) { ensureIP(f).IpVersion = v }).at("IP.ipVersion"),
		col(cBool, "encrypted", "Whether the packet was encrypted (IPsec/WireGuard); NULL when the flow has no IP layer.",
			func(f F) (bool, bool) { ip := f.GetIP(); return ip.GetEncrypted(), ip != nil },
			func(f F, v bool) { ensureIP(f).Encrypted = v }).at("IP.encrypted"),
		strCol("ethernet_source", "Source MAC address.",
			func(f F) string { return f.GetEthernet().GetSource() }, func(f F, v string) { ensureEth(f).Source = v }).at("ethernet.source"),
		strCol("ethernet_destination", "Destination MAC address.",
			func(f F) string { return f.GetEthernet().GetDestination() }, func(f F, v string) { ensureEth(f).Destination = v }).at("ethernet.destination"),
		derived(cString, "l4_protocol", "Transport protocol: TCP, UDP, ICMPv4, ICMPv6, SCTP, VRRP or IGMP.",
			func(f F) (string, bool) { p := l4Protocol(f); return p, p != "" }),
		col(cUint32, "source_port", "TCP, UDP or SCTP source port.",
			func(f F) (uint32, bool) { s, _, ok := ports(f); return s, ok }, func(f F, v uint32) { setPort(f, v, true) }).at("l4.TCP.source_port", "l4.UDP.source_port", "l4.SCTP.source_port"),
		col(cUint32, "destination_port", "TCP, UDP or SCTP destination port.",
			func(f F) (uint32, bool) { _, d, ok := ports(f); return d, ok }, func(f F, v uint32) { setPort(f, v, false) }).at("l4.TCP.destination_port", "l4.UDP.destination_port", "l4.SCTP.destination_port"),
		col(cUint32, "icmp_type", "ICMPv4/ICMPv6 type.",
			func(f F) (uint32, bool) { t, _, ok := icmp(f); return t, ok }, func(f F, v uint32) { setICMP(f, v, true) }).at("l4.ICMPv4.type", "l4.ICMPv6.type"),
		col(cUint32, "icmp_code", "ICMPv4/ICMPv6 code.",
			func(f F) (uint32, bool) { _, c, ok := icmp(f); return c, ok }, func(f F, v uint32) { setICMP(f, v, false) }).at("l4.ICMPv4.code", "l4.ICMPv6.code"),
		tcpFlagCol("SYN", func(t *flowpb.TCPFlags) bool { return t.GetSYN() }, func(t *flowpb.TCPFlags, v bool) { t.SYN = v }),
		tcpFlagCol("ACK", func(t *flowpb.TCPFlags) bool { return t.GetACK() }, func(t *flowpb.TCPFlags, v bool) { t.ACK = v }),
		tcpFlagCol("FIN", func(t *flowpb.TCPFlags) bool { return t.GetFIN() }, func(t *flowpb.TCPFlags, v bool) { t.FIN = v }),
		tcpFlagCol("RST", func(t *flowpb.TCPFlags) bool { return t.GetRST() }, func(t *flowpb.TCPFlags, v bool) { t.RST = v }),
		tcpFlagCol("PSH", func(t *flowpb.TCPFlags) bool { return t.GetPSH() }, func(t *flowpb.TCPFlags, v bool) { t.PSH = v }),
		tcpFlagCol("URG", func(t *flowpb.TCPFlags) bool { return t.GetURG() }, func(t *flowpb.TCPFlags, v bool) { t.URG = v }),
		tcpFlagCol("ECE", func(t *flowpb.TCPFlags) bool { return t.GetECE() }, func(t *flowpb.TCPFlags, v bool) { t.ECE = v }),
		tcpFlagCol("CWR", func(t *flowpb.TCPFlags) bool { return t.GetCWR() }, func(t *flowpb.TCPFlags, v bool) { t.CWR = v }),
		tcpFlagCol("NS", func(t *flowpb.TCPFlags) bool { return t.GetNS() }, func(t *flowpb.TCPFlags, v bool) { t.NS = v }),
	}
	cols = append(cols, endpointColumns("source",
		func(f F) *flowpb.Endpoint { return f.GetSource() },
		func(f F) *flowpb.Endpoint {
			if f.Source == nil {
				f.Source = &flowpb.Endpoint{}
			}
			return f.Source
		},
		func(f F) []string { return f.GetSourceNames() }, func(f F, v []string) { f.SourceNames = v },
		func(f F) *flowpb.Service { return f.GetSourceService() },
		func(f F) *flowpb.Service {
			if f.SourceService == nil {
				f.SourceService = &flowpb.Service{}
			}
			return f.SourceService
		})...)
	cols = append(cols, endpointColumns("destination",
		func(f F) *flowpb.Endpoint { return f.GetDestination() },
		func(f F) *flowpb.Endpoint {
			if f.Destination == nil {
				f.Destination = &flowpb.Endpoint{}
			}
			return f.Destination
		},
		func(f F) []string { return f.GetDestinationNames() }, func(f F, v []string) { f.DestinationNames = v },
		func(f F) *flowpb.Service { return f.GetDestinationService() },
		func(f F) *flowpb.Service {
			if f.DestinationService == nil {
				f.DestinationService = &flowpb.Service{}
			}
			return f.DestinationService
		})...)
	cols = append(cols,
		enumCol("l7_type", "L7 record type: REQUEST, RESPONSE or SAMPLE.", flowpb.L7FlowType_value,
			func(f F) flowpb.L7FlowType { return f.GetL7().GetType() }, func(f F, v flowpb.L7FlowType) { ensureL7(f).Type = v }).at("l7.type"),
		col(cUint64, "l7_latency_ns", "Request-to-response latency measured by the proxy, on RESPONSE flows; NULL for non-L7 flows.",
			func(f F) (uint64, bool) { l := f.GetL7(); return l.GetLatencyNs(), l != nil },
			func(f F, v uint64) { ensureL7(f).LatencyNs = v }).at("l7.latency_ns"),
		col(cUint32, "http_code", "HTTP status code (0 on requests); NULL for non-HTTP flows.",
			func(f F) (uint32, bool) { h := f.GetL7().GetHttp(); return h.GetCode(), h != nil },
			func(f F, v uint32) { ensureHTTP(f).Code = v }).at("l7.http.code"),
		strCol("http_method", "HTTP method; gRPC calls are POST.",
			func(f F) string { return f.GetL7().GetHttp().GetMethod() }, func(f F, v string) { ensureHTTP(f).Method = v }).at("l7.http.method"),
		strCol("http_url", "Request URL; for gRPC http://host:port/package.Service/Method.",
			func(f F) string { return f.GetL7().GetHttp().GetUrl() }, func(f F, v string) { ensureHTTP(f).Url = v }).at("l7.http.url"),
		strCol("http_protocol", "HTTP/1.1 or HTTP/2 (gRPC).",
			func(f F) string { return f.GetL7().GetHttp().GetProtocol() }, func(f F, v string) { ensureHTTP(f).Protocol = v }).at("l7.http.protocol"),
		col(cKeyValues, "http_headers", "HTTP headers as a list of {key, value}, in the order Hubble reported them.",
			func(f F) ([]KeyValue, bool) {
				hs := f.GetL7().GetHttp().GetHeaders()
				if len(hs) == 0 {
					return nil, false
				}
				out := make([]KeyValue, len(hs))
				for i, h := range hs {
					out[i] = KeyValue{h.GetKey(), h.GetValue()}
				}
				return out, true
			},
			func(f F, v []KeyValue) {
				hs := make([]*flowpb.HTTPHeader, len(v))
				for i, kv := range v {
					hs[i] = &flowpb.HTTPHeader{Key: kv.Key, Value: kv.Value}
				}
				ensureHTTP(f).Headers = hs
			}).at("l7.http.headers"),
		derived(cString, "l7_protocol", "Application protocol of an L7 flow: grpc, http, dns or kafka.",
			func(f F) (string, bool) { p := l7Protocol(f); return p, p != "" }),
		strCol("dns_query", "Queried DNS name, fully qualified with a trailing dot.",
			func(f F) string { return f.GetL7().GetDns().GetQuery() }, func(f F, v string) { ensureDNS(f).Query = v }).at("l7.dns.query"),
		col(cUint32, "dns_rcode", "DNS response code (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ...); NULL for non-DNS flows.",
			func(f F) (uint32, bool) { d := f.GetL7().GetDns(); return d.GetRcode(), d != nil },
			func(f F, v uint32) { ensureDNS(f).Rcode = v }).at("l7.dns.rcode"),
		listCol("dns_qtypes", "Query types (A, AAAA, ...).",
			func(f F) []string { return f.GetL7().GetDns().GetQtypes() }, func(f F, v []string) { ensureDNS(f).Qtypes = v }).at("l7.dns.qtypes"),
		listCol("dns_rrtypes", "Resource record types in the answer.",
			func(f F) []string { return f.GetL7().GetDns().GetRrtypes() }, func(f F, v []string) { ensureDNS(f).Rrtypes = v }).at("l7.dns.rrtypes"),
		listCol("dns_ips", "IP addresses in the answer.",
			func(f F) []string { return f.GetL7().GetDns().GetIps() }, func(f F, v []string) { ensureDNS(f).Ips = v }).at("l7.dns.ips"),
		listCol("dns_cnames", "CNAMEs in the answer.",
			func(f F) []string { return f.GetL7().GetDns().GetCnames() }, func(f F, v []string) { ensureDNS(f).Cnames = v }).at("l7.dns.cnames"),
		col(cUint32, "dns_ttl", "Smallest TTL of the answer; NULL for non-DNS flows.",
			func(f F) (uint32, bool) { d := f.GetL7().GetDns(); return d.GetTtl(), d != nil },
			func(f F, v uint32) { ensureDNS(f).Ttl = v }).at("l7.dns.ttl"),
		strCol("dns_observation_source", "Who observed the DNS message (proxy).",
			func(f F) string { return f.GetL7().GetDns().GetObservationSource() },
			func(f F, v string) { ensureDNS(f).ObservationSource = v }).at("l7.dns.observation_source"),
		derived(cStrings, "egress_allowed_by", "Policies (namespace/name) that allowed the flow on egress.",
			func(f F) ([]string, bool) { return policyNames(f.GetEgressAllowedBy()) }),
		derived(cStrings, "ingress_allowed_by", "Policies (namespace/name) that allowed the flow on ingress.",
			func(f F) ([]string, bool) { return policyNames(f.GetIngressAllowedBy()) }),
		derived(cStrings, "egress_denied_by", "Policies (namespace/name) that denied the flow on egress.",
			func(f F) ([]string, bool) { return policyNames(f.GetEgressDeniedBy()) }),
		derived(cStrings, "ingress_denied_by", "Policies (namespace/name) that denied the flow on ingress.",
			func(f F) ([]string, bool) { return policyNames(f.GetIngressDeniedBy()) }),
		col(cUint32, "policy_match_type", "How the policy verdict matched (L3, L3/L4, L4, all); 0 when unknown.",
			func(f F) (uint32, bool) { return f.GetPolicyMatchType(), true }, func(f F, v uint32) { f.PolicyMatchType = v }).at("policy_match_type"),
		listCol("policy_log", "Policy log values of the matching policies.",
			func(f F) []string { return f.GetPolicyLog() }, func(f F, v []string) { f.PolicyLog = v }).at("policy_log"),
		enumCol("auth_type", "Mutual authentication used (SPIRE, ...); NULL when disabled.", flowpb.AuthType_value,
			func(f F) flowpb.AuthType { return f.GetAuthType() }, func(f F, v flowpb.AuthType) { f.AuthType = v }).at("auth_type"),
		col(cUint32, "proxy_port", "Port of the L7 proxy the flow was redirected to; 0 when none.",
			func(f F) (uint32, bool) { return f.GetProxyPort(), true }, func(f F, v uint32) { f.ProxyPort = v }).at("proxy_port"),
		strCol("trace_id", "Distributed-tracing trace ID (traceparent) of an L7 flow.",
			func(f F) string { return f.GetTraceContext().GetParent().GetTraceId() },
			func(f F, v string) {
				if f.TraceContext == nil {
					f.TraceContext = &flowpb.TraceContext{}
				}
				if f.TraceContext.Parent == nil {
					f.TraceContext.Parent = &flowpb.TraceParent{}
				}
				f.TraceContext.Parent.TraceId = v
			}).at("trace_context.parent.trace_id"),
		col(cUint32, "interface_index", "Network interface index (of a trace at a device); NULL when absent.",
			func(f F) (uint32, bool) { i := f.GetInterface(); return i.GetIndex(), i != nil },
			func(f F, v uint32) {
				if f.Interface == nil {
					f.Interface = &flowpb.NetworkInterface{}
				}
				f.Interface.Index = v
			}).at("interface.index"),
		strCol("interface_name", "Network interface name.",
			func(f F) string { return f.GetInterface().GetName() },
			func(f F, v string) {
				if f.Interface == nil {
					f.Interface = &flowpb.NetworkInterface{}
				}
				f.Interface.Name = v
			}).at("interface.name"),
		enumCol("sock_xlate_point", "Socket-LB translation point of SOCK flows.", flowpb.SocketTranslationPoint_value,
			func(f F) flowpb.SocketTranslationPoint { return f.GetSockXlatePoint() },
			func(f F, v flowpb.SocketTranslationPoint) { f.SockXlatePoint = v }).at("sock_xlate_point"),
		col(cUint64, "socket_cookie", "Kernel socket cookie (SOCK flows); 0 when none.",
			func(f F) (uint64, bool) { return f.GetSocketCookie(), true }, func(f F, v uint64) { f.SocketCookie = v }).at("socket_cookie"),
		col(cUint64, "cgroup_id", "cgroup ID of the socket's process (SOCK flows); 0 when none.",
			func(f F) (uint64, bool) { return f.GetCgroupId(), true }, func(f F, v uint64) { f.CgroupId = v }).at("cgroup_id"),
		enumCol("debug_capture_point", "Debug capture point of debug-capture flows.", flowpb.DebugCapturePoint_value,
			func(f F) flowpb.DebugCapturePoint { return f.GetDebugCapturePoint() },
			func(f F, v flowpb.DebugCapturePoint) { f.DebugCapturePoint = v }).at("debug_capture_point"),
		strCol("emitter_name", "Name of the component that emitted the flow.",
			func(f F) string { return f.GetEmitter().GetName() },
			func(f F, v string) {
				if f.Emitter == nil {
					f.Emitter = &flowpb.Emitter{}
				}
				f.Emitter.Name = v
			}).at("emitter.name"),
		strCol("emitter_version", "Version of that component.",
			func(f F) string { return f.GetEmitter().GetVersion() },
			func(f F, v string) {
				if f.Emitter == nil {
					f.Emitter = &flowpb.Emitter{}
				}
				f.Emitter.Version = v
			}).at("emitter.version"),
		strCol("summary", "Human-readable summary of older Cilium versions (deprecated by Cilium).",
			func(f F) string { return f.GetSummary() }, func(f F, v string) { f.Summary = v }).at("Summary"),
	)
	return cols
}
