package schema

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Summaries: what the analyses count over long windows, per minute and
// edge, written with the other derived tables of a file (KindSummary).
// A day of a large cluster is billions of requests and connections; the
// summary of a minute is a few rows per edge, so services, graph and
// timeline over a day read thousands of rows, not billions
// (analyze/summary.go decides when to read them).
//
// Exact where the file can be: a summary counts only what no other file
// can change, and the views add the rest from the derived rows at read
// time:
//   - requests: the rows of answered requests whose seen_by_server the
//     file knows (settled); open requests and client rows whose server
//     proxy's row may be in another file are read from requests.
//   - connections: attempts the file opens (their SYN is in it, the writer
//     knows the attempt); a reader recomputes, from connections, the
//     connections whose rows span files or whose attempt the writer could
//     not tell (a column, opens, marks the rows that open an attempt).
//   - flows: the traffic table's counts, without the pods of endpoints
//     named by their workload.
//
// Endpoints keep their pod only where a flow named them by something other
// than their workload (an app label, the pod's name): the views rename
// such pods by what the whole recording knows (the pods view), and the pod
// is what they join on. An endpoint named by its workload keeps that name
// whatever other flows say, so its pod is not needed and not kept.
const KindSummary = "summary"

// Grains of the summary table: each file's minutes, and its hours, the
// sum of its minutes, which a long window reads instead (a day of a
// 200-node cluster is some 100 million minute rows, 60 times fewer hour
// rows). Hour rows come first in a file, so that a reader of one grain
// skips the other's row groups.
const (
	GrainMinute = "minute"
	GrainHour   = "hour"
)

// Parts of the summary table.
const (
	PartFlows       = "flows"
	PartRequests    = "requests"
	PartConnections = "connections"
)

// SketchRelativeError is the relative error of a quantile read from the
// summary's latency sketch: every latency in bucket i lies in
// (gamma^(i-1), gamma^i], and the bucket's value 2*gamma^i/(gamma+1) is
// within SketchRelativeError of each (DDSketch's log mapping; the
// buckets of two sketches add up, in Go or in SQL).
const SketchRelativeError = 0.01

var sketchGamma = (1 + SketchRelativeError) / (1 - SketchRelativeError)
var sketchLogGamma = math.Log(sketchGamma)

// SketchBucket is the latency sketch's bucket of a latency in ns (> 0).
func SketchBucket(ns uint64) int32 {
	return int32(math.Ceil(math.Log(float64(ns)) / sketchLogGamma))
}

// SketchValue is the value a bucket stands for: within
// SketchRelativeError of every latency in it.
func SketchValue(bucket int32) float64 {
	return 2 * math.Pow(sketchGamma, float64(bucket)) / (sketchGamma + 1)
}

// SketchGamma is gamma, for SQL that computes SketchValue.
func SketchGamma() float64 { return sketchGamma }

// Summary is a row of the summary table: one part's counts of one minute
// and key.
type Summary struct {
	Bucket int64
	Grain  string // GrainMinute or GrainHour
	Part   string
	// flows and connections
	NodeName string
	// flows
	Type, Verdict, DropReasonDesc  string
	DropReason                     uint32
	L4Protocol, L7Protocol, L7Type string
	IsReply                        Tri
	// requests
	Reporter     string
	SeenByServer Tri
	Protocol     string
	// the edge: source is the client, destination the server
	Source, SourceNamespace, SourcePod                string
	Destination, DestinationNamespace, DestinationPod string
	DestinationService                                string
	Port                                              uint32
	HasPort                                           bool
	// connections: the attempts' verdict within their file; SynTime only
	// where it decides whether the attempt went unanswered
	Answered, Dropped Tri
	Reset             bool
	SynTime           int64
	HasSynTime        bool
	DropReasons       []string

	Flows, TCPResets, DNSErrors   int64
	Requests, Errors, ClientError int64
	Connections                   int64
	MaxLatencyNs                  uint64
	LatencyBuckets                []int32
	LatencyCounts                 []uint64
	// requests: the statuses of the failed ones (errors and client
	// errors; -1 where none was reported), and the first and last of them
	FailureStatuses           []int32
	FailureCounts             []uint64
	FirstFailure, LastFailure int64
	HasFailure                bool
	FirstTime, LastTime       int64
}

