package schema

import (
	"fmt"
	"strconv"
)

// Beside each flow file a recording holds what the analyses need of it,
// computed once when the file is written (derive.go): the derived tables,
// each a kind of its own (a directory of the recording), one file per flow
// file under the same name. Every derived row comes from the flows of one
// file (of one flush, for a live recording's pieces) and no state crosses
// files: what spans files (a request answered in the next one, a
// connection closed an hour later) is joined when the tables are read
// (analyze/sql/views), from rows that say what their file could not tell.
// So a derived file is a function of its flow file alone, and recovery,
// compaction and `flowtape reindex` rebuild it from that file.
const (
	KindRequests    = "requests"
	KindConnections = "connections"
	KindTraffic     = "traffic"
	KindPods        = "pods"
)

// DerivedKinds are the derived tables, in the order they are written
// (flows, whose presence promises them, come after).
var DerivedKinds = []string{KindRequests, KindConnections, KindTraffic, KindPods, KindSummary}

// DerivedVersion is the version of the derivation: what the derived rows
// of a flow file are. A reader refuses derived files of another version
// (their rows mean something else) and names `flowtape reindex`, which
// derives them again from the flows.
const DerivedVersion = 5

// MetaDerivedVersion is the key-value metadata key of DerivedVersion in
// derived files.
const MetaDerivedVersion = "flowtape.derived_version"

// CheckDerivedVersion returns an error when a derived file of version v
// (its MetaDerivedVersion) cannot be read by this build.
func CheckDerivedVersion(v string) error {
	n, err := strconv.Atoi(v)
	switch {
	case v == "" || err != nil:
		return fmt.Errorf("no valid %s metadata (%q): not a derived file of this flowtape", MetaDerivedVersion, v)
	case n > DerivedVersion:
		return fmt.Errorf("derived by a newer flowtape (derived version %d, this one reads %d)", n, DerivedVersion)
	case n < DerivedVersion:
		return fmt.Errorf("derived by an older flowtape (derived version %d, this one reads %d)", n, DerivedVersion)
	}
	return nil
}

// Request is a row of requests: an HTTP or gRPC response, or a request
// its file holds no response for.
type Request struct {
	Time                                         int64
	UUID                                         [16]byte
	HasUUID                                      bool
	NodeName, Reporter, RequestID                string
	Client, ClientNamespace, ClientPod, ClientIP string
	Server, ServerNamespace, ServerPod, ServerIP string
	ServerPort                                   uint32
	HasServerPort                                bool
	Protocol, Method, URL, Path                  string
	Status                                       uint32
	HasStatus                                    bool
	LatencyNs                                    uint64 // 0: not measured (NULL)
	Error, ClientError                           bool
	SeenByServer                                 Tri
	Open                                         bool
	// CallKey and ProxyKey hash what pairs a request with its response
	// and one proxy's row with the other's but the endpoints, which the
	// views compare by name (see Request.keys); 0 without an X-Request-Id.
	CallKey, ProxyKey int64
	// pair and proxy are what pairs them within the file (pairKey,
	// proxyPairKey).
	pair, proxy uint64
	// clientNamed, serverNamed: named by their workloads (see summary.go)
	clientNamed, serverNamed bool
}

// CountedByServer reports whether the row is a client proxy's whose
// request a server proxy's row of the same file counts.
func (r *Request) CountedByServer() bool { return r.Reporter == "client" && r.SeenByServer == True }

// Unsettled reports whether the row's file leaves the row to the views:
// an open request (a later file may answer it), or one whose file cannot
// tell whether a server proxy saw it. The per-minute summaries count the
// others (see summary.go).
func (r *Request) Unsettled() bool { return r.Open || r.SeenByServer == Null }

