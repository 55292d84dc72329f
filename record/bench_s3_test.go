package record_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// BenchmarkRecordToS3 measures, in one run, whether uploading keeps up
// with recording: the flowtape binary records the same simulated flows at
// the simulator's full speed into a local directory and into a bucket of
// a real S3 server on loopback (versitygw), alternating; a bucket's run
// ends once its spool is drained, so its time is until every file is
// confirmed in the store. Files rotate at 1 MiB so that uploads run while
// recording, as in a long recording.
//
// Then a read of one hour (analyze services of a recording of an hour)
// from disk, from the bucket with a cold cache (a new --cache-dir each
// time) and with a warm one (the cache of the run before).
func BenchmarkRecordToS3(b *testing.B) {
	srv, env := testutil.StartS3Bucket(b, "bench") // the environment also for OpenBucket here
	bin := testutil.FlowtapeBinary(b)
	const n = 250_000
	run := func(out string, args ...string) float64 {
		addr := testutil.FreeAddr(b)
		s := serveSimB(b, addr, benchSim)
		defer s.stop()
		cmd := exec.Command(bin, append([]string{"record", "--server", addr, "-o", out, "--since", t0.Format(time.RFC3339),
			"--max-flows", strconv.Itoa(n), "--rotate-size", "1MiB"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		start := time.Now()
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("flowtape record -o %s: %v\n%s", out, err, o)
		}
		return n / time.Since(start).Seconds()
	}
	var local, bucket float64
	for i := 0; i < b.N; i++ {
		for j := 0; j < 2; j++ {
			local += run(filepath.Join(b.TempDir(), "rec"))
			bucket += run(srv.URL("bench", "rec-"+strconv.Itoa(i)+"-"+strconv.Itoa(j)), "--spool", filepath.Join(b.TempDir(), "spool"))
		}
	}
	b.ReportMetric(local/float64(2*b.N), "local-flows/s")
	b.ReportMetric(bucket/float64(2*b.N), "s3-flows/s")
	b.ReportMetric(bucket/local, "s3/local")

	// An hour of the simulator at 60 flows/s, in 5-minute files, on disk
	// and in the bucket.
	start := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	dir, spool := filepath.Join(b.TempDir(), "hour"), filepath.Join(b.TempDir(), "spool")
	var flows int
	for k := 0; k < 12; k++ {
		from := start.Add(time.Duration(k) * 5 * time.Minute)
		resps := testutil.SimResponses(sim.Scenarios["steady"], uint64(k+1), 60, from, from.Add(5*time.Minute-time.Nanosecond))
		id := "hour" + strconv.Itoa(100+k)
		testutil.WriteRecording(b, dir, id, resps)
		testutil.WriteRecording(b, spool, id, resps)
		flows += len(resps)
	}
	ctx := context.Background()
	url := srv.URL("bench", "hour")
	bk, err := tape.OpenBucket(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	u, err := tape.NewUploader(spool, bk, tape.UploadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := u.Drain(ctx); err != nil {
		b.Fatal(err)
	}
	bk.Close()
	window := []string{"--since", start.Format(time.RFC3339), "--until", start.Add(time.Hour).Format(time.RFC3339)}
	analyze := func(path string, args ...string) float64 {
		cmd := exec.Command(bin, append(append([]string{"analyze", "services", path, "--format", "csv"}, window...), args...)...)
		cmd.Env = append(os.Environ(), env...)
		t := time.Now()
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("flowtape analyze services %s: %v\n%s", path, err, o)
		}
		return time.Since(t).Seconds()
	}
	var disk, cold, warm float64
	const reads = 3
	for i := 0; i < reads; i++ {
		disk += analyze(dir)
		cache := filepath.Join(b.TempDir(), "cache")
		cold += analyze(url, "--cache-dir", cache)
		warm += analyze(url, "--cache-dir", cache)
	}
	b.ReportMetric(float64(flows), "hour-flows")
	b.ReportMetric(disk/reads, "hour-disk-s")
	b.ReportMetric(cold/reads, "hour-s3-cold-s")
	b.ReportMetric(warm/reads, "hour-s3-warm-s")
	b.ReportMetric(cold/disk, "cold/disk")
	b.ReportMetric(warm/disk, "warm/disk")
}