// SummaryTable is the summary table.
var SummaryTable = newRowTable(KindSummary,
	"Per minute and edge, what the analyses count, for windows too long to read every request and connection: flows by "+
		"kind (part flows: the traffic table's counts), answered requests whose file settled who counts them (part requests, "+
		"with a latency sketch), and connection attempts a file opened (part connections). What a file could not settle "+
		"(requests answered or seen by a server proxy in another file, connections whose packets span files) is not in it: "+
		"readers add it from the requests and connections tables. Endpoints named by their workload have no pod.",
	[]RowColumn[Summary]{
		field(cTime, "bucket", "Start of the minute or hour (UTC): of the flows, of the responses, of the connections' SYNs.",
			func(r *Summary) (int64, bool) { return r.Bucket, true }),
		strField("grain", "minute, or hour: the sum of the file's minute rows of that hour.", func(r *Summary) string { return r.Grain }),
		strField("part", "flows, requests or connections: which counts the row holds.", func(r *Summary) string { return r.Part }),
		strField("node_name", "Node that observed the flows (flows, connections).", func(r *Summary) string { return r.NodeName }),
		strField("type", "Flow type (flows).", func(r *Summary) string { return r.Type }),
		strField("verdict", "Verdict (flows).", func(r *Summary) string { return r.Verdict }),
		strField("drop_reason_desc", "Drop reason (flows).", func(r *Summary) string { return r.DropReasonDesc }),
		field(cUint32, "drop_reason", "Numeric drop reason (flows).",
			func(r *Summary) (uint32, bool) { return r.DropReason, r.Part == PartFlows }),
		strField("l4_protocol", "Transport protocol (flows).", func(r *Summary) string { return r.L4Protocol }),
		strField("l7_protocol", "Application protocol (flows).", func(r *Summary) string { return r.L7Protocol }),
		strField("l7_type", "L7 record type (flows).", func(r *Summary) string { return r.L7Type }),
		triField("is_reply", "Whether the flows went from server to client (flows; see the traffic table).",
			func(r *Summary) Tri { return r.IsReply }),
		strField("reporter", "The proxy that reported the requests: client or server (requests).", func(r *Summary) string { return r.Reporter }),
		triField("seen_by_server", "Whether a server proxy saw the requests (requests).", func(r *Summary) Tri { return r.SeenByServer }),
		strField("protocol", "http or grpc (requests).", func(r *Summary) string { return r.Protocol }),
		strField("source", "The client, as the edges view names it.", func(r *Summary) string { return r.Source }),
		strField("source_namespace", "Its namespace.", func(r *Summary) string { return r.SourceNamespace }),
		strField("source_pod", "Its pod, where a flow named it otherwise than by its workload; else NULL.",
			func(r *Summary) string { return r.SourcePod }),
		strField("destination", "The server.", func(r *Summary) string { return r.Destination }),
		strField("destination_namespace", "Its namespace.", func(r *Summary) string { return r.DestinationNamespace }),
		strField("destination_pod", "Its pod, where a flow named it otherwise than by its workload; else NULL.",
			func(r *Summary) string { return r.DestinationPod }),
		strField("destination_service", "Kubernetes service the client addressed (flows, connections).",
			func(r *Summary) string { return r.DestinationService }),
		field(cUint32, "destination_port", "Server port.", func(r *Summary) (uint32, bool) { return r.Port, r.HasPort }),
		triField("answered", "The attempts were answered within their file (connections; see the connections table).",
			func(r *Summary) Tri { return r.Answered }),
		field(cBool, "reset", "The attempts were reset (connections).", func(r *Summary) (bool, bool) { return r.Reset, r.Part == PartConnections }),
		triField("dropped", "A packet of the attempts was dropped (connections).", func(r *Summary) Tri { return r.Dropped }),
		field(cTime, "syn_time", "The SYN of an attempt neither answered nor dropped (connections): whether it went unanswered "+
			"depends on the recording's end; NULL for the others.", func(r *Summary) (int64, bool) { return r.SynTime, r.HasSynTime }),
		field(cStrings, "drop_reasons", "drop_reason_desc of each dropped packet of an attempt (connections; as the connections table).",
			func(r *Summary) ([]string, bool) { return r.DropReasons, len(r.DropReasons) > 0 }),
		field(cUint64, "flows", "Flows (flows).", func(r *Summary) (uint64, bool) { return uint64(r.Flows), r.Part == PartFlows }),
		field(cUint64, "tcp_resets", "Flows with the TCP RST flag (flows).",
			func(r *Summary) (uint64, bool) { return uint64(r.TCPResets), r.Part == PartFlows }),
		field(cUint64, "dns_errors", "DNS answers other than NOERROR (flows).",
			func(r *Summary) (uint64, bool) { return uint64(r.DNSErrors), r.Part == PartFlows }),
		field(cUint64, "requests", "Requests (requests).", func(r *Summary) (uint64, bool) { return uint64(r.Requests), r.Part == PartRequests }),
		field(cUint64, "errors", "Of them, 5xx and gRPC calls not answered 200 (requests).",
			func(r *Summary) (uint64, bool) { return uint64(r.Errors), r.Part == PartRequests }),
		field(cUint64, "client_errors", "Of them, 4xx (requests).",
			func(r *Summary) (uint64, bool) { return uint64(r.ClientError), r.Part == PartRequests }),
		field(cUint64, "connections", "Connection attempts (connections).",
			func(r *Summary) (uint64, bool) { return uint64(r.Connections), r.Part == PartConnections }),
		field(cUint64, "max_latency_ns", "The longest latency (requests, flows).",
			func(r *Summary) (uint64, bool) { return r.MaxLatencyNs, r.MaxLatencyNs > 0 }),
		field(cInt32s, "latency_buckets", "The latency sketch (requests): buckets i, each latency ns in bucket "+
			"ceil(ln(ns) / ln(gamma)), gamma = 1.01/0.99; a bucket stands for 2*gamma^i/(gamma+1), within 1% of each latency in it. "+
			"Sketches merge by adding the counts of equal buckets.",
			func(r *Summary) ([]int32, bool) { return r.LatencyBuckets, len(r.LatencyBuckets) > 0 }),
		field(cUint64s, "latency_counts", "The number of latencies in each of latency_buckets, in its order.",
			func(r *Summary) ([]uint64, bool) { return r.LatencyCounts, len(r.LatencyCounts) > 0 }),
		field(cInt32s, "failure_statuses", "The statuses of the failed requests (errors and client errors; -1 where the proxy "+
			"reported none), each once (requests).",
			func(r *Summary) ([]int32, bool) { return r.FailureStatuses, len(r.FailureStatuses) > 0 }),
		field(cUint64s, "failure_counts", "The number of failed requests of each of failure_statuses, in its order.",
			func(r *Summary) ([]uint64, bool) { return r.FailureCounts, len(r.FailureCounts) > 0 }),
		field(cTime, "first_failure", "The first failed request (requests).", func(r *Summary) (int64, bool) { return r.FirstFailure, r.HasFailure }),
		field(cTime, "last_failure", "The last.", func(r *Summary) (int64, bool) { return r.LastFailure, r.HasFailure }),
		field(cTime, "first_time", "The first flow, response or SYN counted.", func(r *Summary) (int64, bool) { return r.FirstTime, true }),
		field(cTime, "last_time", "The last.", func(r *Summary) (int64, bool) { return r.LastTime, true }),
	})

