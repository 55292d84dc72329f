package analyze_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/benchdata"
)

// BenchmarkClusterDay times `analyze services`, `graph` and `errors` over a
// day of a 200-node cluster at 1,000 flows/s per node (17 billion flows;
// FLOWTAPE_BENCH_CLUSTER_NODES overrides the nodes), whose summaries are
// generated directly (benchdata.ClusterDay) and rolled up as flowtape
// compact leaves a day that is over: opening the recording and
// running the analysis, as the command does, on the summary path, which
// --summaries auto takes for a day. The answers are checked against what
// was generated.
func BenchmarkClusterDay(b *testing.B) {
	nodes := 200
	if v := os.Getenv("FLOWTAPE_BENCH_CLUSTER_NODES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("FLOWTAPE_BENCH_CLUSTER_NODES=%q: want a number of nodes", v)
		}
		nodes = n
	}
	rec, truth := benchdata.ClusterDay(b, nodes, 1000)
	// as flowtape compact leaves a day that is over: its summaries rolled up
	start := time.Now()
	st, err := analyze.Rollup(context.Background(), rec, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		b.Fatal(err)
	}
	if st.Written > 0 {
		b.Logf("rolled up %d files in %s", st.Files, time.Since(start).Round(time.Millisecond))
	}
	for _, name := range []string{"services", "graph", "errors"} {
		b.Run(name, func(b *testing.B) {
			var sec float64
			for i := 0; i < b.N; i++ {
				start := time.Now()
				e, err := analyze.Open(context.Background(), []string{rec}, analyze.Options{})
				if err != nil {
					b.Fatal(err)
				}
				res, err := e.Run(context.Background(), name, analyze.Params{})
				if err != nil {
					b.Fatal(err)
				}
				sec += time.Since(start).Seconds()
				if e.PathNote == "" {
					b.Fatalf("%s did not read the summaries", name)
				}
				e.Close()
				if i > 0 {
					continue
				}
				var requests, errors int64
				col := map[string]int{}
				for j, c := range res.Columns {
					col[c] = j
				}
				for _, r := range res.Rows {
					requests += analyze.IntCell(r[col["requests"]])
					errors += analyze.IntCell(r[col["errors"]])
				}
				if name == "errors" {
					// rows of the edges that failed only
					requests = truth.Requests
				}
				if requests != truth.Requests || errors != truth.Errors {
					b.Fatalf("%s: %d requests, %d errors; the day holds %d and %d", name, requests, errors, truth.Requests, truth.Errors)
				}
				b.Logf("%s over %d flows (%d nodes, a day): %d rows, %d requests", name, truth.Flows, truth.Nodes, len(res.Rows), requests)
			}
			b.ReportMetric(sec/float64(b.N), "s/op-wall")
			b.ReportMetric(float64(truth.Flows), "flows")
		})
	}
}