// Requests is the requests table.
var Requests = newRowTable(KindRequests,
	"One row per HTTP or gRPC response an L7 proxy reported (a request, paired with its response), and one per request "+
		"with an X-Request-Id that its file holds no response for (open; the views pair it with a response in another file, "+
		"or count it as never answered). Endpoints are in the request's direction.",
	[]RowColumn[Request]{
		field(cTime, "time", "When the response was reported (for an open request: the request).",
			func(r *Request) (int64, bool) { return r.Time, true }),
		field(cUUID, "uuid", "uuid of the flow the row comes from.", func(r *Request) ([16]byte, bool) { return r.UUID, r.HasUUID }),
		strField("node_name", "Node whose proxy reported it.", func(r *Request) string { return r.NodeName }),
		strField("reporter", "The proxy that reported it: client (egress) or server (ingress).", func(r *Request) string { return r.Reporter }),
		strField("request_id", "X-Request-Id (Envoy's request ID).", func(r *Request) string { return r.RequestID }),
		strField("client", "The caller, named as flows name endpoints (source_endpoint).", func(r *Request) string { return r.Client }),
		strField("client_namespace", "Namespace of the caller.", func(r *Request) string { return r.ClientNamespace }),
		strField("client_pod", "Pod of the caller.", func(r *Request) string { return r.ClientPod }),
		strField("client_ip", "IP of the caller.", func(r *Request) string { return r.ClientIP }),
		strField("server", "The callee, named as flows name endpoints.", func(r *Request) string { return r.Server }),
		strField("server_namespace", "Namespace of the callee.", func(r *Request) string { return r.ServerNamespace }),
		strField("server_pod", "Pod of the callee.", func(r *Request) string { return r.ServerPod }),
		strField("server_ip", "IP of the callee.", func(r *Request) string { return r.ServerIP }),
		field(cUint32, "server_port", "Port of the callee.", func(r *Request) (uint32, bool) { return r.ServerPort, r.HasServerPort }),
		strField("protocol", "http or grpc.", func(r *Request) string { return r.Protocol }),
		strField("method", "HTTP method.", func(r *Request) string { return r.Method }),
		strField("url", "Request URL.", func(r *Request) string { return r.URL }),
		strField("path", "Path of the URL without query string and fragment; for gRPC package.Service/Method.",
			func(r *Request) string { return r.Path }),
		field(cUint32, "status", "HTTP status of the response; NULL for an open request.",
			func(r *Request) (uint32, bool) { return r.Status, r.HasStatus }),
		field(cUint64, "latency_ns", "The proxy's request-to-response time; NULL where it did not measure it, and for an open request.",
			func(r *Request) (uint64, bool) { return r.LatencyNs, r.LatencyNs > 0 }),
		field(cInt32, "latency_bucket", "An order-preserving bucket of latency_ns (16 per doubling), for exact percentiles in two passes.",
			func(r *Request) (int32, bool) { return LatencyBucket(r.LatencyNs), r.LatencyNs > 0 }),
		field(cBool, "error", "5xx, or a gRPC call not answered 200.", func(r *Request) (bool, bool) { return r.Error, true }),
		field(cBool, "client_error", "4xx.", func(r *Request) (bool, bool) { return r.ClientError, true }),
		triField("seen_by_server", "Whether a server proxy saw the request: true for the server's own rows and where the file "+
			"holds a server flow with the same X-Request-Id, client and server; NULL where the file cannot tell (the views look "+
			"in the other files; a finished file keeps such rows, and open ones, in row groups of their own, which the summary path reads alone).", func(r *Request) Tri { return r.SeenByServer }),
		field(cBool, "open", "A request its file holds no response for of the same node, proxy, X-Request-Id, client and server "+
			"pods (or names, where the flows name no pod); the views look for one by name in all files.",
			func(r *Request) (bool, bool) { return r.Open, true }),
		field(cBool, "counted_by_server", "A client proxy's row of a request whose server proxy's row its file holds: the server "+
			"rule of requests_counted counts that one instead, and skips this unread (a finished file keeps such rows, but open ones, in row groups of their own).",
			func(r *Request) (bool, bool) { return r.CountedByServer(), true }),
		field(cInt64, "call_key", "What pairs a request with its response, but the client and server (compared by name): a 64-bit "+
			"hash (FNV-1a) of the node, proxy and X-Request-Id; NULL without an X-Request-Id.",
			func(r *Request) (int64, bool) { return r.CallKey, r.RequestID != "" }),
		field(cInt64, "proxy_key", "What pairs a client proxy's row with the server proxy's, but the client and server "+
			"(compared by name): a 64-bit hash (FNV-1a) of the X-Request-Id; NULL without an X-Request-Id.",
			func(r *Request) (int64, bool) { return r.ProxyKey, r.RequestID != "" }),
	})

