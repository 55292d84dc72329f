package schema

import (
	"math"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// Derived are the derived rows of a batch of flows.
type Derived struct {
	Requests    []Request
	Connections []Connection
	Traffic     []TrafficCount
	Pods        []Pod
}

// Derive computes the derived rows of a batch of flow rows (a record batch
// with the columns DeriveColumns names, as the writer encodes them or a
// reader reads them, strings plain or dictionary-encoded). The rows may
// come in any order. Strings of the result share the batch's memory.
func Derive(rec arrow.RecordBatch) (Derived, error) {
	b, err := bindFlows(rec)
	if err != nil {
		return Derived{}, err
	}
	var d Derived
	edges := make([]edge, b.n)
	for i := range edges {
		edges[i] = b.edge(i)
	}
	d.Requests = deriveRequests(b)
	d.Connections = deriveConnections(b, edges)
	d.Traffic = deriveTraffic(b, edges)
	d.Pods = derivePods(b)
	return d, nil
}

// LatencyBucket is the latency_bucket of a latency: 16 buckets per
// doubling, in the order of the latencies, so that the analyses find a
// percentile's bucket from counts and sort only that bucket's values.
func LatencyBucket(ns uint64) int32 {
	if ns == 0 {
		return 0
	}
	return int32(math.Floor(math.Log2(float64(ns)) * 16))
}

// Requests: analyze/sql/views/requests.sql reads these rows; the pairing
// of a request with a response in another file, and the verdict on
// requests never answered, are made there.

// endpointKey is who a side of a call is, for pairing requests with
// responses and proxies with each other: its pod where it has one (the
// name a pod's flows carry may differ, see Pods), else its name. The views
// key the rows alike (ft_endpoint_key in analyze/sql/macros.sql).
type endpointKey struct {
	pod      bool
	ns, name string
}

func keyOf(ns, pod, name string) endpointKey {
	if pod != "" {
		return endpointKey{pod: true, ns: ns, name: pod}
	}
	return endpointKey{name: name}
}

// callKey is what pairs a request with its response: the same node, proxy
// side, X-Request-Id, client and server.
type callKey struct {
	id, node, reporter string
	client, server     endpointKey
}

// proxyKey is what tells that a server proxy saw a request a client proxy
// reported.
type proxyKey struct {
	id             string
	client, server endpointKey
}

func reporterOf(direction string) string {
	switch direction {
	case "EGRESS":
		return "client"
	case "INGRESS":
		return "server"
	}
	return ""
}

func deriveRequests(b *flowBatch) []Request {
	var out []Request
	var requests []int
	answered := map[callKey]bool{}
	server := map[proxyKey]bool{}
	for i := 0; i < b.n; i++ {
		if p := b.l7Proto(i); p != "http" && p != "grpc" {
			continue
		}
		response := false
		switch b.l7Type(i) {
		case "RESPONSE":
			response = true
		case "REQUEST":
		default:
			continue
		}
		reporter, id := reporterOf(b.dir(i)), b.reqID(i)
		// The call's client and server, whichever way the flow went.
		client, srv := keyOf(b.srcNs(i), b.srcPod(i), b.srcEp(i)), keyOf(b.dstNs(i), b.dstPod(i), b.dstEp(i))
		if response {
			client, srv = srv, client
		}
		if id != "" && reporter == "server" {
			server[proxyKey{id, client, srv}] = true
		}
		if !response {
			if id != "" {
				requests = append(requests, i)
			}
			continue
		}
		if id != "" {
			answered[callKey{id, b.node(i), reporter, client, srv}] = true
		}
		r := b.request(i, true)
		r.Status, r.HasStatus = b.httpCode(i)
		if lat, ok := b.latency(i); ok {
			r.LatencyNs = lat
		}
		grpc := r.Protocol == "grpc"
		r.Error = r.HasStatus && (r.Status >= 500 || grpc && r.Status != 200)
		r.ClientError = r.HasStatus && r.Status >= 400 && r.Status <= 499
		out = append(out, r)
	}
	for _, i := range requests {
		client, srv := keyOf(b.srcNs(i), b.srcPod(i), b.srcEp(i)), keyOf(b.dstNs(i), b.dstPod(i), b.dstEp(i))
		if answered[callKey{b.reqID(i), b.node(i), reporterOf(b.dir(i)), client, srv}] {
			continue
		}
		r := b.request(i, false)
		r.Open = true
		out = append(out, r)
	}
	for k := range out {
		r := &out[k]
		switch {
		case r.Reporter == "server":
			r.SeenByServer = True
		case r.RequestID != "" && server[proxyKey{r.RequestID, keyOf(r.ClientNamespace, r.ClientPod, r.Client), keyOf(r.ServerNamespace, r.ServerPod, r.Server)}]:
			r.SeenByServer = True
		}
	}
	return out
}

// request is the row of flow i, a response (endpoints swapped back) or a
// request.
func (b *flowBatch) request(i int, response bool) Request {
	r := Request{Time: b.time(i), NodeName: b.node(i), Reporter: reporterOf(b.dir(i)), RequestID: b.reqID(i),
		Method: b.method(i), URL: b.url(i), Protocol: b.l7Proto(i)}
	r.UUID, r.HasUUID = b.uuid(i)
	if response {
		r.Client, r.ClientNamespace, r.ClientPod, r.ClientIP = b.dstEp(i), b.dstNs(i), b.dstPod(i), b.ipDst(i)
		r.Server, r.ServerNamespace, r.ServerPod, r.ServerIP = b.srcEp(i), b.srcNs(i), b.srcPod(i), b.ipSrc(i)
		r.ServerPort, r.HasServerPort = b.srcPort(i)
	} else {
		r.Client, r.ClientNamespace, r.ClientPod, r.ClientIP = b.srcEp(i), b.srcNs(i), b.srcPod(i), b.ipSrc(i)
		r.Server, r.ServerNamespace, r.ServerPod, r.ServerIP = b.dstEp(i), b.dstNs(i), b.dstPod(i), b.ipDst(i)
		r.ServerPort, r.HasServerPort = b.dstPort(i)
	}
	r.Path = URLPath(r.URL)
	if r.Protocol == "grpc" {
		r.Path = strings.TrimLeft(r.Path, "/")
	}
	return r
}

// URLPath is the path of a URL without query string or fragment, the URL
// itself when it has none: ft_path of analyze/sql/macros.sql.
func URLPath(url string) string {
	rest := url
	if i := strings.Index(url, "://"); i >= 0 {
		rest = url[i+3:]
	}
	p := ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		p = rest[i:]
	}
	p, _, _ = strings.Cut(p, "?")
	p, _, _ = strings.Cut(p, "#")
	if p == "" {
		return url
	}
	return p
}

