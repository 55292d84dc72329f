package replay_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
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

	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
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
	defer func() {
		cancel()
		_ = cmd.Wait()
	}()
	addr := ""
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
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	c := observerpb.NewObserverClient(conn)
	pid := strconv.Itoa(cmd.Process.Pid)

	var drainRate, decodeRate, tenthPeak, allPeak, tenthAnon, allAnon float64
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
		b.StartTimer()
		start := time.Now()
		msgs, size, err := follow(ctx, c, time.Time{}, false)
		if err != nil {
			b.Fatal(err)
		}
		drainRate = float64(msgs) / time.Since(start).Seconds()
		b.StopTimer()
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
	b.ReportMetric(float64(wireBytes)/float64(cat.Flows), "wire-B/flow")
	b.ReportMetric(tenthPeak, "tenth-peak-RSS-MB")
	b.ReportMetric(allPeak, "all-peak-RSS-MB")
	b.ReportMetric(tenthAnon, "tenth-peak-anon-MB")
	b.ReportMetric(allAnon, "all-peak-anon-MB")
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
