// Command benchsummary reads `go test -bench` output on stdin and prints the
// numbers flowtape's issues ask for, as ratios measured in the same run.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

func main() {
	metrics := map[string]map[string]float64{} // benchmark -> unit -> value
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		name := fields[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			name = name[:i]
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(fields); i += 2 {
			if v, err := strconv.ParseFloat(fields[i], 64); err == nil {
				m[fields[i+1]] = v
			}
		}
		metrics[name] = m
	}
	get := func(bench, unit string) (float64, bool) {
		v, ok := metrics[bench][unit]
		return v, ok
	}
	fmt.Println("\n== flowtape benchmark summary ==")
	if v, ok := get("BenchmarkEncode/arrow-go-pqarrow", "flows/s"); ok {
		fmt.Printf("schema encode (arrow-go pqarrow): %.0f flows/s, %.1f B/flow\n", v, metrics["BenchmarkEncode/arrow-go-pqarrow"]["B/flow"])
	}
	if v, ok := get("BenchmarkEncode/parquet-go", "flows/s"); ok {
		fmt.Printf("schema encode (parquet-go):       %.0f flows/s, %.1f B/flow\n", v, metrics["BenchmarkEncode/parquet-go"]["B/flow"])
	}
	if raw, ok := get("BenchmarkHubbleJSON", "B/flow"); ok {
		gz := metrics["BenchmarkHubbleJSON"]["gzipB/flow"]
		fmt.Printf("hubble jsonpb: %.0f B/flow raw, %.1f B/flow gzip\n", raw, gz)
		if pq, ok := get("BenchmarkEncode/arrow-go-pqarrow", "B/flow"); ok && gz > 0 {
			fmt.Printf("parquet / jsonpb: %.3fx raw, %.3fx gzip\n", pq/raw, pq/gz)
		}
	}
	if m, ok := metrics["BenchmarkRecord"]; ok {
		fmt.Printf("record: %.0f flows/s vs bare client %.0f flows/s = %.2fx (target >= 0.70)\n",
			m["record-flows/s"], m["bare-flows/s"], m["record/bare"])
		if r, ok := m["derived-cpu-ratio"]; ok {
			fmt.Printf("record CPU: %.2f us/flow with the derived tables, %.2f without: %.3fx, the median pair (%.3f-%.3fx; target <= 1.15)\n",
				m["cpu-us/flow"], m["cpu-us/flow-no-derived"], r, m["derived-cpu-ratio-min"], m["derived-cpu-ratio-max"])
		}
		if h, ok := m["hubble-cpu-us/flow"]; ok {
			fmt.Printf("record CPU vs the hubble CLI (observe -o jsonpb > /dev/null): %.1f us/flow against %.1f: %.2fx less (target >= 3.5); the simulator %.1f us/flow apart\n",
				m["cpu-us/flow"], h, m["x-less-cpu-than-hubble"], m["sim-cpu-us/flow"])
		}
		fmt.Printf("record peak RSS: %.0f MB (VmHWM, with the binary's file pages), %.0f MB anonymous (target <= 200)\n",
			m["peak-RSS-MB"], m["peak-anon-MB"])
		if v, ok := m["recorder-peak-RSS-MB"]; ok {
			fmt.Printf("recorder build peak RSS: %.0f MB (target <= 150): %.0f MB anonymous, %.0f MB of its binary's pages\n",
				v, m["recorder-peak-anon-MB"], m["recorder-peak-file-MB"])
		}
		fmt.Printf("record size: %.1f B/flow; jsonpb %.0f B/flow, jsonpb.gz %.1f B/flow; parquet/jsonpb.gz = %.3fx (target <= 0.5)\n",
			m["parquet-B/flow"], m["jsonpb-B/flow"], m["jsonpb.gz-B/flow"], m["parquet/jsonpb.gz"])
		if z, ok := m["jsonpb.zst-B/flow"]; ok {
			fmt.Printf("record size vs zstd -3 of the jsonpb: %.1f B/flow against %.1f: %.3fx (target <= 0.6)\n", m["parquet-B/flow"], z, m["parquet/jsonpb.zst"])
			fmt.Printf("  and the tables derived from the flows: %.1f B/flow more (flows and derived %.3fx of zstd -3)\n",
				m["derived-B/flow"], (m["parquet-B/flow"]+m["derived-B/flow"])/z)
		}
	}
	if m, ok := metrics["BenchmarkRecordToS3"]; ok {
		fmt.Printf("record to S3 (versitygw on loopback, until drained): %.0f flows/s vs a local directory %.0f flows/s = %.3fx (target >= 0.90)\n",
			m["s3-flows/s"], m["local-flows/s"], m["s3/local"])
		fmt.Printf("read one hour (%.0f flows, analyze services): disk %.2f s, S3 cold cache %.2f s (%.2fx), warm cache %.2f s (%.2fx)\n",
			m["hour-flows"], m["hour-disk-s"], m["hour-s3-cold-s"], m["cold/disk"], m["hour-s3-warm-s"], m["warm/disk"])
	}
	if m, ok := metrics["BenchmarkRelayVsPerNode"]; ok {
		fmt.Printf("relay vs per-node (3 simulated agents): %.0f flows/s through hubble-relay, %.0f flows/s per node = %.2fx\n",
			m["relay-flows/s"], m["per-node-flows/s"], m["per-node/relay-rate"])
		fmt.Printf("  CPU per flow: relay path %.1f us (recorder) + %.1f us (hubble-relay); per node %.1f us (recorder)\n",
			m["relay-path-record-cpu-us/flow"], m["relay-path-relay-cpu-us/flow"], m["per-node-record-cpu-us/flow"])
	}
	if m, ok := metrics["BenchmarkImport"]; ok {
		fmt.Printf("import: %.1f MB/s, %.0f flows/s; hubble observe --input-file -o jsonpb: %.1f MB/s, %.0f flows/s; import/hubble = %.2fx (target >= 2)\n",
			m["import-MB/s"], m["import-flows/s"], m["hubble-MB/s"], m["hubble-flows/s"], m["import/hubble"])
		if r, ok := m["derived-time-ratio"]; ok {
			fmt.Printf("import with the derived tables / without: %.3fx the time (%.0f flows/s without; target <= 1.15)\n",
				r, m["import-no-derived-flows/s"])
		}
	}
	if live, ok := get("BenchmarkSinkLive/live", "flows/s"); ok {
		if nd, ok := get("BenchmarkSinkLive/live-no-derived", "flows/s"); ok {
			fmt.Printf("live store: %.0f flows/s with the derived tables, %.0f without: %.3fx the CPU per flow\n", live, nd, nd/live)
		}
	}
	for _, sub := range []string{"1M", "3M", "10M"} {
		if m, ok := metrics["BenchmarkAnalyzeScale/"+sub]; ok {
			fmt.Printf("analyze services over %s flows: %.2f s; plain DuckDB scan-and-group %.2f s; %.2fx\n",
				sub, m["services-s"], m["plain-scan-s"], m["x-plain-scan"])
		}
	}
	for _, a := range []string{"services", "graph"} {
		if m, ok := metrics["BenchmarkAnalyze10M/"+a]; ok {
			rss := "not measured"
			if v, ok := m["peak-RSS-MB"]; ok {
				rss = fmt.Sprintf("%.0f MB (VmHWM; %.0f MB before the run)", v, m["base-RSS-MB"])
			}
			fmt.Printf("analyze %s over %.0fM flows: %.2f s (target <= 1.5), peak RSS %s (target <= 1000 MB)\n", a, m["flows"]/1e6, m["ns/op"]/1e9, rss)
		}
	}
	for _, a := range []string{"services", "graph", "errors"} {
		if m, ok := metrics["BenchmarkClusterDay/"+a]; ok {
			target := " (target <= 2)"
			if a == "errors" {
				target = ""
			}
			fmt.Printf("analyze %s over a day of a cluster (%.1fB flows, from the summaries): %.2f s%s\n", a, m["flows"]/1e9, m["ns/op"]/1e9, target)
		}
	}
	if m, ok := metrics["BenchmarkAnalyzeVsJSON1M"]; ok {
		fmt.Printf("analyze services over %.0fM flows: recording %.2f s; plain DuckDB scan-and-group %.2f s (%.2fx, target <= 3); "+
			"read_json over jsonpb (requests, errors, p99 per service) %.1f s as a view, %.1f s loaded into a table; %.1fx faster (target >= 20)\n",
			m["flows"]/1e6, m["recording-s"], m["plain-scan-s"], m["x-plain-scan"], m["json-view-s"], m["json-table-s"], m["x-faster-than-json"])
	}
	if m, ok := metrics["BenchmarkReplay"]; ok {
		fmt.Printf("replay --speed max over %.1fM flows: %.0f flows/s to a client that drains the stream (target >= 100k; server CPU %.1f us/flow), %.0f flows/s to one that decodes each response\n",
			m["flows"]/1e6, m["drain-flows/s"], m["server-us/flow"], m["decode-flows/s"])
		fmt.Printf("replay peak memory of its own (RssAnon): %.0f MB for a tenth of the recording, %.0f MB for all of it (target: flat, <= 200 MB); RSS with the executable's pages %.0f / %.0f MB\n",
			m["tenth-peak-anon-MB"], m["all-peak-anon-MB"], m["tenth-peak-RSS-MB"], m["all-peak-RSS-MB"])
	}
	for _, format := range []string{"jsonpb", "compact"} {
		if m, ok := metrics["BenchmarkHubbleFromReplay/"+format]; ok {
			fmt.Printf("hubble observe -o %s over %.0fk flows: %.0f flows/s from replay, %.0f flows/s from --input-file of the jsonpb: %.2fx (target >= 1)\n",
				format, m["flows"]/1e3, m["replay-flows/s"], m["input-file-flows/s"], m["x-input-file"])
		}
	}
	if m, ok := metrics["BenchmarkReport10M"]; ok {
		fmt.Printf("report (HTML) over %.0fM flows: %.1f s (target <= 10 s), peak RSS %.0f MB (target <= 1000)\n", m["flows"]/1e6, m["report-s"], m["peak-RSS-MB"])
	}
	if a, ok := get("BenchmarkEncode/arrow-go-pqarrow", "flows/s"); ok {
		if p, ok := get("BenchmarkEncode/parquet-go", "flows/s"); ok && p > 0 {
			fmt.Printf("pqarrow / parquet-go encode rate: %.2fx\n", a/p)
		}
	}
}
