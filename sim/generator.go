package sim

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	flowpb "github.com/cilium/cilium/api/v1/flow"
)

// generator produces the cluster's flows in time order. It simulates one
// loadgenerator task at a time (with every call it causes), queues the flows
// those produce, and releases a flow once no later task can produce an
// earlier one.
type generator struct {
	rng   *rand.Rand
	topo  *Topology
	scen  Scenario
	start int64   // simulated start, ns since the Unix epoch
	rate  float64 // target flows per simulated second

	nextTask int64
	q        flowQueue
	seq      uint64

	conns    map[[2]*Pod]openConn // open connections by client and server pod
	dnsCache map[dnsKey]int64     // resolved name -> expiry
	bgPods   []*Pod               // pods doing periodic external lookups
	bgNext   []int64
	nextScan int64
	world    *Pod
	ext      externals
	// nextBeacon is when currencyservice next calls home (egress.go);
	// never outside the incident.
	nextBeacon int64
	beacons    int
}

type openConn struct {
	closeAt int64
	sport   uint32
}

type dnsKey struct {
	pod  *Pod
	name string
}

// item is a queued flow and what it means for the truth.
type item struct {
	at   int64
	seq  uint64
	flow *flowpb.Flow
	rec  *record
}

type flowQueue []*item

func (q flowQueue) Len() int { return len(q) }
func (q flowQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q flowQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *flowQueue) Push(x any)   { *q = append(*q, x.(*item)) }
func (q *flowQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return it
}

func newGenerator(topo *Topology, scen Scenario, start int64, rate float64, rng *rand.Rand) *generator {
	g := &generator{rng: rng, topo: topo, scen: scen, start: start, rate: rate, nextTask: start,
		conns: map[[2]*Pod]openConn{}, dnsCache: map[dnsKey]int64{}, nextScan: start + int64(3e9)}
	for _, s := range topo.Order {
		switch s.Name {
		case "loadgenerator", "kube-dns", "redis-cart":
			continue
		}
		for _, p := range s.Pods {
			g.bgPods = append(g.bgPods, p)
			g.bgNext = append(g.bgNext, start+int64(rng.IntN(60_000))*1e6)
		}
	}
	worldSvc := &Service{Name: "world", Identity: 2}
	g.world = &Pod{IP: "203.0.113.7", Service: worldSvc, Node: topo.Nodes[0]}
	g.ext = newExternals(topo)
	g.nextBeacon = math.MaxInt64
	if scen.Name == "incident" {
		g.nextBeacon = start + int64(scen.IncidentAt) + int64(rng.IntN(5000))*1e6
	}
	return g
}

// next returns the next flow in time order, with its time and truth record.
func (g *generator) next() *item {
	for {
		bg := g.nextBackground()
		frontier := min(bg, g.nextTask)
		if g.q.Len() > 0 && g.q[0].at < frontier {
			break
		}
		if bg <= g.nextTask {
			g.background(bg)
			continue
		}
		before := g.seq
		t := g.nextTask
		g.loadgenTask(t)
		n := float64(g.seq - before)
		// Space tasks so that flows/s follows the rate: a task that made n
		// flows is followed, on average, n/rate seconds later.
		gap := int64(g.rng.ExpFloat64() * max(n, 1) / g.rate * 1e9)
		g.nextTask = t + max(gap, 1)
	}
	return heap.Pop(&g.q).(*item)
}

// nextBackground is when the next periodic event is due.
func (g *generator) nextBackground() int64 {
	t := min(g.nextScan, g.nextBeacon)
	for _, n := range g.bgNext {
		t = min(t, n)
	}
	return t
}

func (g *generator) emit(f *flowpb.Flow, rec *record) *item {
	g.seq++
	it := &item{at: f.GetTime().GetSeconds()*1e9 + int64(f.GetTime().GetNanos()), seq: g.seq, flow: f, rec: rec}
	heap.Push(&g.q, it)
	return it
}

// hop is the one-way network delay between two pods.
func (g *generator) hop(a, b *Pod) int64 {
	if a.Node == b.Node {
		return roundUs(int64(40e3 + g.rng.Float64()*40e3))
	}
	return roundUs(int64(180e3 + g.rng.Float64()*150e3))
}

