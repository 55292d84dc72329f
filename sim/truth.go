package sim

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"sort"
	"strconv"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
)

type recKind int

const (
	recRequest    recKind = iota // a request answered (the flow is its response)
	recNoResponse                // a request never answered
	recDrop                      // a dropped packet
	recDNS                       // a DNS answer
	recConnect                   // a TCP connection opened (its SYN)
	recEgress                    // a flow to or from outside the cluster
)

type edge struct {
	src, dst    *Service
	method, url string
}

func edgeOf(src, dst *Service, method, url string) edge {
	return edge{src: src, dst: dst, method: method, url: url}
}

// record is what a queued flow means for the truth; it is counted when the
// flow is emitted, so the truth covers exactly the flows that were served.
type record struct {
	kind     recKind
	edge     edge
	code     uint32
	latency  int64
	reporter string // server, or client where no server saw the request
	reason   string
	query    string
	egress   egressKey // recEgress
	syn      bool      // recEgress: the flow opens a connection
}

// egressKey is what `flowtape analyze egress` groups by: the client, the
// destination (its DNS name, else its address), address and port.
type egressKey struct {
	src      *Service
	dst, ip  string
	port     uint32
	protocol string
	verdict  string
}

func egressKeyOf(c *conn) egressKey {
	dst := c.server.IP
	if len(c.names) > 0 {
		dst = c.names[0]
	}
	return egressKey{src: c.client.Service, dst: dst, ip: c.server.IP, port: c.dport, protocol: "TCP", verdict: "FORWARDED"}
}

// Truth is what the simulation produced, for checking analyses against.
// Requests are counted once, at the server's proxy (or at the client's
// where the request never reached a server), when the response was seen.
// Latencies are the proxy's latency_ns on that response; quantiles are
// nearest-rank (the smallest value with at least q of the values at or below it).
type Truth struct {
	Scenario       string            `json:"scenario"`
	Seed           uint64            `json:"seed"`
	Rate           float64           `json:"rate"`
	Start          time.Time         `json:"start"`
	End            time.Time         `json:"end"`
	IncidentStart  *time.Time        `json:"incident_start,omitempty"`
	QuantileMethod string            `json:"quantile_method"`
	LatencyResNs   int64             `json:"latency_resolution_ns"`
	BucketSeconds  int               `json:"bucket_seconds"`
	Flows          uint64            `json:"flows"`
	FlowsByNode    map[string]uint64 `json:"flows_by_node"`
	Services       []ServiceTruth    `json:"services"`
	Edges          []EdgeTruth       `json:"edges"`
	DNS            []DNSTruth        `json:"dns"`
	Egress         []EgressTruth     `json:"egress"`
	Buckets        []BucketTruth     `json:"buckets"`
}

// Stats are request, error, latency and drop counts of a service or edge.
type Stats struct {
	Requests     uint64            `json:"requests"`
	Errors       uint64            `json:"errors"`        // 5xx, and gRPC calls not answered 200
	ClientErrors uint64            `json:"client_errors"` // 4xx
	NoResponse   uint64            `json:"no_response"`
	Codes        map[string]uint64 `json:"codes"`
	P50Ms        float64           `json:"p50_ms"`
	P90Ms        float64           `json:"p90_ms"`
	P95Ms        float64           `json:"p95_ms"`
	P99Ms        float64           `json:"p99_ms"`
	MaxMs        float64           `json:"max_ms"`
	Drops        map[string]uint64 `json:"drops"` // by drop reason
	Connections  uint64            `json:"connections"`
}

// ServiceTruth is one service (workload): what it served and what was dropped on the way to it.
type ServiceTruth struct {
	Service   string `json:"service"`
	Namespace string `json:"namespace"`
	Stats
}

// EdgeTruth is one caller -> callee pair.
type EdgeTruth struct {
	Source               string `json:"source"`
	SourceNamespace      string `json:"source_namespace"`
	Destination          string `json:"destination"`
	DestinationNamespace string `json:"destination_namespace"`
	Reporter             string `json:"reporter"`
	Stats
}

// DNSTruth is one client's DNS answers by response code.
type DNSTruth struct {
	Client    string            `json:"client"`
	Namespace string            `json:"namespace"`
	Queries   uint64            `json:"queries"`
	Rcodes    map[string]uint64 `json:"rcodes"`
}

// EgressTruth is one client's traffic to one destination outside the
// cluster, port and protocol: every flow of it (both directions), the
// connections it opened (SYNs), and when it was first and last seen.
type EgressTruth struct {
	Source      string    `json:"source"`
	Namespace   string    `json:"namespace"`
	Destination string    `json:"destination"` // the DNS name, else the address
	IP          string    `json:"ip"`
	Port        uint32    `json:"port"`
	Protocol    string    `json:"protocol"`
	Verdict     string    `json:"verdict"`
	Flows       uint64    `json:"flows"`
	Connections uint64    `json:"connections"`
	First       time.Time `json:"first"`
	Last        time.Time `json:"last"`
}