// summaryKey is what a summary row counts by: the row with its counts
// zero.
type summaryKey struct {
	bucket                                         int64
	grain                                          string
	part, node, typ, verdict, dropDesc             string
	dropReason                                     uint32
	l4, l7, l7Type                                 string
	isReply                                        Tri
	reporter                                       string
	seen                                           Tri
	protocol                                       string
	src, srcNs, srcPod, dst, dstNs, dstPod, dstSvc string
	port                                           uint32
	hasPort                                        bool
	answered, dropped                              Tri
	reset                                          bool
	synTime                                        int64
	hasSynTime                                     bool
	dropReasons                                    string // joined by NUL
}

// SummarySet adds up a file's summary rows. Its rows own their strings.
type SummarySet struct {
	idx     map[summaryKey]int
	rows    []Summary
	sketchs []map[int32]uint64
	fails   []map[int32]uint64 // failed requests by status
	// left: the request and connection rows it leaves to the views
	left int64
}

// Footer metadata of a summary file: the rows of its file's requests and
// connections tables that it leaves to the views (not settled in the
// file), and its rows that keep a pod. A reader of summaries whose files
// leave nothing and keep no pod need not read those tables at all.
const (
	MetaSummaryLeft = "flowtape.summary_left"
	MetaSummaryPods = "flowtape.summary_pods"
)