func (g *generator) ephemeralPort() uint32 { return 32768 + uint32(g.rng.IntN(28000)) }

// rpc is a gRPC call from pod to a service.
func (g *generator) rpc(pod *Pod, service, method string, t int64) (int64, uint32) {
	s := g.topo.Services[service]
	url := fmt.Sprintf("http://%s:%d/%s/%s", s.Name, s.Port, s.GRPCName, method)
	return g.call(pod, s, "POST", url, "HTTP/2", t, func(srv *Pod, at int64) (int64, uint32) { return g.serve(srv, method, at) })
}

// httpCall is an HTTP/1.1 request from the loadgenerator to the frontend.
func (g *generator) httpCall(pod *Pod, method, path string, t int64) (int64, uint32) {
	s := g.topo.Services["frontend"]
	url := "http://frontend:80" + path
	return g.call(pod, s, method, url, "HTTP/1.1", t, func(srv *Pod, at int64) (int64, uint32) { return g.frontend(srv, method, path, at) })
}

// call simulates client calling service s at t: name resolution, the
// connection, the four L7 flows (request and response at the client's egress
// proxy and at the server's ingress proxy), and the server's own work.
func (g *generator) call(client *Pod, s *Service, method, url, proto string, t int64,
	handle func(*Pod, int64) (int64, uint32)) (int64, uint32) {
	t = g.resolve(client, s.Name+"."+s.Namespace+".svc.cluster.local.", s.ClusterIP, t)
	srv := s.Pods[g.rng.IntN(len(s.Pods))]
	c := &conn{client: client, server: srv, dport: s.Port}
	reqID := uuid(g.rng)
	hdrs := headers(":authority", s.Name+":"+strconv.Itoa(int(s.Port)), "X-Request-Id", reqID)
	if proto == "HTTP/2" {
		hdrs = append(hdrs, headers("Content-Type", "application/grpc", "Te", "trailers", "User-Agent", "grpc-go/1.70.0")...)
	} else {
		hdrs = append(hdrs, headers("User-Agent", "python-requests/2.32.3", "Accept", "*/*")...)
	}
	reqL7 := func() *flowpb.Layer7 {
		return &flowpb.Layer7{Type: flowpb.L7FlowType_REQUEST, Record: &flowpb.Layer7_Http{Http: &flowpb.HTTP{
			Method: method, Url: url, Protocol: proto, Headers: hdrs}}}
	}
	respL7 := func(code uint32, latency int64) *flowpb.Layer7 {
		return &flowpb.Layer7{Type: flowpb.L7FlowType_RESPONSE, LatencyNs: uint64(latency), Record: &flowpb.Layer7_Http{Http: &flowpb.HTTP{
			Code: code, Method: method, Url: url, Protocol: proto, Headers: hdrs}}}
	}
	edge := edgeOf(client.Service, s, method, url)
	denied := g.denied(client.Service, s, t)
	if denied {
		c.sport = g.ephemeralPort()
	} else {
		t, c.sport = g.connect(client, srv, s, t)
	}
	g.emit(g.l7Flow(c, t, false, false, reqL7()), nil)

	if denied {
		// The client's proxy cannot connect: both SYNs are dropped by the
		// deny policy and Envoy answers 503 after its connect timeout.
		d := g.hop(client, srv)
		g.emit(g.dropFlow(c, t+d, flowpb.DropReason_POLICY_DENY, g.scen.DenyPolicy), &record{kind: recDrop, edge: edge, reason: "POLICY_DENY"})
		g.emit(g.dropFlow(c, t+d+int64(1e9), flowpb.DropReason_POLICY_DENY, g.scen.DenyPolicy), &record{kind: recDrop, edge: edge, reason: "POLICY_DENY"})
		end := t + roundUs(int64(1e9)+int64(g.rng.IntN(200_000))*1e3)
		g.emit(g.l7Flow(c, end, false, true, respL7(503, end-t)), &record{kind: recRequest, edge: edge, code: 503, latency: end - t, reporter: "client"})
		return end, 503
	}
	d := g.hop(client, srv)
	atSrv := t + d
	srvReq := g.emit(g.l7Flow(c, atSrv, true, false, reqL7()), nil)
	end, code := handle(srv, atSrv+roundUs(20e3))
	if code == 0 {
		// Never answered: the request is all anyone sees.
		srvReq.rec = &record{kind: recNoResponse, edge: edge, reporter: "server"}
		return end, 0
	}
	g.emit(g.l7Flow(c, end, true, true, respL7(code, end-atSrv)), &record{kind: recRequest, edge: edge, code: code, latency: end - atSrv, reporter: "server"})
	g.emit(g.l7Flow(c, end+d, false, true, respL7(code, end+d-t)), nil)
	return end + d, code
}

