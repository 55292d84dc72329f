package schema

import (
	"cmp"
	"hash/maphash"
	"math"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// Derived are the derived rows of a batch of flows, or of a file.
type Derived struct {
	Requests    []Request
	Connections []Connection
	Traffic     []TrafficCount
	Pods        []Pod
	Summary     []Summary
	// SummaryMeta is the summary file's footer metadata (SummarySet.Meta).
	SummaryMeta map[string]string
}

// Deriver derives the rows of one file from the batches of its flow rows
// (record batches with the columns DeriveColumns names, as the writer
// encodes them or a reader reads them, strings plain or dictionary-
// encoded; rows in any order). What the file holds is paired within it:
// a request with its response in a later batch, a client proxy's row
// with the server proxy's, the flows of a connection across batches; what
// it cannot pair is left for the views (open requests, seen_by_server
// NULL, one row per connection attempt and file). State lives for one
// file, but for Conns: the recorder and reindex carry a session's
// connections from one of its files to the next; recovery and compaction
// derive a file from its flows alone.
//
// Memory: the file's open requests (answered ones go), hashes of its
// answered calls and of its server proxies' requests, its connections,
// and its traffic and pods added up. The open requests are bounded by
// MaxOpenRequests: past it the oldest are written as open rows at once,
// which changes no answer (the views pair them with responses anywhere).
type Deriver struct {
	// Conns, when set, carries the connections of a session from one of
	// its files to the next (see ConnState); each file's own Deriver
	// shares it.
	Conns *ConnState

	answered map[uint64]bool // pair keys of the file's responses
	server   map[uint64]bool // proxy pair keys of its server proxies' rows
	open     map[uint64][]Request
	nOpen    int
	conns    map[tuple]int // each connection's last row in connRows
	connRows []Connection
	traffic  TrafficSet
	pods     PodSet
	summary  SummarySet // of the requests returned so far
	// the last Batch's request rows, reused: a request row is a few
	// hundred bytes, and growing a new slice of them for every batch
	// was a sixth of what deriving cost a recorder.
	responses, piece []Request
}

// MaxOpenRequests bounds the requests a Deriver holds open (see Deriver).
// A variable so that tests can lower it: the answers must not change.
var MaxOpenRequests = 200_000

// Batch is what Add derives from a batch of a file's flows. Its request
// rows are valid until the next Add.
type Batch struct {
	// Requests are rows final for the file, in the file's order: the
	// batch's responses (and open requests past MaxOpenRequests).
	Requests []Request
	// Piece is the batch's rows on their own, for a live file's piece
	// (with piece set): its responses, the requests the file holds no
	// response for yet, its connections, traffic and pods.
	Piece Derived
}

// Add derives a batch of the file's flows.
func (d *Deriver) Add(rec arrow.RecordBatch, piece bool) (Batch, error) {
	b, err := bindFlows(rec)
	if err != nil {
		return Batch{}, err
	}
	if d.answered == nil {
		d.answered, d.server, d.open, d.conns = map[uint64]bool{}, map[uint64]bool{}, map[uint64][]Request{}, map[tuple]int{}
	}
	edges := make([]edge, b.n)
	for i := range edges {
		edges[i] = b.edge(i)
	}
	// The last batch's rows go (their strings hold its Arrow buffers):
	// every row of the buffers past their length was cleared before.
	clear(d.responses)
	clear(d.piece)
	var out Batch
	var open []Request
	out.Requests, open = d.requests(b, d.responses[:0])
	d.responses = out.Requests
	conns := deriveConnections(b, edges)
	for i := range conns {
		d.addConnection(&conns[i])
	}
	traffic := deriveTraffic(b, edges)
	d.traffic.Add(traffic)
	pods := derivePods(b)
	d.pods.Add(pods)
	if piece {
		d.piece = append(append(d.piece[:0], out.Requests...), open...)
		out.Piece = Derived{Requests: d.piece, Connections: conns, Traffic: traffic, Pods: pods}
		out.Piece.Summary, out.Piece.SummaryMeta = Summarize(out.Piece)
	}
	if d.nOpen > MaxOpenRequests {
		out.Requests = append(out.Requests, d.spill(d.nOpen-MaxOpenRequests)...)
		d.responses = out.Requests
	}
	d.summary.AddRequests(out.Requests)
	return out, nil
}

// Finish returns the file's rows not yet returned: the requests it holds
// no response for, its connections, traffic and pods.
func (d *Deriver) Finish() Derived {
	var f Derived
	for _, rs := range d.open {
		f.Requests = append(f.Requests, rs...)
	}
	sortRequests(f.Requests)
	f.Connections = d.connRows
	f.Traffic = d.traffic.Rows()
	f.Pods = d.pods.Rows()
	d.summary.AddRequests(f.Requests) // the open ones: left to the views
	d.summary.AddConnections(f.Connections)
	d.summary.AddTraffic(f.Traffic)
	f.Summary = d.summary.Rows()
	f.SummaryMeta = d.summary.Meta()
	return f
}

// spill removes the n oldest open requests and returns them.
func (d *Deriver) spill(n int) []Request {
	var all []Request
	for _, rs := range d.open {
		all = append(all, rs...)
	}
	sortRequests(all)
	out := all[:n]
	d.open = map[uint64][]Request{}
	d.nOpen = 0
	for _, r := range all[n:] {
		d.open[r.pair] = append(d.open[r.pair], r)
		d.nOpen++
	}
	return out
}

func sortRequests(rs []Request) {
	slices.SortStableFunc(rs, func(a, b Request) int { return cmp.Compare(a.Time, b.Time) })
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
//
// A request pairs with its response, and a client proxy's row with the
// server proxy's, when they have the same X-Request-Id (a response also
// the same node and proxy) and name the same client and server, by the
// names the views give them: a pod's name comes from all of the
// recording (the pods view), so a file cannot always tell. It pairs what
// is sure (pairKey, proxyPairKey): rows of the same pods (a pod has one
// name), or of the same names where the flows name no pod. What it
// leaves open, the views pair by call_key and proxy_key, hashes of all
// but the endpoints, and the endpoints' names.

// endpointKey is who a side of a call is, surely: its pod where it has
// one, else its name.
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

// pairKey pairs a request with its response within a file: the same node,
// proxy side, X-Request-Id, client and server.
type pairKey struct {
	id, node, reporter string
	client, server     endpointKey
}

// proxyPairKey tells within a file that a server proxy saw a request a
// client proxy reported.
type proxyPairKey struct {
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

// requests derives the request rows of a batch: the responses, final
// (appended to responses), and the requests of the batch that the file
// holds no response for (for a piece; the Deriver keeps them open).
func (d *Deriver) requests(b *flowBatch, responses []Request) (_, open []Request) {
	// The batch's HTTP and gRPC requests and responses, first: the rows
	// are then made in place, in a slice of the right size.
	var calls []int
	nResponses := 0
	for i := 0; i < b.n; i++ {
		if p := b.l7Proto(i); p != "http" && p != "grpc" {
			continue
		}
		switch b.l7Type(i) {
		case "RESPONSE":
			nResponses++
		case "REQUEST":
		default:
			continue
		}
		calls = append(calls, i)
	}
	responses = slices.Grow(responses, nResponses)
	var requests []int
	for _, i := range calls {
		response := b.l7Type(i) == "RESPONSE"
		reporter, id := reporterOf(b.dir(i)), b.reqID(i)
		// The call's client and server, whichever way the flow went.
		client, srv := keyOf(b.srcNs(i), b.srcPod(i), b.srcEp(i)), keyOf(b.dstNs(i), b.dstPod(i), b.dstEp(i))
		if response {
			client, srv = srv, client
		}
		if id != "" && reporter == "server" {
			d.server[proxyPairKey{id, client, srv}.hash()] = true
		}
		if !response {
			if id != "" {
				requests = append(requests, i)
			}
			continue
		}
		responses = append(responses, b.request(i, true))
		r := &responses[len(responses)-1]
		r.Status, r.HasStatus = b.httpCode(i)
		if lat, ok := b.latency(i); ok {
			r.LatencyNs = lat
		}
		grpc := r.Protocol == "grpc"
		r.Error = r.HasStatus && (r.Status >= 500 || grpc && r.Status != 200)
		r.ClientError = r.HasStatus && r.Status >= 400 && r.Status <= 499
		if id != "" {
			r.keys(client, srv)
			d.answered[r.pair] = true
			if rs := d.open[r.pair]; rs != nil {
				d.nOpen -= len(rs)
				delete(d.open, r.pair)
			}
		}
	}
	for _, i := range requests {
		r := b.request(i, false)
		r.keys(keyOf(r.ClientNamespace, r.ClientPod, r.Client), keyOf(r.ServerNamespace, r.ServerPod, r.Server))
		if d.answered[r.pair] {
			continue
		}
		r.Open = true
		open = append(open, r)
		kept := r
		kept.cloneStrings()
		d.open[r.pair] = append(d.open[r.pair], kept)
		d.nOpen++
	}
	// Whether a server proxy saw a request: the server's own rows, and the
	// client's where the file holds the server's so far.
	for _, rows := range [][]Request{responses, open} {
		for k := range rows {
			r := &rows[k]
			if r.Reporter == "server" || r.RequestID != "" && d.server[r.proxy] {
				r.SeenByServer = True
			}
		}
	}
	for _, rs := range d.open {
		for k := range rs {
			if rs[k].SeenByServer == Null && d.server[rs[k].proxy] {
				rs[k].SeenByServer = True
			}
		}
	}
	return responses, open
}

func (r *Request) cloneStrings() {
	for _, p := range []*string{&r.NodeName, &r.Reporter, &r.RequestID, &r.Client, &r.ClientNamespace, &r.ClientPod, &r.ClientIP,
		&r.Server, &r.ServerNamespace, &r.ServerPod, &r.ServerIP, &r.Protocol, &r.Method, &r.URL, &r.Path} {
		*p = strings.Clone(*p)
	}
}

// keys sets a row's keys, given its client and server: the pairing
// within the file, and the hashes the views pair by (call_key,
// proxy_key). The views pair rows of different files by one integer
// first: joining every response by its X-Request-Id and endpoints takes
// seconds at 10 million flows.
func (r *Request) keys(client, server endpointKey) {
	r.pair = pairKey{r.RequestID, r.NodeName, r.Reporter, client, server}.hash()
	r.proxy = proxyPairKey{r.RequestID, client, server}.hash()
	// FNV-1a streams: the proxy key's state goes on into the call key's.
	h := newKeyHash()
	h.str(r.RequestID)
	r.ProxyKey = int64(h.sum)
	h.str(r.NodeName)
	h.str(r.Reporter)
	r.CallKey = int64(h.sum)
}

// memoSeed seeds the hashes that pair rows within a file, in memory only
// (pairKey, proxyPairKey): the runtime's own hash, many times faster than
// FNV-1a's loop over bytes, which the keys stored in files (call_key,
// proxy_key) keep, as docs/schema.md defines them.
var memoSeed = maphash.MakeSeed()

func (k pairKey) hash() uint64 { return maphash.Comparable(memoSeed, k) }

func (k proxyPairKey) hash() uint64 { return maphash.Comparable(memoSeed, k) }

// keyHash is FNV-1a (64 bits) over length-prefixed fields.
type keyHash struct{ sum uint64 }

func newKeyHash() *keyHash { return &keyHash{sum: 14695981039346656037} }

func (h *keyHash) byte(b byte) {
	h.sum ^= uint64(b)
	h.sum *= 1099511628211
}

func (h *keyHash) str(s string) {
	for n := len(s); ; n >>= 7 {
		if n < 0x80 {
			h.byte(byte(n))
			break
		}
		h.byte(byte(n) | 0x80)
	}
	for i := 0; i < len(s); i++ {
		h.byte(s[i])
	}
}

// uint hashes the n low bytes of v, least significant first.
func (h *keyHash) uint(v uint64, n int) {
	for k := 0; k < n; k++ {
		h.byte(byte(v >> (8 * k)))
	}
}

// tuple hashes a connection's addresses, its ports (n bytes each) and
// which ports it has.
func (h *keyHash) tuple(t tuple, n int) {
	h.str(t.srcIP)
	h.str(t.dstIP)
	h.uint(uint64(t.srcPort), n)
	h.uint(uint64(t.dstPort), n)
	h.portsPresent(t)
}

func (h *keyHash) portsPresent(t tuple) {
	if t.hasSrcPort {
		h.byte(1)
	}
	if t.hasDstPort {
		h.byte(1)
	}
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
		r.clientNamed, r.serverNamed = b.dstWorkload(i) != "", b.srcWorkload(i) != ""
	} else {
		r.Client, r.ClientNamespace, r.ClientPod, r.ClientIP = b.srcEp(i), b.srcNs(i), b.srcPod(i), b.ipSrc(i)
		r.Server, r.ServerNamespace, r.ServerPod, r.ServerIP = b.dstEp(i), b.dstNs(i), b.dstPod(i), b.ipDst(i)
		r.ServerPort, r.HasServerPort = b.dstPort(i)
		r.clientNamed, r.serverNamed = b.srcWorkload(i) != "", b.dstWorkload(i) != ""
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
		HasSourcePort: t.hasSrcPort, HasDestinationPort: t.hasDstPort, Key: tupleKey(t),
		FirstTime: b.time(first), LastTime: b.time(first),
		FirstSynOnly: edges[first].synOnly, LastSynOnly: edges[last].synOnly,
		Source: edges[first].src, Destination: edges[first].dst, Flows: int64(len(rows)),
		srcNamed: edges[first].srcNamed, dstNamed: edges[first].dstNamed}
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

// addConnection adds a connection row of a batch to the file's rows:
// into the row before it of the same connection, when it continues that
// attempt (it does not start with a SYN after a row that did not end with
// one, nor after it in time), else as a row of its own, of the attempt it
// opens or continues (Attempt; unknown where neither the file nor Conns
// says). The views join the rows of an attempt alike (connections.sql).
func (d *Deriver) addConnection(c *Connection) {
	t := tuple{c.SourceIP, c.DestinationIP, c.SourcePort, c.DestinationPort, c.HasSourcePort, c.HasDestinationPort}
	if i, ok := d.conns[t]; ok {
		p := &d.connRows[i]
		opens := c.FirstSynOnly && !p.LastSynOnly && c.FirstTime >= p.LastTime
		if c.FirstTime >= p.FirstTime && !opens {
			if c.LastTime >= p.LastTime {
				p.LastTime, p.LastSynOnly = c.LastTime, c.LastSynOnly
			}
			if c.HasSyn && (!p.HasSyn || c.SynTime < p.SynTime) {
				p.SynTime, p.HasSyn = c.SynTime, true
			}
			for _, f := range []struct {
				dst *string
				v   string
			}{{&p.NodeName, c.NodeName}, {&p.SourceNamespace, c.SourceNamespace},
				{&p.SourcePod, c.SourcePod}, {&p.DestinationNamespace, c.DestinationNamespace}, {&p.DestinationPod, c.DestinationPod},
				{&p.DestinationService, c.DestinationService}} {
				if *f.dst == "" {
					*f.dst = strings.Clone(f.v)
				}
			}
			p.Answered = p.Answered.anyOf(c.Answered)
			p.Dropped = p.Dropped.anyOf(c.Dropped)
			p.Reset = p.Reset || c.Reset
			for _, r := range c.DropReasons {
				p.DropReasons = append(p.DropReasons, strings.Clone(r))
			}
			p.Flows += c.Flows
			d.Conns.note(t, p)
			return
		}
		if !opens {
			// Flows that came late (before the row's first): of an
			// attempt only the order of all the rows in time tells
			// (unknown, connections.sql); the row ending last stays the
			// one later batches continue.
			c.Attempt, c.HasAttempt = 0, false
			if c.LastTime < p.LastTime {
				d.keepConnection(t, c, false)
				return
			}
		} else {
			// A new attempt in the file.
			c.Attempt, c.HasAttempt = attemptID(t, c.FirstTime), true
		}
	} else {
		c.Attempt, c.HasAttempt = d.Conns.attemptOf(t, c)
		c.before = d.Conns.soFar(t, c)
	}
	d.keepConnection(t, c, true)
}

// keepConnection adds a row of its own to the file's rows; last: the one
// the connection's later batches continue.
func (d *Deriver) keepConnection(t tuple, c *Connection, last bool) {
	kept := *c
	for _, p := range []*string{&kept.SourceIP, &kept.DestinationIP, &kept.NodeName, &kept.Source, &kept.SourceNamespace, &kept.SourcePod,
		&kept.Destination, &kept.DestinationNamespace, &kept.DestinationPod, &kept.DestinationService} {
		*p = strings.Clone(*p)
	}
	kept.DropReasons = nil
	for _, r := range c.DropReasons {
		kept.DropReasons = append(kept.DropReasons, strings.Clone(r))
	}
	d.connRows = append(d.connRows, kept)
	if !last {
		return
	}
	t = tuple{kept.SourceIP, kept.DestinationIP, t.srcPort, t.dstPort, t.hasSrcPort, t.hasDstPort}
	d.conns[t] = len(d.connRows) - 1
	d.Conns.note(t, &d.connRows[len(d.connRows)-1])
}

// tupleKey names a connection: its addresses and ports.
func tupleKey(t tuple) int64 {
	h := newKeyHash()
	h.byte('c')
	h.tuple(t, 4)
	return int64(h.sum)
}

// attemptID names a connection attempt: its addresses and ports and the
// time of its opening SYN. The same flows recorded twice name it alike.
func attemptID(t tuple, synAt int64) int64 {
	h := newKeyHash()
	h.str(t.srcIP)
	h.str(t.dstIP)
	for _, v := range []uint64{uint64(t.srcPort), uint64(t.dstPort), uint64(synAt)} {
		h.uint(v, 8)
	}
	h.portsPresent(t)
	return int64(h.sum)
}

// ConnState is where the connections of a session are, carried from one
// of its files to the next: each connection's attempt and how its last
// row ended. A file's first row of a connection then belongs to a known
// attempt (Connection.Attempt), and the views group rows by it instead of
// ordering every connection's rows in time.
//
// Memory is bounded: a connection idle for ConnIdle, or the oldest past
// MaxConns, is forgotten, and its next rows are of an unknown attempt,
// which the views order in time (the same answer, found slower) — but
// for one case: a forgotten connection whose last row ended with a SYN
// (an attempt never answered) must not be taken for new when a SYN comes
// again, as the views would join the two. Those go to a Bloom filter
// (Unsure): a SYN of a connection it holds is of an unknown attempt too;
// a false positive only costs time.
type ConnState struct {
	m      map[tuple]connState
	last   int64 // newest flow time seen
	pruned int64 // when the state was last pruned (flow time)
	unsure []uint64
}

type connState struct {
	attempt         int64
	known, synEnded bool
	lastTime        int64
	soFar           connSoFar
}

// connSoFar is what the summary counted of an attempt: its opening row,
// as its file ended. The session's state carries it from file to file
// while the attempt's later rows leave it as it was (connSoFar.leaves);
// after a row that does not, the zero value: the rows after that one are
// not unchanged either, so a reader that misses the changing row (its
// file removed, or not given) still reads them.
type connSoFar struct {
	// counted: the attempt's opening row is of this session, and a
	// summary counted the attempt from it (Connection.Opens)
	counted           bool
	answered, dropped Tri
	reset             bool
	named             uint8  // namedBits: which names the row had
	service           uint64 // its destination service, hashed
	firstTime         int64
}

// soFarOf is what the summary counts of the attempt opening row r.
func soFarOf(r *Connection) connSoFar {
	return connSoFar{counted: true, answered: r.Answered, dropped: r.Dropped, reset: r.Reset, named: r.namedBits(),
		service: maphash.String(memoSeed, r.DestinationService), firstTime: r.FirstTime}
}

// namedBits are which of the names the view takes from an attempt's
// first row that has one (node, namespaces, pods, service) the row has.
func (c *Connection) namedBits() uint8 {
	var bits uint8
	for i, v := range []string{c.NodeName, c.SourceNamespace, c.SourcePod, c.DestinationNamespace, c.DestinationPod, c.DestinationService} {
		if v != "" {
			bits |= 1 << i
		}
	}
	return bits
}

// leaves reports whether the connections view, joining row r (a later
// row of the attempt) with the opening row, says what the opening row
// alone says: answered, dropped and reset as it had them (bool_or), no
// name it lacked, the same service where r names one (the view takes any
// row's), and every flow of r after its first (it names the attempt from
// the row that starts first: a tie could pick r).
func (s connSoFar) leaves(r *Connection) bool {
	return r.FirstTime > s.firstTime && s.answered.anyOf(r.Answered) == s.answered && s.dropped.anyOf(r.Dropped) == s.dropped &&
		(s.reset || !r.Reset) && r.namedBits()&^s.named == 0 &&
		(r.DestinationService == "" || maphash.String(memoSeed, r.DestinationService) == s.service)
}

// Unchanged reports whether the row continues an attempt that an earlier
// file of its session opened and summarized, and it and every row of the
// attempt between leave what the summary counted of it as it was
// (connSoFar.leaves): the summary's count of the attempt stands, whatever
// else the row adds (flows, later times, drop reasons), where the opening
// row is read too.
func (c *Connection) Unchanged() bool {
	return c.before.counted && c.HasAttempt && !c.Opens() && c.before.leaves(c)
}

// ConnIdle and MaxConns bound a ConnState (variables so that tests can
// lower them: the answers must not change).
var (
	ConnIdle = int64(30 * 60e9) // 30 minutes of flow time
	MaxConns = 200_000
)

// unsureBits is the size of a ConnState's Bloom filter (1 MiB: a few
// percent of false positives at a million forgotten attempts).
const unsureBits = 1 << 23

// NewConnState returns an empty state.
func NewConnState() *ConnState {
	return &ConnState{m: map[tuple]connState{}, unsure: make([]uint64, unsureBits/64)}
}

// attemptOf is the attempt of a file's first row of a connection: the one
// it opens, the one the session's state says it continues, or unknown.
// Without state (a file derived on its own), unknown.
func (s *ConnState) attemptOf(t tuple, c *Connection) (int64, bool) {
	if s == nil {
		return 0, false
	}
	st, ok := s.m[t]
	switch {
	case !ok && c.FirstSynOnly && !s.mayBeUnsure(t):
		// The session's first row of it: a SYN opens.
		return attemptID(t, c.FirstTime), true
	case !ok:
		return 0, false
	case c.FirstSynOnly && !st.synEnded && c.FirstTime >= st.lastTime:
		return attemptID(t, c.FirstTime), true
	}
	return st.attempt, st.known
}

// soFar is what the summary counted of the attempt a file's first row of
// a connection continues (attemptOf), where every row of it since left
// that as it was; the zero value otherwise.
func (s *ConnState) soFar(t tuple, c *Connection) connSoFar {
	if s == nil {
		return connSoFar{}
	}
	return s.m[t].carried(c)
}

// carried is what the state carries of the attempt row r continues: its
// soFar where r is of the same known attempt and a summary counted it;
// the zero value otherwise.
func (st connState) carried(r *Connection) connSoFar {
	if !r.HasAttempt || !st.known || st.attempt != r.Attempt || !st.soFar.counted {
		return connSoFar{}
	}
	return st.soFar
}

// note records where a connection is after row r (the file's row of it
// that ended last).
func (s *ConnState) note(t tuple, r *Connection) {
	if s == nil {
		return
	}
	prev, ok := s.m[t]
	if ok && prev.lastTime > r.LastTime {
		return
	}
	st := connState{attempt: r.Attempt, known: r.HasAttempt, synEnded: r.LastSynOnly, lastTime: r.LastTime}
	if r.Opens() {
		st.soFar = soFarOf(r)
	} else if c := prev.carried(r); c.counted && c.leaves(r) {
		st.soFar = c
	}
	s.m[t] = st
	s.last = max(s.last, r.LastTime)
	if s.last-s.pruned > ConnIdle/4 || len(s.m) > MaxConns {
		s.prune()
	}
}

func (s *ConnState) prune() {
	s.pruned = s.last
	for t, st := range s.m {
		if s.last-st.lastTime > ConnIdle {
			s.forget(t, st)
		}
	}
	if len(s.m) <= MaxConns {
		return
	}
	// Past the bound: the oldest go, down to nine tenths of it.
	times := make([]int64, 0, len(s.m))
	for _, st := range s.m {
		times = append(times, st.lastTime)
	}
	slices.Sort(times)
	cut := times[len(times)-MaxConns*9/10]
	for t, st := range s.m {
		if st.lastTime < cut {
			s.forget(t, st)
		}
	}
}

func (s *ConnState) forget(t tuple, st connState) {
	delete(s.m, t)
	if st.synEnded {
		for _, b := range unsureBitsOf(t) {
			s.unsure[b/64] |= 1 << (b % 64)
		}
	}
}

func (s *ConnState) mayBeUnsure(t tuple) bool {
	for _, b := range unsureBitsOf(t) {
		if s.unsure[b/64]&(1<<(b%64)) == 0 {
			return false
		}
	}
	return true
}

// unsureBitsOf are a connection's three bits of the Bloom filter.
func unsureBitsOf(t tuple) [3]uint64 {
	h := uint64(attemptID(t, 0))
	h2 := h>>32 | h<<32
	return [3]uint64{h % unsureBits, (h + h2) % unsureBits, (h + 2*h2) % unsureBits}
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
	srcNamed, dstNamed                     bool
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
			port: e.dstPort, hasPort: e.hasDstPort, srcNamed: e.srcNamed, dstNamed: e.dstNamed}
		j, ok := idx[k]
		at := b.time(i)
		if !ok {
			j = len(out)
			idx[k] = j
			out = append(out, TrafficCount{Bucket: k.bucket, NodeName: k.node, Type: k.typ, Verdict: k.verdict, DropReasonDesc: k.dropDesc,
				DropReason: k.dropReason, L4Protocol: k.l4, L7Protocol: k.l7, L7Type: k.l7Type, IsReply: k.isReply,
				Source: k.src, SourceNamespace: k.srcNs, SourcePod: k.srcPod, Destination: k.dst, DestinationNamespace: k.dstNs,
				DestinationPod: k.dstPod, DestinationService: k.dstSvc, Port: k.port, HasPort: k.hasPort, FirstTime: at, LastTime: at,
				srcNamed: k.srcNamed, dstNamed: k.dstNamed})
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
		if lat, ok := b.latency(i); ok {
			t.MaxLatencyNs = max(t.MaxLatencyNs, lat)
		}
	}
	return out
}

// key is what a traffic row counts flows by.
func (t *TrafficCount) key() trafficKey {
	return trafficKey{bucket: t.Bucket, node: t.NodeName, typ: t.Type, verdict: t.Verdict, dropDesc: t.DropReasonDesc,
		dropReason: t.DropReason, l4: t.L4Protocol, l7: t.L7Protocol, l7Type: t.L7Type, isReply: t.IsReply,
		src: t.Source, srcNs: t.SourceNamespace, srcPod: t.SourcePod, dst: t.Destination, dstNs: t.DestinationNamespace,
		dstPod: t.DestinationPod, dstSvc: t.DestinationService, port: t.Port, hasPort: t.HasPort, srcNamed: t.srcNamed, dstNamed: t.dstNamed}
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
		t.MaxLatencyNs = max(t.MaxLatencyNs, r.MaxLatencyNs)
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
