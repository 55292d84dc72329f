package record_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/internal/benchdata"
	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/internal/hubblecli"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/record"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// benchSim is the simulator at its maximum rate for a fixed run.
var benchSim = sim.Config{Seed: 77, Start: t0, Duration: 150 * time.Second, Scenario: sim.Scenarios["incident"], Truth: true}

// BenchmarkRecord compares, in one run, flowtape record with a bare client
// that only receives the same stream (and checks that the flows written are
// the flows received), reports record's peak memory (full and recorder
// builds) and its bytes per flow next to hubble observe -o jsonpb output
// (raw, gzip and zstd -3), and its CPU per flow next to the real hubble
// CLI's (hubble observe -o jsonpb > /dev/null) on the same stream, with the
// simulator's own CPU apart (it runs in this process).
func BenchmarkRecord(b *testing.B) {
	var bareRate, recRate float64
	var n uint64
	var recorded string // the last in-process recording, whose size is measured
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
		var sum flowSum
		for {
			r, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if f := r.GetFlow(); f != nil {
				got++
				sum.add(b, f)
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
		recorded = dir
		// The flows written are the flows received: the same multiset.
		var written flowSum
		flows, _ := readRecording(b, dir)
		for _, f := range flows {
			written.add(b, f)
		}
		if written != sum {
			b.Fatalf("the recording holds %d flows (sum %x), the stream sent %d (sum %x)", written.n, written.sum, sum.n, sum.sum)
		}
		if i == 0 {
			b.Logf("the %d flows written are the flows received (sum of their SHA-256 %x)", sum.n, sum.sum)
		}
	}
	b.ReportMetric(bareRate/float64(b.N), "bare-flows/s")
	b.ReportMetric(recRate/float64(b.N), "record-flows/s")
	b.ReportMetric(recRate/bareRate, "record/bare")

	// Peak memory, from the real binaries: the full build and the
	// recorder build (-tags recorder: no DuckDB), which a recorder on
	// every node runs.
	bin := testutil.FlowtapeBinary(b)
	full := recordPeaks(b, bin, filepath.Join(b.TempDir(), "rec"), n)
	b.ReportMetric(full.hwm, "peak-RSS-MB")
	b.ReportMetric(full.anon, "peak-anon-MB")
	rec := recordPeaks(b, testutil.FlowtapeRecorderBinary(b), filepath.Join(b.TempDir(), "rec"), n)
	b.ReportMetric(rec.hwm, "recorder-peak-RSS-MB")
	b.ReportMetric(rec.anon, "recorder-peak-anon-MB")
	b.ReportMetric(rec.file, "recorder-peak-file-MB")
	// The flows, and apart the tables derived from them (requests,
	// connections, ...), which the recording holds too: the analyses'
	// answers in a second cost disk.
	var size, derived int64
	for _, kind := range append([]string{schema.KindFlows}, schema.DerivedKinds...) {
		filepath.Walk(filepath.Join(recorded, kind), func(_ string, fi os.FileInfo, err error) error { //nolint:errcheck
			if err == nil && !fi.IsDir() && strings.HasSuffix(fi.Name(), ".parquet") {
				if kind == schema.KindFlows {
					size += fi.Size()
				} else {
					derived += fi.Size()
				}
			}
			return nil
		})
	}
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
	b.ReportMetric(float64(derived)/float64(n), "derived-B/flow")
	b.ReportMetric(float64(raw.Len())/float64(n), "jsonpb-B/flow")
	b.ReportMetric(float64(gz.Len())/float64(n), "jsonpb.gz-B/flow")
	b.ReportMetric(float64(size)/float64(gz.Len()), "parquet/jsonpb.gz")
	// zstd -3, as a user would compress hubble observe -o jsonpb
	// (klauspost's SpeedDefault is zstd's level 3).
	zw3, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		b.Fatal(err)
	}
	zst := zw3.EncodeAll(raw.Bytes(), nil)
	b.ReportMetric(float64(len(zst))/float64(n), "jsonpb.zst-B/flow")
	b.ReportMetric(float64(size)/float64(len(zst)), "parquet/jsonpb.zst")
	b.ReportMetric(float64(n), "flows")

	// The CPU the recorder spends per flow (user and system time of its
	// process), with the derived tables and without them, in pairs run
	// one after the other: what writing them costs is the median of the
	// pairs' ratios, as the shared machine slows whole pairs more than
	// one run of a pair (two pairs' means once gave 1.22 where five
	// pairs' ratios were 1.09-1.13). The hubble CLI runs after the
	// first, third and fifth pairs. An odd number of pairs: the median is
	// one pair's ratio.
	const pairs = 5
	var with, without, simCPU, hubbleCPU float64
	var ratios []float64
	hubbleRuns := 0
	for i := 0; i < pairs; i++ {
		rec, sim := recordCPU(b, bin, n)
		with, simCPU = with+rec, simCPU+sim
		bare, _ := recordCPU(b, bin, n, "--derived=false")
		without += bare
		ratios = append(ratios, rec/bare)
		if i%2 == 0 {
			hubbleCPU += observeCPU(b, n)
			hubbleRuns++
		}
	}
	slices.Sort(ratios)
	with, without, simCPU, hubbleCPU = with/pairs, without/pairs, simCPU/pairs, hubbleCPU/float64(hubbleRuns)
	b.ReportMetric(with, "cpu-us/flow")
	b.ReportMetric(without, "cpu-us/flow-no-derived")
	b.ReportMetric(ratios[pairs/2], "derived-cpu-ratio")
	b.ReportMetric(ratios[0], "derived-cpu-ratio-min")
	b.ReportMetric(ratios[pairs-1], "derived-cpu-ratio-max")
	b.ReportMetric(simCPU, "sim-cpu-us/flow")
	b.ReportMetric(hubbleCPU, "hubble-cpu-us/flow")
	b.ReportMetric(hubbleCPU/with, "x-less-cpu-than-hubble")
}