func (g *generator) denied(from, to *Service, t int64) bool {
	return g.scen.DenyPolicy != nil && g.scen.incident(t-g.start) &&
		from.Name == "recommendationservice" && to.Name == "productcatalogservice"
}

// connect makes sure a TCP connection from client to srv is open at t,
// opening one (and scheduling its close) when needed; it returns when the
// client can send, and the client's port.
func (g *generator) connect(client, srv *Pod, s *Service, t int64) (int64, uint32) {
	key := [2]*Pod{client, srv}
	if oc, ok := g.conns[key]; ok && oc.closeAt > t {
		return t, oc.sport
	}
	var lifetime int64
	switch {
	case client.Service.Name == "loadgenerator":
		lifetime = int64(5+g.rng.IntN(25)) * 1e9
	default:
		lifetime = int64(120+g.rng.IntN(480)) * 1e9
	}
	c := &conn{client: client, server: srv, sport: g.ephemeralPort(), dport: s.Port}
	t = g.handshake(c, t, edgeOf(client.Service, s, "", ""))
	closeAt := t + lifetime
	g.conns[key] = openConn{closeAt: closeAt, sport: c.sport}
	g.teardown(c, closeAt)
	return t, c.sport
}

// handshake emits SYN, SYN-ACK and ACK, each leaving the sender's pod and
// arriving at the receiver's pod.
func (g *generator) handshake(c *conn, t int64, e edge) int64 {
	d := g.hop(c.client, c.server)
	g.emit(g.traceFlow(c, t, false, false, &flowpb.TCPFlags{SYN: true}, flowpb.TraceReason_NEW), &record{kind: recConnect, edge: e})
	g.emit(g.traceFlow(c, t+d, false, true, &flowpb.TCPFlags{SYN: true}, flowpb.TraceReason_NEW), nil)
	g.emit(g.traceFlow(c, t+d+1000, true, false, &flowpb.TCPFlags{SYN: true, ACK: true}, flowpb.TraceReason_REPLY), nil)
	g.emit(g.traceFlow(c, t+2*d+1000, true, true, &flowpb.TCPFlags{SYN: true, ACK: true}, flowpb.TraceReason_REPLY), nil)
	g.emit(g.traceFlow(c, t+2*d+2000, false, false, &flowpb.TCPFlags{ACK: true}, flowpb.TraceReason_ESTABLISHED), nil)
	g.emit(g.traceFlow(c, t+3*d+2000, false, true, &flowpb.TCPFlags{ACK: true}, flowpb.TraceReason_ESTABLISHED), nil)
	return t + 2*d + 2000
}

// teardown closes c at t: mostly FIN in both directions, sometimes a reset
// from the server (an idle timeout, a restarted worker).
func (g *generator) teardown(c *conn, t int64) {
	d := g.hop(c.client, c.server)
	if g.rng.Float64() < 0.05 {
		g.emit(g.traceFlow(c, t, true, false, &flowpb.TCPFlags{RST: true}, flowpb.TraceReason_REPLY), nil)
		g.emit(g.traceFlow(c, t+d, true, true, &flowpb.TCPFlags{RST: true}, flowpb.TraceReason_REPLY), nil)
		return
	}
	g.emit(g.traceFlow(c, t, false, false, &flowpb.TCPFlags{FIN: true, ACK: true}, flowpb.TraceReason_ESTABLISHED), nil)
	g.emit(g.traceFlow(c, t+d, false, true, &flowpb.TCPFlags{FIN: true, ACK: true}, flowpb.TraceReason_ESTABLISHED), nil)
	g.emit(g.traceFlow(c, t+d+1000, true, false, &flowpb.TCPFlags{FIN: true, ACK: true}, flowpb.TraceReason_REPLY), nil)
	g.emit(g.traceFlow(c, t+2*d+1000, true, true, &flowpb.TCPFlags{FIN: true, ACK: true}, flowpb.TraceReason_REPLY), nil)
}

