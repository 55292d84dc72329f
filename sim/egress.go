package sim

import (
	"math"
	"strings"

	flowpb "github.com/cilium/cilium/api/v1/flow"
)

// Egress: the simulated cluster's traffic to the outside world, what
// `flowtape analyze egress` looks for. Three destinations, each named the
// way a real cluster would show it:
//
//   - paymentservice charges cards at a payment provider (api.stripe.com,
//     HTTPS) over a kept-alive connection, the name looked up through the
//     DNS proxy; an FQDN policy allows it, so the address has an FQDN
//     identity (local scope, 16777217) and the flows carry the name
//     (destination_names, from the agent's FQDN cache).
//   - emailservice hands each order confirmation to a mail relay
//     (smtp.sendgrid.net, submission port 587), one connection a message;
//     the address is plain world (identity 2), the flows still carry the
//     name the pod looked up.
//   - During the incident, currencyservice (a Node.js service: a
//     compromised npm dependency is the classic story) opens a connection
//     to a bare address, 203.0.113.66:4444, every 10 to 20 seconds from
//     each pod. Nobody looked it up: no name, world identity, and nothing
//     drops it.
//
// Only the client's node sees these flows (FROM_ENDPOINT for what the pod
// sends, TO_ENDPOINT for what comes back): no agent runs at the far end.
// The addresses are documentation ranges (RFC 5737).

// external is a destination outside the cluster.
type external struct {
	host *Pod   // its address, as a pod with no endpoint (see Pod.Endpoint)
	name string // the FQDN pods look it up by (trailing dot); "" for none
	port uint32
}

// Identities Cilium gives addresses outside the cluster (pkg/identity): the
// reserved world identity, and the first local-scope identity, which
// Cilium allocates to CIDR and FQDN selections.
const (
	identityWorld     = 2
	identityLocalBase = 1 << 24
)

func newExternal(topo *Topology, name, ip string, port, identity uint32, labels ...string) *external {
	svc := &Service{Name: "world", Identity: identity}
	host := &Pod{IP: ip, Service: svc, Node: topo.Nodes[0], extLabels: append(labels, "reserved:world")}
	return &external{host: host, name: name, port: port}
}

// externals are the destinations of the simulated egress.
type externals struct {
	payments, mail, beacon *external
}

func newExternals(topo *Topology) externals {
	return externals{
		payments: newExternal(topo, "api.stripe.com.", "198.51.100.10", 443, identityLocalBase+1, "fqdn:api.stripe.com"),
		mail:     newExternal(topo, "smtp.sendgrid.net.", "198.51.100.25", 587, identityWorld),
		beacon:   newExternal(topo, "", "203.0.113.66", 4444, identityWorld),
	}
}

// egressCall is one request from pod to x over a connection: kept alive
// (and reused while open) or opened and closed for the request; it returns
// when the answer is back. work is the far end's processing time.
func (g *generator) egressCall(pod *Pod, x *external, keepAlive bool, work, t int64) int64 {
	if x.name != "" {
		t = g.resolve(pod, x.name, x.host.IP, t)
	}
	rtt := 2 * g.egressHop()
	if keepAlive {
		key := [2]*Pod{pod, x.host}
		if oc, ok := g.conns[key]; ok && oc.closeAt > t {
			return t + rtt + work
		}
		c := g.egressConn(pod, x)
		t = g.egressHandshake(c, t)
		closeAt := t + int64(60+g.rng.IntN(240))*1e9
		g.conns[key] = openConn{closeAt: closeAt, sport: c.sport}
		g.egressTeardown(c, closeAt)
		return t + rtt + work
	}
	c := g.egressConn(pod, x)
	t = g.egressHandshake(c, t) + rtt + work
	g.egressTeardown(c, t)
	return t
}

func (g *generator) egressConn(pod *Pod, x *external) *conn {
	c := &conn{client: pod, server: x.host, sport: g.ephemeralPort(), dport: x.port}
	if x.name != "" {
		c.names = []string{strings.TrimSuffix(x.name, ".")}
	}
	return c
}

// egressHop is the one-way delay to a destination on the internet.
func (g *generator) egressHop() int64 {
	return roundUs(int64(8e6 + math.Abs(g.rng.NormFloat64())*3e6))
}

// egressFlow is one TCP segment of c as the client's node sees it.
func (g *generator) egressFlow(c *conn, at int64, reply bool, flags *flowpb.TCPFlags, reason flowpb.TraceReason) {
	// From the pod: leaving it (FROM_ENDPOINT); to the pod: arriving at it.
	f := g.traceFlow(c, at, reply, reply, flags, reason)
	g.emit(f, &record{kind: recEgress, egress: egressKeyOf(c), syn: flags.GetSYN() && !flags.GetACK()})
}

func (g *generator) egressHandshake(c *conn, t int64) int64 {
	d := g.egressHop()
	g.egressFlow(c, t, false, &flowpb.TCPFlags{SYN: true}, flowpb.TraceReason_NEW)
	g.egressFlow(c, t+2*d, true, &flowpb.TCPFlags{SYN: true, ACK: true}, flowpb.TraceReason_REPLY)
	g.egressFlow(c, t+2*d+1000, false, &flowpb.TCPFlags{ACK: true}, flowpb.TraceReason_ESTABLISHED)
	return t + 2*d + 1000
}

func (g *generator) egressTeardown(c *conn, t int64) {
	d := g.egressHop()
	g.egressFlow(c, t, false, &flowpb.TCPFlags{FIN: true, ACK: true}, flowpb.TraceReason_ESTABLISHED)
	g.egressFlow(c, t+2*d, true, &flowpb.TCPFlags{FIN: true, ACK: true}, flowpb.TraceReason_REPLY)
}

// beacon is currencyservice's call home during the incident, from each
// pod in turn.
func (g *generator) beacon(t int64) {
	pods := g.topo.Services["currencyservice"].Pods
	pod := pods[g.beacons%len(pods)]
	g.beacons++
	g.egressCall(pod, g.ext.beacon, false, g.serviceTime(5, 0.3), t)
}

// nextBeaconAfter is when the next beacon leaves after one at t: with two
// pods each calling every 10 to 20 s, 5 to 10 s apart.
func (g *generator) nextBeaconAfter(t int64) int64 {
	return t + int64(5000+g.rng.IntN(5000))*1e6
}
