package replay_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/internal/benchdata"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/replay"
	"github.com/flowtape/flowtape/tape"
)

// drainCodec receives responses without decoding them: a client that only
// drains the stream, so that what is measured is the server.
type drainCodec struct{ bytes *int64 }

func (drainCodec) Marshal(v any) ([]byte, error) { return proto.Marshal(v.(proto.Message)) }
func (c drainCodec) Unmarshal(data []byte, _ any) error {
	*c.bytes += int64(len(data))
	return nil
}
func (drainCodec) Name() string { return "proto" }

var _ encoding.Codec = drainCodec{}

// BenchmarkReplay runs `flowtape replay --speed max` as its own process
// over a simulated recording (2M flows; FLOWTAPE_BENCH_REPLAY_FLOWS
// overrides the count) and follows it to the end with a client that drains
// the stream, and with one that decodes every response as hubble does. It
// reports flows/s and the server's peak memory for a tenth of the recording
// and for all of it: streaming keeps memory flat whatever the size. Peak
// RSS includes the pages of the executable (DuckDB makes it large) that
// the process has touched; the anonymous peak is the memory it allocated.
// server-us/flow is the server's CPU time per flow while the draining
// client follows the whole recording: the client shares the cores, so
// flows/s alone moves with it and with the machine's other load.
func BenchmarkReplay(b *testing.B) {
	n := benchdata.FlowCount(b, "FLOWTAPE_BENCH_REPLAY_FLOWS", 2_000_000)
	rec, _ := benchdata.Recording(b, n, false)
	files, err := tape.FindFiles(rec)
	if err != nil {
		b.Fatal(err)
	}
	cat, err := replay.Describe(b.Context(), files)
	if err != nil {
		b.Fatal(err)
	}
	tenth := cat.First.Add(cat.Last.Sub(cat.First) / 10)

	ctx := b.Context()
	addr, pid := startReplay(b, rec)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	c := observerpb.NewObserverClient(conn)

	var drainRate, decodeRate, serverUS, tenthPeak, allPeak, tenthAnon, allAnon float64
	var wireBytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := benchdata.ResetProcessPeak(pid); err != nil {
			b.Fatal(err)
		}
		anon := benchdata.SamplePeak(pid, "RssAnon", 20*time.Millisecond)
		if _, _, err := follow(ctx, c, tenth, false); err != nil {
			b.Fatal(err)
		}
		tenthAnon = anon.Stop()
		if tenthPeak, err = benchdata.ProcessStatusMB(pid, "VmHWM"); err != nil {
			b.Fatal(err)
		}
		if err := benchdata.ResetProcessPeak(pid); err != nil {
			b.Fatal(err)
		}
		anon = benchdata.SamplePeak(pid, "RssAnon", 20*time.Millisecond)
		cpu0, err := benchdata.ProcessCPU(pid)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		msgs, size, err := follow(ctx, c, time.Time{}, false)
		if err != nil {
			b.Fatal(err)
		}
		drainRate = float64(msgs) / time.Since(start).Seconds()
		b.StopTimer()
		cpu1, err := benchdata.ProcessCPU(pid)
		if err != nil {
			b.Fatal(err)
		}
		serverUS = float64((cpu1 - cpu0).Microseconds()) / float64(msgs)
		allAnon = anon.Stop()
		if allPeak, err = benchdata.ProcessStatusMB(pid, "VmHWM"); err != nil {
			b.Fatal(err)
		}
		wireBytes = size
		if uint64(msgs) < cat.Flows {
			b.Fatalf("replayed %d responses of %d flows", msgs, cat.Flows)
		}
		start = time.Now()
		msgs, _, err = follow(ctx, c, time.Time{}, true)
		if err != nil {
			b.Fatal(err)
		}
		decodeRate = float64(msgs) / time.Since(start).Seconds()
		b.StartTimer()
	}
	b.ReportMetric(float64(cat.Flows), "flows")
	b.ReportMetric(drainRate, "drain-flows/s")
	b.ReportMetric(decodeRate, "decode-flows/s")
	b.ReportMetric(serverUS, "server-us/flow")
	b.ReportMetric(float64(wireBytes)/float64(cat.Flows), "wire-B/flow")
	b.ReportMetric(tenthPeak, "tenth-peak-RSS-MB")
	b.ReportMetric(allPeak, "all-peak-RSS-MB")
	b.ReportMetric(tenthAnon, "tenth-peak-anon-MB")
	b.ReportMetric(allAnon, "all-peak-anon-MB")
}

