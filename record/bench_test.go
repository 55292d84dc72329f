package record_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/internal/benchdata"
	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/internal/hubblecli"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/record"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// benchSim is the simulator at its maximum rate for a fixed run.
var benchSim = sim.Config{Seed: 77, Start: t0, Duration: 150 * time.Second, Scenario: sim.Scenarios["incident"], Truth: true}

// BenchmarkRecord compares, in one run, flowtape record with a bare client
// that only receives the same stream, and reports record's peak RSS and its
// bytes per flow next to hubble observe -o jsonpb output (raw and gzip).
func BenchmarkRecord(b *testing.B) {
	var bareRate, recRate float64
	var n uint64
	for i := 0; i < b.N; i++ {
		// Bare client: receive and discard.
		addr := testutil.FreeAddr(b)
		srv := serveSimB(b, addr, benchSim)
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		stream, err := observerpb.NewObserverClient(conn).GetFlows(context.Background(),
			&observerpb.GetFlowsRequest{Follow: true, Since: timestamppb.New(t0)})
		if err != nil {
			b.Fatal(err)
		}
		var got uint64
		for {
			r, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if r.GetFlow() != nil {
				got++
			}
		}
		bareRate += float64(got) / time.Since(start).Seconds()
		conn.Close()
		srv.stop()
		n = got

		// flowtape record, in-process, on the same flows.
		addr = testutil.FreeAddr(b)
		srv = serveSimB(b, addr, benchSim)
		dir := b.TempDir()
		fs := hubblecli.ConnFlags()
		fs.Parse([]string{"--server", addr}) //nolint:errcheck
		d, _ := hubblecli.NewDialer(fs)
		start = time.Now()
		res, err := record.Run(context.Background(), record.Options{Dialer: d, Since: t0, MaxFlows: n,
			Sink: tape.SinkOptions{Dir: dir, Writer: "bench"}})
		if err != nil || res.Session.Totals.Flows != n {
			b.Fatalf("record: %d flows, %v", res.Session.Totals.Flows, err)
		}
		recRate += float64(n) / time.Since(start).Seconds()
		srv.stop()
	}
	b.ReportMetric(bareRate/float64(b.N), "bare-flows/s")
	b.ReportMetric(recRate/float64(b.N), "record-flows/s")
	b.ReportMetric(recRate/bareRate, "record/bare")

	// Peak memory and size, from the real binaries: the full build and
	// the recorder build (-tags recorder: no DuckDB), which a recorder on
	// every node runs.
	bin := testutil.FlowtapeBinary(b)
	dir := filepath.Join(b.TempDir(), "rec")
	full := recordPeaks(b, bin, dir, n)
	b.ReportMetric(full.hwm, "peak-RSS-MB")
	b.ReportMetric(full.anon, "peak-anon-MB")
	rec := recordPeaks(b, testutil.FlowtapeRecorderBinary(b), filepath.Join(b.TempDir(), "rec"), n)
	b.ReportMetric(rec.hwm, "recorder-peak-RSS-MB")
	b.ReportMetric(rec.anon, "recorder-peak-anon-MB")
	b.ReportMetric(rec.file, "recorder-peak-file-MB")
	var size int64
	filepath.Walk(filepath.Join(dir, "flows"), func(_ string, fi os.FileInfo, err error) error { //nolint:errcheck
		if err == nil && !fi.IsDir() {
			size += fi.Size()
		}
		return nil
	})
	var raw bytes.Buffer
	src := sim.NewSource(benchSim.Scenario, benchSim.Seed, defaults.SimRate, t0)
	for i := uint64(0); i < n; i++ {
		f := src.Next()
		line, _ := protojson.Marshal(&observerpb.GetFlowsResponse{Time: f.GetTime(), NodeName: f.GetNodeName(),
			ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: f}})
		raw.Write(line)
		raw.WriteByte('\n')
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes()) //nolint:errcheck
	zw.Close()
	b.ReportMetric(float64(size)/float64(n), "parquet-B/flow")
	b.ReportMetric(float64(raw.Len())/float64(n), "jsonpb-B/flow")
	b.ReportMetric(float64(gz.Len())/float64(n), "jsonpb.gz-B/flow")
	b.ReportMetric(float64(size)/float64(gz.Len()), "parquet/jsonpb.gz")
	b.ReportMetric(float64(n), "flows")

	// The CPU the recorder spends per flow (user and system time of its
	// process), with the derived tables and without them, twice each,
	// alternating: what writing them costs.
	var with, without float64
	for i := 0; i < 2; i++ {
		with += recordCPU(b, bin, n)
		without += recordCPU(b, bin, n, "--derived=false")
	}
	b.ReportMetric(with/2, "cpu-us/flow")
	b.ReportMetric(without/2, "cpu-us/flow-no-derived")
	b.ReportMetric(with/without, "derived-cpu-ratio")
}

// peaks is what a recorder process held at most, in MB: VmHWM (all its
// resident pages), RssAnon (its own memory) and RssFile (pages of its
// binary and libraries).
type peaks struct{ hwm, anon, file float64 }

// recordPeaks runs bin record of n simulated flows into dir and samples
// its memory while it runs. (The rusage of a child started by a large
// process reports the parent's size at fork, so /proc is sampled.)
func recordPeaks(b *testing.B, bin, dir string, n uint64) peaks {
	b.Helper()
	addr := testutil.FreeAddr(b)
	srv := serveSimB(b, addr, benchSim)
	defer srv.stop()
	cmd := exec.Command(bin, "record", "--server", addr, "-o", dir, "--since", t0.Format(time.RFC3339), "--max-flows", strconv.FormatUint(n, 10))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	hwm := benchdata.SamplePeak(pid, "VmHWM", 20*time.Millisecond)
	anon := benchdata.SamplePeak(pid, "RssAnon", 20*time.Millisecond)
	file := benchdata.SamplePeak(pid, "RssFile", 20*time.Millisecond)
	err := cmd.Wait()
	p := peaks{hwm.Stop(), anon.Stop(), file.Stop()}
	if err != nil {
		b.Fatalf("%s record: %v\n%s", bin, err, out.String())
	}
	return p
}

// recordCPU runs flowtape record of n simulated flows and returns its CPU
// time (user and system) per flow, in microseconds.
func recordCPU(b *testing.B, bin string, n uint64, args ...string) float64 {
	b.Helper()
	addr := testutil.FreeAddr(b)
	srv := serveSimB(b, addr, benchSim)
	defer srv.stop()
	dir := filepath.Join(b.TempDir(), "rec")
	cmd := exec.Command(bin, append([]string{"record", "--server", addr, "-o", dir, "--since", t0.Format(time.RFC3339),
		"--max-flows", strconv.FormatUint(n, 10)}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("flowtape record %v: %v\n%s", args, err, out)
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return float64(cpu.Microseconds()) / float64(n)
}

func serveSimB(b *testing.B, addr string, cfg sim.Config) *simServer {
	b.Helper()
	return serveSim(b, addr, cfg)
}