// Connection is a row of connections: the TCP flows of one client and
// server address and port within one file, up to a new connection
// attempt (a SYN after other packets), or from one to the end of the file.
type Connection struct {
	SourceIP, DestinationIP                           string
	SourcePort, DestinationPort                       uint32
	HasSourcePort, HasDestinationPort                 bool
	FirstTime, LastTime, SynTime                      int64
	HasSyn                                            bool
	FirstSynOnly, LastSynOnly                         bool
	NodeName                                          string
	Source, SourceNamespace, SourcePod                string
	Destination, DestinationNamespace, DestinationPod string
	DestinationService                                string
	Answered, Dropped                                 Tri
	Reset                                             bool
	DropReasons                                       []string
	Flows                                             int64
	// Attempt names the connection attempt of the row (attemptID); not
	// HasAttempt where its writer could not tell (see ConnState).
	Attempt    int64
	HasAttempt bool
	// Key names the connection (tupleKey).
	Key int64
	// srcNamed, dstNamed: named by their workloads (see summary.go)
	srcNamed, dstNamed bool
	// before is what the session's earlier rows of the attempt said, where
	// the row continues one that a summary counted (see Unchanged).
	before connSoFar
}

// Connections is the connections table.
var Connections = newRowTable(KindConnections,
	"One row per TCP connection attempt and file: the L3/L4 TCP flows of one client and server address and port "+
		"(in the connection's direction, as edges turn them) from a SYN that opens an attempt, or from the start of the file, "+
		"to the next opening SYN or the end of the file. The connections view joins the rows of an attempt across files.",
	[]RowColumn[Connection]{
		strField("source_ip", "Client address.", func(r *Connection) string { return r.SourceIP }),
		field(cUint32, "source_port", "Client port.", func(r *Connection) (uint32, bool) { return r.SourcePort, r.HasSourcePort }),
		strField("destination_ip", "Server address.", func(r *Connection) string { return r.DestinationIP }),
		field(cUint32, "destination_port", "Server port.", func(r *Connection) (uint32, bool) { return r.DestinationPort, r.HasDestinationPort }),
		field(cTime, "first_time", "Time of the first flow.", func(r *Connection) (int64, bool) { return r.FirstTime, true }),
		field(cTime, "syn_time", "Time of the first SYN without ACK; NULL if none.", func(r *Connection) (int64, bool) { return r.SynTime, r.HasSyn }),
		field(cTime, "last_time", "Time of the last flow.", func(r *Connection) (int64, bool) { return r.LastTime, true }),
		field(cBool, "first_syn_only", "Whether the first flow is a SYN without ACK.", func(r *Connection) (bool, bool) { return r.FirstSynOnly, true }),
		field(cBool, "last_syn_only", "Whether the last flow is a SYN without ACK.", func(r *Connection) (bool, bool) { return r.LastSynOnly, true }),
		strField("node_name", "Node of the first flow that names one.", func(r *Connection) string { return r.NodeName }),
		strField("source", "The client, as edges name it (NULL: unknown), of the first flow that names one.", func(r *Connection) string { return r.Source }),
		strField("source_namespace", "Its namespace.", func(r *Connection) string { return r.SourceNamespace }),
		strField("source_pod", "Its pod.", func(r *Connection) string { return r.SourcePod }),
		strField("destination", "The server, as edges name it.", func(r *Connection) string { return r.Destination }),
		strField("destination_namespace", "Its namespace.", func(r *Connection) string { return r.DestinationNamespace }),
		strField("destination_pod", "Its pod.", func(r *Connection) string { return r.DestinationPod }),
		strField("destination_service", "Kubernetes service the client addressed, where Cilium knew it.",
			func(r *Connection) string { return r.DestinationService }),
		triField("answered", "A SYN-ACK, a packet other than a SYN, a reset or a drop, or a SYN redirected to the L7 proxy.",
			func(r *Connection) Tri { return r.Answered }),
		field(cBool, "reset", "A RST either way.", func(r *Connection) (bool, bool) { return r.Reset, true }),
		triField("dropped", "A packet of it was dropped.", func(r *Connection) Tri { return r.Dropped }),
		field(cStrings, "drop_reasons", "drop_reason_desc of each dropped packet.",
			func(r *Connection) ([]string, bool) { return r.DropReasons, len(r.DropReasons) > 0 }),
		field(cUint64, "flows", "Flows.", func(r *Connection) (uint64, bool) { return uint64(r.Flows), true }),
		field(cInt64, "connection_key", "The client and server address and port: a 64-bit hash (FNV-1a) of them, what the view "+
			"groups and orders a connection's rows by.", func(r *Connection) (int64, bool) { return r.Key, true }),
		field(cInt64, "attempt", "The connection attempt the row belongs to: a 64-bit hash (FNV-1a) of the addresses, ports and "+
			"time of its opening SYN, carried by the writer from file to file; NULL where the writer could not tell (a file derived "+
			"on its own: recovery, compaction), whose connection the view orders in time instead.",
			func(r *Connection) (int64, bool) { return r.Attempt, r.HasAttempt }),
		field(cBool, "opens", "The row opens its attempt (its first flow is the SYN attempt is named by): the summary counts "+
			"the attempt in this file; readers of the summary recompute the connections of rows that do not (but unchanged ones).",
			func(r *Connection) (bool, bool) { return r.Opens(), true }),
		field(cBool, "unchanged", "The row continues an attempt that an earlier file of its session opened (and summarized), "+
			"and it and the attempt's rows between leave what the opening row says as it was: answered, reset and dropped, "+
			"no name it lacked, the same service, no flow before or at its first (it may add flows, later times and drop "+
			"reasons). Readers of the summary need not read a connection whose rows that do not open their attempt are all "+
			"unchanged, where the opening row is read too (errors: and add no drop reason); false where the writer could not tell.",
			func(r *Connection) (bool, bool) { return r.Unchanged(), true }),
	})