// Meta is the footer metadata of the set's summary file.
func (s *SummarySet) Meta() map[string]string {
	pods := 0
	for i := range s.rows {
		if s.rows[i].SourcePod != "" || s.rows[i].DestinationPod != "" {
			pods++
		}
	}
	return map[string]string{MetaSummaryLeft: strconv.FormatInt(s.left, 10), MetaSummaryPods: strconv.Itoa(pods)}
}

func (s *SummarySet) row(k summaryKey, at int64) (*Summary, map[int32]uint64, int) {
	if s.idx == nil {
		s.idx = map[summaryKey]int{}
	}
	j, ok := s.idx[k]
	if !ok {
		for _, p := range []*string{&k.grain, &k.part, &k.node, &k.typ, &k.verdict, &k.dropDesc, &k.l4, &k.l7, &k.l7Type, &k.reporter, &k.protocol,
			&k.src, &k.srcNs, &k.srcPod, &k.dst, &k.dstNs, &k.dstPod, &k.dstSvc, &k.dropReasons} {
			*p = strings.Clone(*p)
		}
		j = len(s.rows)
		s.idx[k] = j
		s.rows = append(s.rows, Summary{Bucket: k.bucket, Grain: k.grain, Part: k.part, NodeName: k.node, Type: k.typ, Verdict: k.verdict,
			DropReasonDesc: k.dropDesc, DropReason: k.dropReason, L4Protocol: k.l4, L7Protocol: k.l7, L7Type: k.l7Type,
			IsReply: k.isReply, Reporter: k.reporter, SeenByServer: k.seen, Protocol: k.protocol,
			Source: k.src, SourceNamespace: k.srcNs, SourcePod: k.srcPod, Destination: k.dst, DestinationNamespace: k.dstNs,
			DestinationPod: k.dstPod, DestinationService: k.dstSvc, Port: k.port, HasPort: k.hasPort,
			Answered: k.answered, Dropped: k.dropped, Reset: k.reset, SynTime: k.synTime, HasSynTime: k.hasSynTime,
			DropReasons: splitReasons(k.dropReasons), FirstTime: at, LastTime: at})
		s.sketchs = append(s.sketchs, nil)
		s.fails = append(s.fails, nil)
	}
	r := &s.rows[j]
	r.FirstTime, r.LastTime = min(r.FirstTime, at), max(r.LastTime, at)
	if k.part == PartRequests && s.sketchs[j] == nil {
		s.sketchs[j] = map[int32]uint64{}
	}
	return r, s.sketchs[j], j
}

// failed counts n failed requests of status (-1: none) from first to
// last in row j.
func (s *SummarySet) failed(j int, status int32, n uint64, first, last int64) {
	if s.fails[j] == nil {
		s.fails[j] = map[int32]uint64{}
	}
	s.fails[j][status] += n
	r := &s.rows[j]
	if !r.HasFailure {
		r.FirstFailure, r.LastFailure, r.HasFailure = first, last, true
	}
	r.FirstFailure, r.LastFailure = min(r.FirstFailure, first), max(r.LastFailure, last)
}

// joinReasons and splitReasons keep a connection's drop reasons in a
// comparable key.
func joinReasons(reasons []string) string { return strings.Join(reasons, "\x00") }

func splitReasons(k string) []string {
	if k == "" {
		return nil
	}
	return strings.Split(k, "\x00")
}

// podUnless is a side's pod for the summary: none where its workload
// named it.
func podUnless(named bool, pod string) string {
	if named {
		return ""
	}
	return pod
}