// BucketTruth is one time bucket.
type BucketTruth struct {
	Start    time.Time `json:"start"`
	Flows    uint64    `json:"flows"`
	Requests uint64    `json:"requests"`
	Errors   uint64    `json:"errors"`
	Drops    uint64    `json:"drops"`
}

type acc struct {
	Stats
	lat       []int64
	reporters map[string]bool
}

func (a *acc) add(r *record) {
	if a.Codes == nil {
		a.Codes, a.Drops, a.reporters = map[string]uint64{}, map[string]uint64{}, map[string]bool{}
	}
	switch r.kind {
	case recRequest:
		a.Requests++
		a.Codes[strconv.Itoa(int(r.code))]++
		if isError(r) {
			a.Errors++
		} else if r.code >= 400 && r.code < 500 {
			a.ClientErrors++
		}
		a.lat = append(a.lat, r.latency)
		a.reporters[r.reporter] = true
	case recDrop:
		a.Drops[r.reason]++
	case recConnect:
		a.Connections++
	}
}

func isError(r *record) bool {
	return r.code >= 500 || r.edge.dst.Proto == GRPC && r.code != 200
}

func (a *acc) finish() Stats {
	s := a.Stats
	if len(a.lat) > 0 {
		sort.Slice(a.lat, func(i, j int) bool { return a.lat[i] < a.lat[j] })
		s.P50Ms, s.P90Ms, s.P95Ms, s.P99Ms = ms(quantile(a.lat, 0.5)), ms(quantile(a.lat, 0.9)), ms(quantile(a.lat, 0.95)), ms(quantile(a.lat, 0.99))
		s.MaxMs = ms(a.lat[len(a.lat)-1])
	}
	return s
}

// quantile is the nearest-rank quantile of sorted values.
func quantile(sorted []int64, q float64) int64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

type edgeKey struct{ src, dst *Service }

// accOf is m's accumulator of k, added when missing.
func accOf[K comparable](m map[K]*acc, k K) *acc {
	a := m[k]
	if a == nil {
		a = &acc{}
		m[k] = a
	}
	return a
}

// truthAcc accumulates the truth while flows are emitted.
type truthAcc struct {
	t        Truth
	services map[*Service]*acc
	edges    map[edgeKey]*acc
	dns      map[*Service]*DNSTruth
	egress   map[egressKey]*EgressTruth
	buckets  map[int64]*BucketTruth
	// Requests never answered wait here until the truth is read: one
	// still in flight when the recording ended is not unanswered (see
	// unanswered).
	noResponse []*record
	noRespAt   []int64
	lastL7     int64 // the last HTTP or gRPC flow
	maxLatency int64 // the longest latency of an HTTP or gRPC response
}

func newTruthAcc(scen Scenario, seed uint64, rate float64, start int64) *truthAcc {
	t := Truth{Scenario: scen.Name, Seed: seed, Rate: rate, Start: time.Unix(0, start).UTC(), QuantileMethod: "nearest-rank",
		LatencyResNs: 1000, BucketSeconds: 60, FlowsByNode: map[string]uint64{}}
	if scen.Name == "incident" {
		is := time.Unix(0, start).Add(scen.IncidentAt).UTC()
		t.IncidentStart = &is
	}
	return &truthAcc{t: t, services: map[*Service]*acc{}, edges: map[edgeKey]*acc{}, dns: map[*Service]*DNSTruth{}, egress: map[egressKey]*EgressTruth{}, buckets: map[int64]*BucketTruth{}}
}

func (ta *truthAcc) observe(at int64, f *flowpb.Flow, r *record) {
	node := f.GetNodeName()
	if l7 := f.GetL7(); l7 != nil && l7.GetHttp() != nil {
		ta.lastL7 = max(ta.lastL7, at)
		ta.maxLatency = max(ta.maxLatency, int64(l7.GetLatencyNs()))
	}
	ta.t.Flows++
	ta.t.FlowsByNode[node]++
	bs := int64(ta.t.BucketSeconds) * 1e9
	bk := at / bs * bs
	b := ta.buckets[bk]
	if b == nil {
		b = &BucketTruth{Start: time.Unix(0, bk).UTC()}
		ta.buckets[bk] = b
	}
	b.Flows++
	if at > ta.t.End.UnixNano() || ta.t.End.IsZero() {
		ta.t.End = time.Unix(0, at).UTC()
	}
	if r == nil {
		return
	}
	switch r.kind {
	case recDNS:
		d := ta.dns[r.edge.src]
		if d == nil {
			d = &DNSTruth{Client: r.edge.src.Name, Namespace: r.edge.src.Namespace, Rcodes: map[string]uint64{}}
			ta.dns[r.edge.src] = d
		}
		d.Queries++
		d.Rcodes[strconv.Itoa(int(r.code))]++
		return
	case recEgress:
		k := r.egress
		e := ta.egress[k]
		if e == nil {
			e = &EgressTruth{Source: k.src.Name, Namespace: k.src.Namespace, Destination: k.dst, IP: k.ip, Port: k.port,
				Protocol: k.protocol, Verdict: k.verdict, First: time.Unix(0, at).UTC()}
			ta.egress[k] = e
		}
		e.Flows++
		if r.syn {
			e.Connections++
		}
		e.Last = time.Unix(0, at).UTC()
		return
	case recNoResponse:
		ta.noResponse, ta.noRespAt = append(ta.noResponse, r), append(ta.noRespAt, at)
		return
	case recRequest:
		b.Requests++
		if r.kind == recRequest && isError(r) {
			b.Errors++
		}
	case recDrop:
		b.Drops++
	}
	svc := ta.services[r.edge.dst]
	if svc == nil {
		svc = &acc{}
		ta.services[r.edge.dst] = svc
	}
	svc.add(r)
	ek := edgeKey{r.edge.src, r.edge.dst}
	e := ta.edges[ek]
	if e == nil {
		e = &acc{}
		ta.edges[ek] = e
	}
	e.add(r)
}