// flowSum sums the SHA-256 of flows (deterministic protobuf): equal sums,
// the same flows, in any order.
type flowSum struct {
	n   uint64
	sum [4]uint64
}

func (s *flowSum) add(b *testing.B, f *flowpb.Flow) {
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(f)
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.Sum256(raw)
	s.n++
	for i := range s.sum {
		s.sum[i] += binary.LittleEndian.Uint64(h[8*i:])
	}
}

// observeCPU runs hubble observe --since T0 -f -o jsonpb > /dev/null, the
// real hubble CLI, on the simulated stream of the other runs (it ends with
// the simulation) and returns its CPU
// time (user and system) per flow, in microseconds.
func observeCPU(b *testing.B, n uint64) float64 {
	b.Helper()
	addr := testutil.FreeAddr(b)
	srv := serveSimB(b, addr, benchSim)
	defer srv.stop()
	cmd := exec.Command(testutil.Tool(b, "hubble"), "observe", "--server", addr, "--since", t0.Format(time.RFC3339), "-f", "-o", "jsonpb")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr // stdout: the null device
	if err := cmd.Run(); err != nil {
		b.Fatalf("hubble observe: %v\n%s", err, stderr.String())
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return float64(cpu.Microseconds()) / float64(n)
}

// peakRate is the rate, in flows per second of the flows' own times, at
// which the issue bounds a recorder's memory.
const peakRate = 20_000

// peaks is what a recorder process held at most, in MB: VmHWM (all its
// resident pages), RssAnon (its own memory) and RssFile (pages of its
// binary and libraries).
type peaks struct{ hwm, anon, file float64 }

// recordPeaks runs bin record of n simulated flows into dir and samples
// its memory while it runs. (The rusage of a child started by a large
// process reports the parent's size at fork, so /proc is sampled.)
//
// The flows' own times pass at the 20k flows/s, not at the
// simulator's default rate: what a recorder holds for a while of flow
// time (the flows it remembers to drop those a resumed stream sends
// again, the requests it pairs) is then what a recorder at 20k flows/s
// holds. The incident starts later than these seconds: the mix is the
// cluster's steady one.
func recordPeaks(b *testing.B, bin, dir string, n uint64) peaks {
	b.Helper()
	addr := testutil.FreeAddr(b)
	cfg := benchSim
	cfg.Rate, cfg.Truth = peakRate, false
	cfg.Duration = time.Duration(float64(n) / peakRate * 1.2 * float64(time.Second))
	srv := serveSimB(b, addr, cfg)
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
// time (user and system) per flow, and the simulator's (this process's
// meanwhile), in microseconds.
func recordCPU(b *testing.B, bin string, n uint64, args ...string) (rec, sim float64) {
	b.Helper()
	addr := testutil.FreeAddr(b)
	srv := serveSimB(b, addr, benchSim)
	defer srv.stop()
	dir := filepath.Join(b.TempDir(), "rec")
	cmd := exec.Command(bin, append([]string{"record", "--server", addr, "-o", dir, "--since", t0.Format(time.RFC3339),
		"--max-flows", strconv.FormatUint(n, 10)}, args...)...)
	before := selfCPU()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("flowtape record %v: %v\n%s", args, err, out)
	}
	self := selfCPU() - before
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return float64(cpu.Microseconds()) / float64(n), float64(self.Microseconds()) / float64(n)
}

// selfCPU is this process's CPU time so far (user and system).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func serveSimB(b *testing.B, addr string, cfg sim.Config) *simServer {
	b.Helper()
	return serveSim(b, addr, cfg)
}