// startReplay runs `flowtape replay REC --speed max` as its own process
// until the benchmark ends, and returns where it listens and its pid.
func startReplay(b *testing.B, rec string) (addr, pid string) {
	ctx, cancel := context.WithCancel(b.Context())
	cmd := exec.CommandContext(ctx, testutil.FlowtapeBinary(b), "replay", rec, "--listen", "127.0.0.1:0", "--speed", "max")
	// Stopped as a user stops it, so that FLOWTAPE_CPUPROFILE=FILE in the
	// benchmark's environment profiles the server.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(out)
	re := regexp.MustCompile(`on (127\.0\.0\.1:\d+)`)
	for addr == "" && sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		b.Fatal("flowtape replay did not say where it listens")
	}
	go io.Copy(io.Discard, out) //nolint:errcheck
	return addr, strconv.Itoa(cmd.Process.Pid)
}

// follow reads a following GetFlows (until the end of the recording, or
// until), decoding responses or only draining them, and returns the number
// of responses and their wire size.
func follow(ctx context.Context, c observerpb.ObserverClient, until time.Time, decode bool) (int64, int64, error) {
	req := &observerpb.GetFlowsRequest{Follow: true}
	if !until.IsZero() {
		req.Until = timestamppb.New(until)
	}
	var size int64
	var opts []grpc.CallOption
	if !decode {
		opts = append(opts, grpc.ForceCodec(drainCodec{bytes: &size}))
	}
	stream, err := c.GetFlows(ctx, req, opts...)
	if err != nil {
		return 0, 0, err
	}
	var msgs int64
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return msgs, size, nil
			}
			return msgs, size, err
		}
		msgs++
	}
}

// BenchmarkHubbleFromReplay times the real hubble CLI printing a recording
// in two ways, in one run: from `flowtape replay` (hubble observe --server
// ADDR --all) and from the jsonpb file the same flows would otherwise be
// kept in (hubble observe --input-file F --all), each in jsonpb and in
// hubble's default compact output, with the output counted and thrown
// away. 200k simulated flows (FLOWTAPE_BENCH_HUBBLE_FLOWS overrides the
// count). x-input-file is how many times longer the file takes: replay
// should be at least as fast (>= 1). The wall time is hubble's: replay
// runs beside it on the same cores.
func BenchmarkHubbleFromReplay(b *testing.B) {
	hubble := testutil.Tool(b, "hubble") // built first: not while replay serves
	n := benchdata.FlowCount(b, "FLOWTAPE_BENCH_HUBBLE_FLOWS", 200_000)
	rec, jsonFile := benchdata.Recording(b, n, true)
	addr, _ := startReplay(b, rec)
	for _, format := range []string{"jsonpb", "compact"} {
		b.Run(format, func(b *testing.B) {
			var replaySec, fileSec float64
			for i := 0; i < b.N; i++ {
				sec, replayLines := runHubble(b, hubble, "observe", "--server", addr, "--all", "-o", format)
				replaySec += sec
				sec, fileLines := runHubble(b, hubble, "observe", "--input-file", jsonFile, "--all", "-o", format)
				fileSec += sec
				// Every flow is printed both ways (replay adds the
				// recording's lost events, if any).
				if replayLines < int64(n) || fileLines < int64(n) {
					b.Fatalf("hubble printed %d lines from replay and %d from the file, for %d flows", replayLines, fileLines, n)
				}
			}
			replaySec, fileSec = replaySec/float64(b.N), fileSec/float64(b.N)
			b.ReportMetric(float64(n), "flows")
			b.ReportMetric(float64(n)/replaySec, "replay-flows/s")
			b.ReportMetric(float64(n)/fileSec, "input-file-flows/s")
			b.ReportMetric(fileSec/replaySec, "x-input-file")
		})
	}
}

// runHubble runs the hubble CLI with args and returns its wall time and
// how many lines it printed.
func runHubble(b *testing.B, hubble string, args ...string) (float64, int64) {
	b.Helper()
	cmd := exec.CommandContext(b.Context(), hubble, args...)
	var stderr strings.Builder
	lines := &lineCounter{}
	cmd.Stdout, cmd.Stderr = lines, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s: %v\n%s", cmd, err, stderr.String())
	}
	return time.Since(start).Seconds(), lines.n
}

// lineCounter counts the lines written to it.
type lineCounter struct{ n int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.n += int64(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}