// Connections: analyze/sql/views/connections.sql joins the rows of an
// attempt across files and judges them.

// tuple is a connection's addresses and ports, in its direction.
type tuple struct {
	srcIP, dstIP           string
	srcPort, dstPort       uint32
	hasSrcPort, hasDstPort bool
}

func deriveConnections(b *flowBatch, edges []edge) []Connection {
	byTuple := map[tuple][]int{}
	var order []tuple
	for i := range edges {
		if b.l4(i) != "TCP" || b.typ(i) != "L3_L4" {
			continue
		}
		e := &edges[i]
		t := tuple{e.srcIP, e.dstIP, e.srcPort, e.dstPort, e.hasSrcPort, e.hasDstPort}
		if _, ok := byTuple[t]; !ok {
			order = append(order, t)
		}
		byTuple[t] = append(byTuple[t], i)
	}
	var out []Connection
	for _, t := range order {
		rows := byTuple[t]
		slices.SortStableFunc(rows, func(x, y int) int {
			tx, ty := b.time(x), b.time(y)
			switch {
			case tx < ty:
				return -1
			case tx > ty:
				return 1
			}
			return 0
		})
		// A SYN after anything but a SYN opens a new attempt: a row ends
		// there.
		start := 0
		for k := 1; k <= len(rows); k++ {
			if k < len(rows) && !(edges[rows[k]].synOnly && !edges[rows[k-1]].synOnly) {
				continue
			}
			out = append(out, b.connection(t, rows[start:k], edges))
			start = k
		}
	}
	return out
}