// redis is cartservice's round trip to redis-cart: plain TCP, no L7
// visibility; the client library opens a fresh connection now and then.
func (g *generator) redis(cart *Pod, t int64) int64 {
	s := g.topo.Services["redis-cart"]
	srv := s.Pods[0]
	if g.rng.Float64() < 0.2 {
		c := &conn{client: cart, server: srv, sport: g.ephemeralPort(), dport: s.Port}
		t = g.handshake(c, t, edgeOf(cart.Service, s, "", ""))
		g.teardown(c, t+int64(2e9))
	}
	return t + 2*g.hop(cart, srv) + g.serviceTime(0.15, 0.2)
}

// resolve looks name up from pod unless its resolver cache still holds it.
func (g *generator) resolve(pod *Pod, name, ip string, t int64) int64 {
	k := dnsKey{pod, name}
	if exp, ok := g.dnsCache[k]; ok && exp > t {
		return t
	}
	t = g.lookup(pod, name, 0, []string{ip}, t)
	g.dnsCache[k] = t + 30e9
	return t
}

// lookup emits one DNS query and its answer through the DNS proxy on the
// client's node.
func (g *generator) lookup(pod *Pod, name string, rcode uint32, ips []string, t int64) int64 {
	dns := g.topo.Services["kube-dns"]
	srv := dns.Pods[g.rng.IntN(len(dns.Pods))]
	c := &conn{client: pod, server: srv, sport: g.ephemeralPort(), dport: 53, udp: true}
	g.emit(g.l7Flow(c, t, false, false, &flowpb.Layer7{Type: flowpb.L7FlowType_REQUEST, Record: &flowpb.Layer7_Dns{Dns: &flowpb.DNS{
		Query: name, Qtypes: []string{"A"}, ObservationSource: "proxy"}}}), nil)
	lat := roundUs(int64(300e3 + g.rng.Float64()*900e3))
	resp := &flowpb.DNS{Query: name, Rcode: rcode, Qtypes: []string{"A"}, ObservationSource: "proxy"}
	if rcode == 0 {
		resp.Ips, resp.Rrtypes, resp.Ttl = ips, []string{"A"}, 30
	}
	g.emit(g.l7Flow(c, t+lat, false, true, &flowpb.Layer7{Type: flowpb.L7FlowType_RESPONSE, LatencyNs: uint64(lat), Record: &flowpb.Layer7_Dns{Dns: resp}}),
		&record{kind: recDNS, edge: edgeOf(pod.Service, dns, "", ""), query: name, code: rcode})
	return t + lat
}

// background runs the periodic work due before t: pods looking up the GCE
// metadata server through the ndots:5 search path (three NXDOMAIN answers
// before the real name), and the internet knocking at the frontend's SSH port.
func (g *generator) background(t int64) {
	for i, p := range g.bgPods {
		for g.bgNext[i] <= t {
			at := g.bgNext[i]
			for _, suffix := range []string{"default.svc.cluster.local.", "svc.cluster.local.", "cluster.local."} {
				at = g.lookup(p, "metadata.google.internal."+suffix, 3, nil, at)
			}
			g.lookup(p, "metadata.google.internal.", 0, []string{"169.254.169.254"}, at)
			g.bgNext[i] += 60e9
		}
	}
	for g.nextScan <= t {
		fe := g.topo.Services["frontend"]
		dst := fe.Pods[g.rng.IntN(len(fe.Pods))]
		c := &conn{client: g.world, server: dst, sport: g.ephemeralPort(), dport: 22}
		f := g.dropFlow(c, g.nextScan, flowpb.DropReason_POLICY_DENIED, nil)
		f.DestinationService = nil
		g.emit(f, &record{kind: recDrop, edge: edgeOf(g.world.Service, fe, "", ""), reason: "POLICY_DENIED"})
		g.nextScan += int64(5+g.rng.IntN(20)) * 1e9
	}
	for g.nextBeacon <= t {
		g.beacon(g.nextBeacon)
		g.nextBeacon = g.nextBeaconAfter(g.nextBeacon)
	}
}