// TrafficCount is a row of traffic: flows of one kind between two endpoints in
// one minute, counted.
type TrafficCount struct {
	Bucket                                            int64
	NodeName, Type, Verdict, DropReasonDesc           string
	DropReason                                        uint32
	L4Protocol, L7Protocol, L7Type                    string
	IsReply                                           Tri
	Source, SourceNamespace, SourcePod                string
	Destination, DestinationNamespace, DestinationPod string
	DestinationService                                string
	Port                                              uint32
	HasPort                                           bool
	Flows, TCPResets, DNSErrors                       int64
	MaxLatencyNs                                      uint64
	FirstTime, LastTime                               int64
	srcNamed, dstNamed                                bool
}

// Traffic is the traffic table.
var Traffic = newRowTable(KindTraffic,
	"Flows counted by minute, node, kind (type, verdict, drop reason, protocols, direction) and edge (endpoints in the "+
		"connection's direction, as the edges view turns them): what the analyses count flows by, without reading every flow.",
	[]RowColumn[TrafficCount]{
		field(cTime, "bucket", "Start of the minute (UTC).", func(r *TrafficCount) (int64, bool) { return r.Bucket, true }),
		strField("node_name", "Node that observed the flows.", func(r *TrafficCount) string { return r.NodeName }),
		strField("type", "Flow type.", func(r *TrafficCount) string { return r.Type }),
		strField("verdict", "Verdict.", func(r *TrafficCount) string { return r.Verdict }),
		strField("drop_reason_desc", "Drop reason.", func(r *TrafficCount) string { return r.DropReasonDesc }),
		field(cUint32, "drop_reason", "Numeric drop reason.", func(r *TrafficCount) (uint32, bool) { return r.DropReason, true }),
		strField("l4_protocol", "Transport protocol.", func(r *TrafficCount) string { return r.L4Protocol }),
		strField("l7_protocol", "Application protocol.", func(r *TrafficCount) string { return r.L7Protocol }),
		strField("l7_type", "L7 record type.", func(r *TrafficCount) string { return r.L7Type }),
		triField("is_reply", "Whether the flows went from server to client (see the edges view); NULL where that cannot be told.",
			func(r *TrafficCount) Tri { return r.IsReply }),
		strField("source", "The client, as the edges view names it (NULL: unknown).", func(r *TrafficCount) string { return r.Source }),
		strField("source_namespace", "Its namespace.", func(r *TrafficCount) string { return r.SourceNamespace }),
		strField("source_pod", "Its pod.", func(r *TrafficCount) string { return r.SourcePod }),
		strField("destination", "The server.", func(r *TrafficCount) string { return r.Destination }),
		strField("destination_namespace", "Its namespace.", func(r *TrafficCount) string { return r.DestinationNamespace }),
		strField("destination_pod", "Its pod.", func(r *TrafficCount) string { return r.DestinationPod }),
		strField("destination_service", "Kubernetes service the client addressed.", func(r *TrafficCount) string { return r.DestinationService }),
		field(cUint32, "destination_port", "Server port.", func(r *TrafficCount) (uint32, bool) { return r.Port, r.HasPort }),
		field(cUint64, "flows", "Flows.", func(r *TrafficCount) (uint64, bool) { return uint64(r.Flows), true }),
		field(cUint64, "tcp_resets", "Flows with the TCP RST flag.", func(r *TrafficCount) (uint64, bool) { return uint64(r.TCPResets), true }),
		field(cUint64, "dns_errors", "DNS answers other than NOERROR.", func(r *TrafficCount) (uint64, bool) { return uint64(r.DNSErrors), true }),
		field(cUint64, "max_latency_ns", "The longest latency an L7 proxy measured (l7_latency_ns); NULL for other flows.",
			func(r *TrafficCount) (uint64, bool) { return r.MaxLatencyNs, r.L7Protocol != "" }),
		field(cTime, "first_time", "Time of the first of the flows.", func(r *TrafficCount) (int64, bool) { return r.FirstTime, true }),
		field(cTime, "last_time", "Time of the last of the flows.", func(r *TrafficCount) (int64, bool) { return r.LastTime, true }),
	})