// connection is the row of a run of one tuple's flows, in time order.
func (b *flowBatch) connection(t tuple, rows []int, edges []edge) Connection {
	first, last := rows[0], rows[len(rows)-1]
	c := Connection{SourceIP: t.srcIP, DestinationIP: t.dstIP, SourcePort: t.srcPort, DestinationPort: t.dstPort,
		HasSourcePort: t.hasSrcPort, HasDestinationPort: t.hasDstPort,
		FirstTime: b.time(first), LastTime: b.time(first),
		FirstSynOnly: edges[first].synOnly, LastSynOnly: edges[last].synOnly,
		Source: edges[first].src, Destination: edges[first].dst, Flows: int64(len(rows))}
	for _, i := range rows {
		e := &edges[i]
		at := b.time(i)
		c.LastTime = max(c.LastTime, at)
		if e.synOnly && !c.HasSyn {
			c.SynTime, c.HasSyn = at, true
		}
		// arg_min(x, time) skips NULLs: the first flow that has one.
		firstOf(&c.NodeName, b.node(i))
		firstOf(&c.SourceNamespace, e.srcNs)
		firstOf(&c.SourcePod, e.srcPod)
		firstOf(&c.DestinationNamespace, e.dstNs)
		firstOf(&c.DestinationPod, e.dstPod)
		firstOf(&c.DestinationService, e.dstSvc)
		verdict := b.verdict(i)
		dropped := Null
		if verdict != "" {
			dropped = TriOf(verdict == "DROPPED")
		}
		// a SYN-ACK, or anything but a SYN or a reset after the SYN; a SYN
		// redirected to the L7 proxy is answered by the proxy
		answered := TriOf(e.synAck).or(TriOf(e.synOnly || e.rst).or(dropped).not())
		if verdict != "" {
			answered = answered.or(TriOf(verdict == "REDIRECTED"))
		} else {
			answered = answered.or(Null)
		}
		c.Answered = c.Answered.anyOf(answered)
		c.Dropped = c.Dropped.anyOf(dropped)
		c.Reset = c.Reset || e.rst
		if d := b.dropDesc(i); d != "" {
			c.DropReasons = append(c.DropReasons, d)
		}
	}
	return c
}

