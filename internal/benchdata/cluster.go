package benchdata

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// A day of a cluster, too large to simulate (200 nodes at 1,000 flows/s is
// 17 billion flows): per-node recorders' files of each node and hour (as
// hourly compaction leaves them), each with a few real flows and their
// derived tables, and the summaries the day's flows would have, generated
// directly (a synthetic mesh of 50 services in 3 namespaces; each node runs
// pods of 6 of them). The summaries are what the recorder writes: minute
// rows and hour rows, latency sketches of log-normal latencies.

// clusterVersion names the generator: cached data of another is made
// again.
const clusterVersion = 2

// ClusterTruth is what the generated day holds, to check answers by.
type ClusterTruth struct {
	Flows        int64 // flows the summaries count
	Requests     int64 // requests as server proxies reported them (analyze services' default)
	Errors       int64
	Connections  int64
	Services     int
	Nodes, Hours int
}

const clusterServices = 50

func svcName(i int) string { return fmt.Sprintf("svc-%02d", i) }
func svcNS(i int) string   { return fmt.Sprintf("team-%d", i%3) }

// callees are the services service i calls.
func callees(i int) []int {
	var out []int
	for _, j := range []int{(i*7 + 1) % clusterServices, (i*11 + 3) % clusterServices, (i*17 + 5) % clusterServices} {
		if j != i && !contains(out, j) {
			out = append(out, j)
		}
	}
	return out
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// hosted are the services with pods on node n.
func hosted(n int) []int {
	var out []int
	for j := 0; len(out) < 6; j++ {
		if s := (n*7 + j*13) % clusterServices; !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// ClusterDay returns a recording of a day of nodes nodes at rate flows/s
// each, generated once into the cache (FLOWTAPE_BENCH_CACHE as for
// Recording), and what it holds.
func ClusterDay(b *testing.B, nodes int, rate float64) (string, ClusterTruth) {
	b.Helper()
	root := cacheRoot(b)
	prefix := fmt.Sprintf("cluster-%d-%g", nodes, rate)
	dir := filepath.Join(root, fmt.Sprintf("%s-g%d-v%s-d%d", prefix, clusterVersion, schema.Version, schema.DerivedVersion))
	rec := filepath.Join(dir, "recording")
	done := filepath.Join(dir, "truth.json")
	var truth ClusterTruth
	if js, err := os.ReadFile(done); err == nil && json.Unmarshal(js, &truth) == nil {
		b.Logf("reusing %s", dir)
		return rec, truth
	}
	stale, _ := filepath.Glob(filepath.Join(root, prefix+"-*"))
	for _, d := range stale {
		if err := os.RemoveAll(d); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	truth, err := generateCluster(rec, nodes, rate)
	if err != nil {
		b.Fatalf("generate the cluster's day in %s: %v", dir, err)
	}
	js, _ := json.Marshal(truth)
	if err := os.WriteFile(done, js, 0o600); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated a day of %d nodes at %g flows/s (%d flows summarized) in %s, into %s",
		nodes, rate, truth.Flows, time.Since(start).Round(time.Second), dir)
	return rec, truth
}

var clusterDay = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

// generateCluster writes the day into rec.
func generateCluster(rec string, nodes int, rate float64) (ClusterTruth, error) {
	truth := ClusterTruth{Services: clusterServices, Nodes: nodes, Hours: 24}
	// services' latencies: medians of 1 to 7 ms
	var latencies []*lognormal
	for i := range 7 {
		latencies = append(latencies, newLognormal(float64(time.Millisecond)*float64(1+i), 0.6))
	}
	callers := make([][]int, clusterServices)
	for i := range clusterServices {
		for _, j := range callees(i) {
			callers[j] = append(callers[j], i)
		}
	}
	for n := range nodes {
		node := fmt.Sprintf("node-%03d", n)
		id := fmt.Sprintf("n%07d", n) // the node's recorder session
		for h := range 24 {
			t := clusterDay.Add(time.Duration(h) * time.Hour)
			var set schema.SummarySet
			for m := range 60 {
				rows := clusterMinute(&truth, node, n, t.Add(time.Duration(m)*time.Minute), rate, callers, latencies)
				set.AddRows(rows)
			}
			p := filepath.Join(rec, "flows", tape.Partition(t), tape.FileName(t, id, h+1))
			if err := tape.WriteFile(schema.Flows, p, handshake(node, n, t), tape.WriterOptions{}); err != nil {
				return truth, err
			}
			if err := tape.WriteSummaryOf(p, set.Rows(), set.Meta()); err != nil {
				return truth, err
			}
		}
	}
	return truth, nil
}

// clusterMinute is the summary of one node's minute. Every request of an
// edge is reported by the client's proxy (on the client's node) and the
// server's (on the server's), each as a request and a response flow,
// with a packet each way at L3/L4: 4 flows per report.
func clusterMinute(truth *ClusterTruth, node string, n int, at time.Time, rate float64, callers [][]int, latencies []*lognormal) []schema.Summary {
	type edge struct {
		client, server int
		byServer       bool // reported by the server's proxy
	}
	var edges []edge
	for _, s := range hosted(n) {
		for _, c := range callers[s] {
			edges = append(edges, edge{c, s, true})
		}
		for _, c := range callees(s) {
			edges = append(edges, edge{s, c, false})
		}
	}
	perEdge := int64(rate * 60 / 4 / float64(len(edges)))
	b := at.UnixNano()
	var out []schema.Summary
	for k, e := range edges {
		// requests vary by edge and minute; service 7 fails 5% of its
		// calls from 10:00 to 11:00, the others 0.2%
		r := perEdge/2 + int64((k*7919+at.Minute()*104729+n*31)%int(perEdge+1))
		errRate := 0.002
		if e.server == 7 && at.Hour() == 10 {
			errRate = 0.05
		}
		errs := int64(math.Round(float64(r) * errRate))
		base := schema.Summary{Bucket: b, Grain: schema.GrainMinute, Source: svcName(e.client), SourceNamespace: svcNS(e.client),
			Destination: svcName(e.server), DestinationNamespace: svcNS(e.server), FirstTime: b, LastTime: b + int64(59*time.Second)}
		req := base
		req.Part, req.Protocol, req.SeenByServer, req.Requests, req.Errors = schema.PartRequests, "grpc", schema.True, r, errs
		req.Reporter = "client"
		if e.byServer {
			req.Reporter = "server"
			truth.Requests += r
			truth.Errors += errs
		}
		req.LatencyBuckets, req.LatencyCounts, req.MaxLatencyNs = latencies[e.server%7].sketch(r)
		req.Port, req.HasPort = 8080, true
		if errs > 0 {
			req.FailureStatuses, req.FailureCounts = []int32{503}, []uint64{uint64(errs)}
			req.FirstFailure, req.LastFailure, req.HasFailure = b+int64(time.Second), b+int64(58*time.Second), true
		}
		out = append(out, req)
		for _, kind := range []struct {
			typ, l7, l7Type string
			reply           bool
		}{{"L7", "http", "REQUEST", false}, {"L7", "http", "RESPONSE", true}, {"L3_L4", "", "", false}, {"L3_L4", "", "", true}} {
			f := base
			f.Part, f.NodeName, f.Type, f.Verdict, f.L4Protocol, f.L7Protocol, f.L7Type = schema.PartFlows, node, kind.typ, "FORWARDED", "TCP", kind.l7, kind.l7Type
			f.IsReply, f.DestinationService, f.Port, f.HasPort, f.Flows = schema.TriOf(kind.reply), svcName(e.server), 8080, true, r
			if kind.l7 != "" {
				f.MaxLatencyNs = req.MaxLatencyNs
			}
			out = append(out, f)
			truth.Flows += r
		}
		if e.byServer {
			// a connection per 20 requests, one in a thousand reset
			c := base
			c.Part, c.NodeName, c.DestinationService, c.Port, c.HasPort = schema.PartConnections, node, svcName(e.server), 8080, true
			c.Answered, c.Dropped, c.Connections = schema.True, schema.False, r/20
			out = append(out, c)
			truth.Connections += c.Connections
			if k%10 == 0 {
				c.Reset, c.Connections = true, 1
				out = append(out, c)
				truth.Connections++
			}
		}
	}
	// a deny policy's drops
	d := schema.Summary{Bucket: b, Grain: schema.GrainMinute, Part: schema.PartFlows, NodeName: node, Type: "L3_L4", Verdict: "DROPPED",
		DropReasonDesc: "POLICY_DENIED", DropReason: 133, L4Protocol: "TCP", IsReply: schema.False,
		Source: svcName(n % clusterServices), SourceNamespace: svcNS(n % clusterServices), Destination: "world", Port: 443, HasPort: true,
		Flows: 5, FirstTime: b, LastTime: b + int64(30*time.Second)}
	truth.Flows += d.Flows
	return append(out, d)
}

// lognormal is a log-normal distribution of latencies over the sketch's
// buckets: each bucket's share, and the largest latency.
type lognormal struct {
	buckets []int32
	shares  []float64
	max     uint64
	mid     int // the median's bucket, which takes what rounding leaves
}

func newLognormal(median, sigma float64) *lognormal {
	lo, hi := schema.SketchBucket(uint64(median*math.Exp(-4*sigma))), schema.SketchBucket(uint64(median*math.Exp(4*sigma)))
	cdf := func(x float64) float64 {
		return 0.5 * (1 + math.Erf((math.Log(x)-math.Log(median))/(sigma*math.Sqrt2)))
	}
	gamma := schema.SketchGamma()
	d := &lognormal{max: uint64(math.Pow(gamma, float64(hi)))}
	for b := lo; b <= hi; b++ {
		d.buckets = append(d.buckets, b)
		d.shares = append(d.shares, cdf(math.Pow(gamma, float64(b)))-cdf(math.Pow(gamma, float64(b-1))))
		if b == schema.SketchBucket(uint64(median)) {
			d.mid = len(d.buckets) - 1
		}
	}
	return d
}

// sketch spreads n latencies by the distribution (counts rounded, the
// rest in the median's bucket).
func (d *lognormal) sketch(n int64) ([]int32, []uint64, uint64) {
	var buckets []int32
	var counts []uint64
	var total int64
	mid := -1
	maxB := int32(0)
	for i, b := range d.buckets {
		c := int64(math.Round(float64(n) * d.shares[i]))
		if i == d.mid {
			mid = len(counts)
			c = max(c, 1)
		}
		if c == 0 {
			continue
		}
		buckets, counts = append(buckets, b), append(counts, uint64(c))
		total += c
		maxB = b
	}
	counts[mid] = uint64(int64(counts[mid]) + n - total)
	return buckets, counts, uint64(math.Pow(schema.SketchGamma(), float64(maxB)))
}

// handshake is a node's few real flows of an hour: a TCP handshake
// between two of its pods, which its derived tables hold.
func handshake(node string, n int, t time.Time) []*flowpb.Flow {
	s, c := hosted(n)[0], hosted(n)[1]
	ep := func(i int) *flowpb.Endpoint {
		return &flowpb.Endpoint{Namespace: svcNS(i), PodName: fmt.Sprintf("%s-%d-abcde", svcName(i), n), Identity: uint32(1000 + i),
			Workloads: []*flowpb.Workload{{Name: svcName(i), Kind: "Deployment"}}}
	}
	flow := func(at time.Duration, src, dst *flowpb.Endpoint, sport, dport uint32, ack bool) *flowpb.Flow {
		return &flowpb.Flow{Time: timestamppb.New(t.Add(at)), NodeName: node, Verdict: flowpb.Verdict_FORWARDED, Type: flowpb.FlowType_L3_L4,
			Uuid:   fmt.Sprintf("%08x-0000-4000-8000-%012x", n, t.Unix()*10+int64(at/time.Millisecond)),
			IP:     &flowpb.IP{Source: fmt.Sprintf("10.%d.%d.%d", n/256, n%256, 10+c), Destination: fmt.Sprintf("10.%d.%d.%d", n/256, n%256, 10+s)},
			Source: src, Destination: dst, IsReply: wrapperspb.Bool(ack),
			L4: &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{SourcePort: sport, DestinationPort: dport,
				Flags: &flowpb.TCPFlags{SYN: true, ACK: ack}}}}}
	}
	rev := flow(2*time.Millisecond, ep(s), ep(c), 8080, 40000, true)
	rev.IP.Source, rev.IP.Destination = rev.IP.Destination, rev.IP.Source
	return []*flowpb.Flow{flow(time.Millisecond, ep(c), ep(s), 40000, 8080, false), rev}
}