// Pod is a row of pods: what one file's flows say of a pod's name.
type Pod struct {
	Namespace, Pod, Workload, App, Inferred string
	FirstTime, LastTime                     int64
	Flows                                   int64
}

// Pods is the pods table.
var Pods = newRowTable(KindPods,
	"One row per pod and name it was seen with in a file: the views name a pod by the best name the recording knows "+
		"(its workload, else its app label, seen on any of its flows, else the workload its name implies), so that a pod "+
		"whose labels are missing from some flows is one endpoint.",
	[]RowColumn[Pod]{
		strField("namespace", "Namespace.", func(r *Pod) string { return r.Namespace }),
		strField("pod", "Pod name.", func(r *Pod) string { return r.Pod }),
		strField("workload", "Workload the flows named (source_workload, destination_workload); NULL if none did.",
			func(r *Pod) string { return r.Workload }),
		strField("app", "App label the flows carried; NULL if none did.", func(r *Pod) string { return r.App }),
		strField("inferred", "The workload Kubernetes' naming implies: Deployment name-<pod-template-hash>-<5>, DaemonSet or Job "+
			"name-<5>, StatefulSet name-<n>; else the pod name.", func(r *Pod) string { return r.Inferred }),
		field(cTime, "first_time", "First flow.", func(r *Pod) (int64, bool) { return r.FirstTime, true }),
		field(cTime, "last_time", "Last flow.", func(r *Pod) (int64, bool) { return r.LastTime, true }),
		field(cUint64, "flows", "Flows (each side counted).", func(r *Pod) (uint64, bool) { return uint64(r.Flows), true }),
	})