// unanswered are the requests never answered that were older, when the
// last HTTP or gRPC flow was seen, than the longest latency of any
// response (at least a second): a younger one may still have been
// answered, as the requests view rules (analyze/sql/views/requests.sql).
func (ta *truthAcc) unanswered() (rs []*record, at []int64) {
	horizon := ta.lastL7 - max(ta.maxLatency/1000*1000, int64(1e9))
	for i, r := range ta.noResponse {
		if ta.noRespAt[i] < horizon {
			rs, at = append(rs, r), append(at, ta.noRespAt[i])
		}
	}
	return rs, at
}

// result returns the truth so far, in a stable order.
func (ta *truthAcc) result() Truth {
	t := ta.t
	services, edges, buckets := map[*Service]*acc{}, map[edgeKey]*acc{}, map[int64]*BucketTruth{}
	for k, a := range ta.services {
		c := *a
		services[k] = &c
	}
	for k, a := range ta.edges {
		c := *a
		edges[k] = &c
	}
	for k, b := range ta.buckets {
		c := *b
		buckets[k] = &c
	}
	rs, ats := ta.unanswered()
	bs := int64(ta.t.BucketSeconds) * 1e9
	for i, r := range rs {
		b := buckets[ats[i]/bs*bs]
		b.Requests++
		for _, a := range []*acc{accOf(services, r.edge.dst), accOf(edges, edgeKey{r.edge.src, r.edge.dst})} {
			a.Requests++
			a.NoResponse++
			if a.reporters == nil {
				a.Codes, a.Drops, a.reporters = map[string]uint64{}, map[string]uint64{}, map[string]bool{}
			} else {
				a.reporters = maps.Clone(a.reporters)
			}
			a.reporters[r.reporter] = true
		}
	}
	t.Services, t.Edges, t.DNS, t.Egress, t.Buckets = nil, nil, nil, nil, nil
	for s, a := range services {
		t.Services = append(t.Services, ServiceTruth{Service: s.Name, Namespace: s.Namespace, Stats: a.finish()})
	}
	sort.Slice(t.Services, func(i, j int) bool { return t.Services[i].Service < t.Services[j].Service })
	for k, a := range edges {
		rep := "server"
		if a.reporters != nil && !a.reporters["server"] && a.reporters["client"] {
			rep = "client"
		}
		t.Edges = append(t.Edges, EdgeTruth{Source: k.src.Name, SourceNamespace: k.src.Namespace,
			Destination: k.dst.Name, DestinationNamespace: k.dst.Namespace, Reporter: rep, Stats: a.finish()})
	}
	sort.Slice(t.Edges, func(i, j int) bool {
		if t.Edges[i].Source != t.Edges[j].Source {
			return t.Edges[i].Source < t.Edges[j].Source
		}
		return t.Edges[i].Destination < t.Edges[j].Destination
	})
	for _, d := range ta.dns {
		t.DNS = append(t.DNS, *d)
	}
	sort.Slice(t.DNS, func(i, j int) bool { return t.DNS[i].Client < t.DNS[j].Client })
	for _, e := range ta.egress {
		t.Egress = append(t.Egress, *e)
	}
	sort.Slice(t.Egress, func(i, j int) bool {
		a, b := t.Egress[i], t.Egress[j]
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		if a.Destination != b.Destination {
			return a.Destination < b.Destination
		}
		return a.Port < b.Port
	})
	for _, b := range buckets {
		t.Buckets = append(t.Buckets, *b)
	}
	sort.Slice(t.Buckets, func(i, j int) bool { return t.Buckets[i].Start.Before(t.Buckets[j].Start) })
	return t
}

// WriteFile writes the truth as indented JSON.
func (t Truth) WriteFile(path string) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fmt.Errorf("encode truth: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write truth: %w", err)
	}
	return nil
}

// Service returns the truth of a service by name.
func (t Truth) Service(name string) (ServiceTruth, bool) {
	for _, s := range t.Services {
		if s.Service == name {
			return s, true
		}
	}
	return ServiceTruth{}, false
}

// Edge returns the truth of an edge by source and destination name.
func (t Truth) Edge(src, dst string) (EdgeTruth, bool) {
	for _, e := range t.Edges {
		if e.Source == src && e.Destination == dst {
			return e, true
		}
	}
	return EdgeTruth{}, false
}