// AddRequests adds the settled ones of a file's final request rows:
// answered, and seen_by_server known.
func (s *SummarySet) AddRequests(rows []Request) {
	for i := range rows {
		q := &rows[i]
		if q.Unsettled() {
			s.left++
			continue
		}
		k := summaryKey{bucket: minute(q.Time), grain: GrainMinute, part: PartRequests, reporter: q.Reporter, seen: q.SeenByServer, protocol: q.Protocol,
			src: q.Client, srcNs: q.ClientNamespace, srcPod: podUnless(q.clientNamed, q.ClientPod),
			dst: q.Server, dstNs: q.ServerNamespace, dstPod: podUnless(q.serverNamed, q.ServerPod),
			port: q.ServerPort, hasPort: q.HasServerPort}
		r, sk, j := s.row(k, q.Time)
		r.Requests++
		if q.Error {
			r.Errors++
		}
		if q.ClientError {
			r.ClientError++
		}
		if q.Error || q.ClientError {
			status := int32(-1)
			if q.HasStatus {
				status = int32(q.Status)
			}
			s.failed(j, status, 1, q.Time, q.Time)
		}
		if q.LatencyNs > 0 {
			sk[SketchBucket(q.LatencyNs)]++
			r.MaxLatencyNs = max(r.MaxLatencyNs, q.LatencyNs)
		}
	}
}

// AddConnections adds the attempts a file's final connection rows open.
func (s *SummarySet) AddConnections(rows []Connection) {
	for i := range rows {
		c := &rows[i]
		if !c.Opens() {
			s.left++
			continue
		}
		k := summaryKey{bucket: minute(c.SynTime), grain: GrainMinute, part: PartConnections, node: c.NodeName,
			src: c.Source, srcNs: c.SourceNamespace, srcPod: podUnless(c.srcNamed, c.SourcePod),
			dst: c.Destination, dstNs: c.DestinationNamespace, dstPod: podUnless(c.dstNamed, c.DestinationPod),
			dstSvc: c.DestinationService, port: c.DestinationPort, hasPort: c.HasDestinationPort,
			answered: c.Answered, dropped: c.Dropped, reset: c.Reset, dropReasons: joinReasons(c.DropReasons)}
		if c.Answered != True && c.Dropped != True {
			k.synTime, k.hasSynTime = c.SynTime, true
		}
		r, _, _ := s.row(k, c.SynTime)
		r.Connections++
	}
}

// AddTraffic adds a file's traffic rows.
func (s *SummarySet) AddTraffic(rows []TrafficCount) {
	for i := range rows {
		t := &rows[i]
		k := summaryKey{bucket: t.Bucket, grain: GrainMinute, part: PartFlows, node: t.NodeName, typ: t.Type, verdict: t.Verdict, dropDesc: t.DropReasonDesc,
			dropReason: t.DropReason, l4: t.L4Protocol, l7: t.L7Protocol, l7Type: t.L7Type, isReply: t.IsReply,
			src: t.Source, srcNs: t.SourceNamespace, srcPod: podUnless(t.srcNamed, t.SourcePod),
			dst: t.Destination, dstNs: t.DestinationNamespace, dstPod: podUnless(t.dstNamed, t.DestinationPod),
			dstSvc: t.DestinationService, port: t.Port, hasPort: t.HasPort}
		r, _, _ := s.row(k, t.FirstTime)
		r.LastTime = max(r.LastTime, t.LastTime)
		r.Flows += t.Flows
		r.TCPResets += t.TCPResets
		r.DNSErrors += t.DNSErrors
		r.MaxLatencyNs = max(r.MaxLatencyNs, t.MaxLatencyNs)
	}
}

// AddRows adds minute rows (of one file): summaries merge by adding the
// counts, and the sketches' counts, of equal keys. Hour rows are made by
// Rows, not added.
func (s *SummarySet) AddRows(rows []Summary) {
	for i := range rows {
		m := &rows[i]
		if m.Grain == GrainHour {
			continue
		}
		r, sk, j := s.row(m.key(), m.FirstTime)
		r.LastTime = max(r.LastTime, m.LastTime)
		r.add(m)
		for n, b := range m.LatencyBuckets {
			sk[b] += m.LatencyCounts[n]
		}
		for n, st := range m.FailureStatuses {
			s.failed(j, st, m.FailureCounts[n], m.FirstFailure, m.LastFailure)
		}
	}
}