func firstOf(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

// Traffic.

// trafficKey is what traffic counts flows by.
type trafficKey struct {
	bucket                                 int64
	node, typ, verdict, dropDesc           string
	dropReason                             uint32
	l4, l7, l7Type                         string
	isReply                                Tri
	src, srcNs, srcPod, dst, dstNs, dstPod string
	dstSvc                                 string
	port                                   uint32
	hasPort                                bool
}

// minute is the start of the UTC minute of t (ns since the epoch).
func minute(t int64) int64 {
	const m = int64(60e9)
	b := t / m * m
	if b > t {
		b -= m
	}
	return b
}

func deriveTraffic(b *flowBatch, edges []edge) []TrafficCount {
	idx := map[trafficKey]int{}
	var out []TrafficCount
	for i := range edges {
		e := &edges[i]
		dr, _ := b.dropReason(i)
		k := trafficKey{bucket: minute(b.time(i)), node: b.node(i), typ: b.typ(i), verdict: b.verdict(i), dropDesc: b.dropDesc(i),
			dropReason: dr, l4: b.l4(i), l7: b.l7Proto(i), l7Type: b.l7Type(i), isReply: e.swap,
			src: e.src, srcNs: e.srcNs, srcPod: e.srcPod, dst: e.dst, dstNs: e.dstNs, dstPod: e.dstPod, dstSvc: e.dstSvc,
			port: e.dstPort, hasPort: e.hasDstPort}
		j, ok := idx[k]
		at := b.time(i)
		if !ok {
			j = len(out)
			idx[k] = j
			out = append(out, TrafficCount{Bucket: k.bucket, NodeName: k.node, Type: k.typ, Verdict: k.verdict, DropReasonDesc: k.dropDesc,
				DropReason: k.dropReason, L4Protocol: k.l4, L7Protocol: k.l7, L7Type: k.l7Type, IsReply: k.isReply,
				Source: k.src, SourceNamespace: k.srcNs, SourcePod: k.srcPod, Destination: k.dst, DestinationNamespace: k.dstNs,
				DestinationPod: k.dstPod, DestinationService: k.dstSvc, Port: k.port, HasPort: k.hasPort, FirstTime: at, LastTime: at})
		}
		t := &out[j]
		t.Flows++
		if e.rst {
			t.TCPResets++
		}
		if rc, ok := b.dnsRcode(i); ok && rc != 0 && k.typ == "L7" && k.l7Type == "RESPONSE" {
			t.DNSErrors++
		}
		t.FirstTime, t.LastTime = min(t.FirstTime, at), max(t.LastTime, at)
	}
	return out
}

// key is what a traffic row counts flows by.
func (t *TrafficCount) key() trafficKey {
	return trafficKey{bucket: t.Bucket, node: t.NodeName, typ: t.Type, verdict: t.Verdict, dropDesc: t.DropReasonDesc,
		dropReason: t.DropReason, l4: t.L4Protocol, l7: t.L7Protocol, l7Type: t.L7Type, isReply: t.IsReply,
		src: t.Source, srcNs: t.SourceNamespace, srcPod: t.SourcePod, dst: t.Destination, dstNs: t.DestinationNamespace,
		dstPod: t.DestinationPod, dstSvc: t.DestinationService, port: t.Port, hasPort: t.HasPort}
}

// Pods.

type podKey struct{ ns, pod, workload, app string }

func derivePods(b *flowBatch) []Pod {
	idx := map[podKey]int{}
	var out []Pod
	add := func(at int64, ns, pod, workload, app string) {
		if pod == "" {
			return
		}
		k := podKey{ns, pod, workload, app}
		j, ok := idx[k]
		if !ok {
			j = len(out)
			idx[k] = j
			out = append(out, Pod{Namespace: ns, Pod: pod, Workload: workload, App: app, Inferred: InferWorkload(pod), FirstTime: at, LastTime: at})
		}
		p := &out[j]
		p.Flows++
		p.FirstTime, p.LastTime = min(p.FirstTime, at), max(p.LastTime, at)
	}
	for i := 0; i < b.n; i++ {
		at := b.time(i)
		add(at, b.srcNs(i), b.srcPod(i), b.srcWorkload(i), b.srcApp(i))
		add(at, b.dstNs(i), b.dstPod(i), b.dstWorkload(i), b.dstApp(i))
	}
	return out
}

// TrafficSet adds up traffic rows of the same key: the rows of a file,
// from the rows of its batches. Its rows own their strings.
type TrafficSet struct {
	idx  map[trafficKey]int
	rows []TrafficCount
}

// Add adds rows to the set.
func (s *TrafficSet) Add(rows []TrafficCount) {
	if s.idx == nil {
		s.idx = map[trafficKey]int{}
	}
	for _, r := range rows {
		k := r.key()
		j, ok := s.idx[k]
		if !ok {
			r.cloneStrings()
			s.idx[r.key()] = len(s.rows)
			s.rows = append(s.rows, r)
			continue
		}
		t := &s.rows[j]
		t.Flows += r.Flows
		t.TCPResets += r.TCPResets
		t.DNSErrors += r.DNSErrors
		t.FirstTime, t.LastTime = min(t.FirstTime, r.FirstTime), max(t.LastTime, r.LastTime)
	}
}

// Rows are the rows added up.
func (s *TrafficSet) Rows() []TrafficCount { return s.rows }

func (t *TrafficCount) cloneStrings() {
	for _, p := range []*string{&t.NodeName, &t.Type, &t.Verdict, &t.DropReasonDesc, &t.L4Protocol, &t.L7Protocol, &t.L7Type,
		&t.Source, &t.SourceNamespace, &t.SourcePod, &t.Destination, &t.DestinationNamespace, &t.DestinationPod, &t.DestinationService} {
		*p = strings.Clone(*p)
	}
}

// PodSet adds up pod rows of the same pod and names. Its rows own their
// strings.
type PodSet struct {
	idx  map[podKey]int
	rows []Pod
}

// Add adds rows to the set.
func (s *PodSet) Add(rows []Pod) {
	if s.idx == nil {
		s.idx = map[podKey]int{}
	}
	for _, r := range rows {
		k := podKey{r.Namespace, r.Pod, r.Workload, r.App}
		j, ok := s.idx[k]
		if !ok {
			for _, p := range []*string{&r.Namespace, &r.Pod, &r.Workload, &r.App, &r.Inferred} {
				*p = strings.Clone(*p)
			}
			s.idx[podKey{r.Namespace, r.Pod, r.Workload, r.App}] = len(s.rows)
			s.rows = append(s.rows, r)
			continue
		}
		p := &s.rows[j]
		p.Flows += r.Flows
		p.FirstTime, p.LastTime = min(p.FirstTime, r.FirstTime), max(p.LastTime, r.LastTime)
	}
}

// Rows are the rows added up.
func (s *PodSet) Rows() []Pod { return s.rows }