// Rows are the rows added up, with their hours, their sketches as sorted
// lists: hour rows first, each grain in time order.
func (s *SummarySet) Rows() []Summary {
	var hours SummarySet
	for j := range s.rows {
		m := s.rows[j]
		k := m.key()
		k.grain, k.bucket = GrainHour, m.Bucket-m.Bucket%int64(3600e9)
		if m.Bucket%int64(3600e9) < 0 {
			k.bucket -= int64(3600e9)
		}
		h, sk, hj := hours.row(k, m.FirstTime)
		h.LastTime = max(h.LastTime, m.LastTime)
		h.add(&m)
		for b, n := range s.sketchs[j] {
			sk[b] += n
		}
		for st, n := range s.fails[j] {
			hours.failed(hj, st, n, m.FirstFailure, m.LastFailure)
		}
	}
	out := append(hours.sorted(), s.sorted()...)
	return out
}

// key is the row's key.
func (r *Summary) key() summaryKey {
	return summaryKey{bucket: r.Bucket, grain: r.Grain, part: r.Part, node: r.NodeName, typ: r.Type, verdict: r.Verdict,
		dropDesc: r.DropReasonDesc, dropReason: r.DropReason, l4: r.L4Protocol, l7: r.L7Protocol, l7Type: r.L7Type, isReply: r.IsReply,
		reporter: r.Reporter, seen: r.SeenByServer, protocol: r.Protocol, src: r.Source, srcNs: r.SourceNamespace, srcPod: r.SourcePod,
		dst: r.Destination, dstNs: r.DestinationNamespace, dstPod: r.DestinationPod, dstSvc: r.DestinationService, port: r.Port,
		hasPort: r.HasPort, answered: r.Answered, dropped: r.Dropped, reset: r.Reset, synTime: r.SynTime, hasSynTime: r.HasSynTime,
		dropReasons: joinReasons(r.DropReasons)}
}

// add adds the counts of o (of the same key but for the bucket) to r.
func (r *Summary) add(o *Summary) {
	r.Flows += o.Flows
	r.TCPResets += o.TCPResets
	r.DNSErrors += o.DNSErrors
	r.Requests += o.Requests
	r.Errors += o.Errors
	r.ClientError += o.ClientError
	r.Connections += o.Connections
	r.MaxLatencyNs = max(r.MaxLatencyNs, o.MaxLatencyNs)
}

// sorted are the rows in time order, their sketches as sorted lists.
func (s *SummarySet) sorted() []Summary {
	for j := range s.rows {
		r := &s.rows[j]
		r.LatencyBuckets, r.LatencyCounts = countLists(s.sketchs[j])
		r.FailureStatuses, r.FailureCounts = countLists(s.fails[j])
	}
	rows := slices.Clone(s.rows)
	slices.SortStableFunc(rows, func(a, b Summary) int { return cmp.Compare(a.Bucket, b.Bucket) })
	return rows
}

// countLists are a map's keys in order and their counts.
func countLists(m map[int32]uint64) ([]int32, []uint64) {
	if len(m) == 0 {
		return nil, nil
	}
	keys := make([]int32, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	counts := make([]uint64, len(keys))
	for i, k := range keys {
		counts[i] = m[k]
	}
	return keys, counts
}

// Summarize is the summary of a file's (or a piece's) final derived rows,
// and its footer metadata.
func Summarize(d Derived) ([]Summary, map[string]string) {
	var s SummarySet
	s.AddRequests(d.Requests)
	s.AddConnections(d.Connections)
	s.AddTraffic(d.Traffic)
	return s.Rows(), s.Meta()
}

// Opens reports whether the row opens its attempt: its first flow is the
// SYN the writer named the attempt by (a row that continues an attempt of
// an earlier file, or whose attempt the writer could not tell, does not).
func (c *Connection) Opens() bool {
	if !c.HasAttempt || !c.FirstSynOnly || !c.HasSyn || c.SynTime != c.FirstTime {
		return false
	}
	t := tuple{c.SourceIP, c.DestinationIP, c.SourcePort, c.DestinationPort, c.HasSourcePort, c.HasDestinationPort}
	return c.Attempt == attemptID(t, c.FirstTime)
}
