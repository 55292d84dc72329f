package record_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	flowpb "github.com/cilium/cilium/api/v1/flow"
	dto "github.com/prometheus/client_model/go"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// These tests record from the simulator into a real S3 server (versitygw
// with its POSIX backend, built from tools/s3) through the flowtape binary.

// runBin runs flowtape with env added, and returns its output.
func runBin(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(testutil.FlowtapeBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// waitMetrics waits until a recorder's metrics endpoint answers.
func waitMetrics(t *testing.T, addr string) {
	t.Helper()
	testutil.Eventually(t, 15*time.Second, "the metrics endpoint answers", func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
}

// s3Recorder is the flowtape binary recording the simulator into a bucket
// of a real S3 server, with its metrics served.
type s3Recorder struct {
	srv                 *testutil.S3Server
	env                 []string
	url, spool, metrics string
	cmd                 *exec.Cmd
	out, errb           bytes.Buffer
}

// startS3Recorder starts a simulator (seed, speed) and a recorder of it
// into the bucket "flows" under prefix, and waits for its metrics.
func startS3Recorder(t *testing.T, seed uint64, speed float64, prefix string, args ...string) *s3Recorder {
	t.Helper()
	r := &s3Recorder{}
	r.srv, r.env = testutil.StartS3Bucket(t, "flows")
	addr := testutil.FreeAddr(t)
	serveSim(t, addr, sim.Config{Seed: seed, Start: time.Now(), Speed: speed})
	r.url, r.spool, r.metrics = r.srv.URL("flows", prefix), filepath.Join(t.TempDir(), "spool"), testutil.FreeAddr(t)
	r.cmd = exec.Command(testutil.FlowtapeBinary(t), append([]string{"record", "--server", addr, "-o", r.url, "--spool", r.spool,
		"--metrics-listen", r.metrics}, args...)...)
	r.cmd.Env = append(os.Environ(), r.env...)
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.errb
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the recorder said:\n%s%s", r.out.String(), r.errb.String())
		}
	})
	t.Cleanup(func() {
		r.cmd.Process.Kill() //nolint:errcheck
		r.cmd.Wait()         //nolint:errcheck // its output copied
	})
	waitMetrics(t, r.metrics)
	return r
}

// wait waits for the recorder to end, and checks that its spool drained.
func (r *s3Recorder) wait(t *testing.T) {
	t.Helper()
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("record: %v\n%s%s", err, r.out.String(), r.errb.String())
	}
	if !strings.Contains(r.errb.String()+r.out.String(), "is drained") {
		t.Errorf("the spool did not drain:\n%s%s", r.out.String(), r.errb.String())
	}
}

// storeObject is an object of the store: its size and content's SHA-256,
// and the SHA-256 its metadata claims.
type storeObject struct {
	size      int64
	sha, meta string
}

// storeObjects reads every object under prefix.
func storeObjects(t *testing.T, srv *testutil.S3Server, bucket, prefix string) map[string]storeObject {
	t.Helper()
	ctx := context.Background()
	c := srv.Client(srv.Access, srv.Secret)
	out := map[string]storeObject{}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(get.Body)
			get.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			out[strings.TrimPrefix(aws.ToString(o.Key), prefix)] = storeObject{size: int64(len(b)), sha: hex.EncodeToString(sum[:]), meta: get.Metadata["sha256"]}
		}
	}
	return out
}

// storeFlows reads the flows of a bucket's recording, fetched as a reader
// does, and each file's first and last flow (for messages); a flow in two
// files is an error.
func storeFlows(t *testing.T, url string) ([]*flowpb.Flow, map[string][2]time.Time) {
	t.Helper()
	b, err := tape.OpenBucket(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	f, err := tape.Fetch(context.Background(), b, tape.FetchOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files, err := tape.FindFiles(f.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var flows []*flowpb.Flow
	in := map[string]string{}
	ranges := map[string][2]time.Time{}
	for _, p := range files.Flows {
		if _, err := tape.ReadFile(context.Background(), schema.Flows, p, func(fl *flowpb.Flow) error {
			rel, _ := filepath.Rel(f.Dir, p)
			if prev, ok := in[fl.GetUuid()]; ok {
				t.Errorf("flow %s at %s is in the store twice: in %s and %s", fl.GetUuid(), fl.GetTime().AsTime().Format(time.RFC3339Nano), prev, rel)
			}
			in[fl.GetUuid()] = rel
			at := fl.GetTime().AsTime()
			r, ok := ranges[rel]
			if !ok {
				r = [2]time.Time{at, at}
			}
			if at.Before(r[0]) {
				r[0] = at
			}
			if at.After(r[1]) {
				r[1] = at
			}
			ranges[rel] = r
			flows = append(flows, fl)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return flows, ranges
}

// A recording made into the bucket analyses as the same flows recorded
// to a directory do: two recorders of one window of the simulator, one
// into each, and analyze services from the URL against the directory.
func TestRecordToS3AnalyzesAsLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes")
	}
	srv, env := testutil.StartS3Bucket(t, "flows")
	addr := testutil.FreeAddr(t)
	testutil.FlowtapeBinary(t) // built before the window starts
	start := time.Now().Truncate(time.Millisecond)
	scen := sim.Scenarios["incident"]
	scen.IncidentAt = 0
	// Ring buffers that hold the window whole however late a recorder
	// starts on a loaded machine (Hubble's 4095 a node held only 5.5 s of
	// the simulator's 2000 flows/s, and the later recorder lost the
	// window's first flows): both recorders read the same flows.
	serveSim(t, addr, sim.Config{Seed: 5, Start: start, Speed: 1, Scenario: scen, RingCapacity: 1 << 15})
	url := srv.URL("flows", "prod")
	dir := filepath.Join(t.TempDir(), "local")
	window := []string{"--server", addr, "--since", start.Add(time.Second).Format(time.RFC3339Nano), "--until", start.Add(5 * time.Second).Format(time.RFC3339Nano), "--rotate-interval", "1s"}
	time.Sleep(time.Until(start.Add(5500 * time.Millisecond)))
	done := make(chan error, 1)
	go func() {
		out, stderr, err := runBin(t, env, append([]string{"record", "-o", dir}, window...)...)
		if err != nil {
			err = fmt.Errorf("%w\n%s%s", err, out, stderr)
		}
		t.Logf("record to a directory:\n%s%s", out, stderr)
		done <- err
	}()
	if out, stderr, err := runBin(t, env, append([]string{"record", "-o", url, "--spool", filepath.Join(t.TempDir(), "spool")}, window...)...); err != nil {
		t.Fatalf("record to %s: %v\n%s%s", url, err, out, stderr)
	} else if t.Logf("record to the bucket:\n%s%s", out, stderr); !strings.Contains(stderr+out, "is drained") {
		t.Errorf("record to a bucket did not say its spool drained:\n%s%s", out, stderr)
	}
	if err := <-done; err != nil {
		t.Fatalf("record to a directory: %v", err)
	}
	fromStore, stderr, err := runBin(t, env, "analyze", "services", url, "--format", "csv", "--cache-dir", t.TempDir())
	if err != nil {
		t.Fatalf("analyze services %s: %v\n%s", url, err, stderr)
	}
	fromDisk, _, err := runBin(t, env, "analyze", "services", dir, "--format", "csv")
	if err != nil {
		t.Fatal(err)
	}
	if fromStore != fromDisk || strings.Count(fromDisk, "\n") < 5 {
		t.Errorf("analyze services from the bucket:\n%s\nfrom the directory:\n%s", fromStore, fromDisk)
	}
}

// The store down for a while mid-recording, then back: everything the
// recorder wrote arrives, once; the spool drains; the recorder said that
// files waited.
func TestRecordToS3ThroughAnOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes")
	}
	// (stopped with SIGINT below; --duration only bounds a test gone wrong,
	// and is long enough that a loaded machine's waits never reach it
	// while the store is down)
	r := startS3Recorder(t, 6, 3, "outage", "--rotate-interval", "500ms", "--flush-interval", "500ms", "--duration", "3m")
	srv, url, spool, metrics := r.srv, r.url, r.spool, r.metrics
	testutil.Eventually(t, 10*time.Second, "the metrics count uploaded files and bytes", func() bool {
		mfs := scrape(t, "http://"+metrics+"/metrics")
		return sum(mfs, "flowtape_uploaded_files_total", nil) > 0 && sum(mfs, "flowtape_uploaded_bytes_total", nil) > 0
	})
	srv.Stop()
	// Files wait, and the metrics say so (once the SDK's retries of the
	// failing pass give up: up to 3 attempts with a backoff, each).
	var mfs map[string]*dto.MetricFamily
	testutil.Eventually(t, 20*time.Second, "with the store down, the metrics show waiting files and errors", func() bool {
		mfs = scrape(t, "http://"+metrics+"/metrics")
		return sum(mfs, "flowtape_upload_waiting_files", nil) > 0 && sum(mfs, "flowtape_upload_errors_total", nil) > 0 &&
			sum(mfs, "flowtape_upload_oldest_waiting_age_seconds", nil) > 0
	})
	srv.Start()
	time.Sleep(time.Second)            // recording on with the store back
	r.cmd.Process.Signal(os.Interrupt) //nolint:errcheck
	r.wait(t)
	objs := storeObjects(t, srv, "flows", "outage/")
	for k, o := range objs {
		if strings.HasSuffix(k, ".parquet") && o.sha != o.meta {
			t.Errorf("%s: content sha256 %s, metadata says %s", k, o.sha, o.meta)
		}
	}
	flows, _ := storeFlows(t, url) // a flow in the store twice is an error there
	m, err := tape.ReadManifest(spool)
	if err != nil {
		t.Fatal(err)
	}
	if got := uint64(len(flows)); got != m.Totals.Flows || got == 0 {
		t.Errorf("the store holds %d flows, the recorder wrote %d", got, m.Totals.Flows)
	}
	if m.Dropped != nil {
		t.Errorf("the spool dropped %+v with room to spare", m.Dropped)
	}
}

// A spool that fills while the store is down drops its oldest files, and
// says so: the metrics count them, the manifest keeps their time range,
// and coverage of the bucket shows them as lost (SPOOL_DROPPED), the
// recording as incomplete.
func TestRecordToS3SpoolFullDropsOldest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes")
	}
	r := startS3Recorder(t, 9, 5, "full", "--max-disk", "1MiB", "--rotate-interval", "300ms", "--flush-interval", "300ms", "--duration", "3m") // (as in TestRecordToS3ThroughAnOutage)
	srv, env, url, spool, metrics := r.srv, r.env, r.url, r.spool, r.metrics
	testutil.Eventually(t, 10*time.Second, "files uploaded", func() bool {
		return sum(scrape(t, "http://"+metrics+"/metrics"), "flowtape_uploaded_files_total", nil) > 0
	})
	srv.Stop()
	testutil.Eventually(t, 20*time.Second, "the full spool drops files and the metrics say so", func() bool {
		mfs := scrape(t, "http://"+metrics+"/metrics")
		return sum(mfs, "flowtape_spool_dropped_files_total", nil) > 0 && sum(mfs, "flowtape_spool_dropped_flows_total", nil) > 0
	})
	srv.Start()
	r.cmd.Process.Signal(os.Interrupt) //nolint:errcheck
	r.wait(t)
	m, err := tape.ReadManifest(spool)
	if err != nil {
		t.Fatal(err)
	}
	if m.Dropped == nil || m.Dropped.Flows == 0 || m.Dropped.FirstFlow == nil || m.Dropped.LastFlow == nil {
		t.Fatalf("the manifest does not count what the spool dropped: %+v", m.Dropped)
	}
	cov, stderr, err := runBin(t, env, "analyze", "coverage", url, "--format", "csv", "--cache-dir", t.TempDir())
	if err != nil {
		t.Fatalf("analyze coverage %s: %v\n%s", url, err, stderr)
	}
	all := strings.Split(cov, "\n")[1]
	if want := fmt.Sprintf("SPOOL_DROPPED=%d", m.Dropped.Flows); !strings.Contains(all, want) || !strings.Contains(all, ",false,") {
		t.Errorf("coverage's (all) row %q does not show %s and incomplete", all, want)
	}
	t.Logf("dropped %d flows of %d files, %s..%s", m.Dropped.Flows, m.Dropped.Files, m.Dropped.FirstFlow.Format(time.RFC3339Nano), m.Dropped.LastFlow.Format(time.RFC3339Nano))
}

// SIGKILL of a recorder writing to a bucket, several times, at random
// moments (uploads among them): after the last run every flow is in the
// store once, with no gap between the first and the last, and no key ever
// held two contents.
func TestRecordToS3SurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes")
	}
	srv, env := testutil.StartS3Bucket(t, "flows")
	addr := testutil.FreeAddr(t)
	start := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	// Rings that hold every flow of the test: a restart (and the check of
	// the store between runs) takes longer than the default rings last at
	// this rate, and what they overwrite is lost (counted), not missing.
	cfg := sim.Config{Seed: 7, Start: start, Speed: 1, RingCapacity: 1 << 16}
	serveSim(t, addr, cfg)
	url := srv.URL("flows", "kill")
	spool := filepath.Join(t.TempDir(), "spool")
	args := []string{"record", "--server", addr, "-o", url, "--spool", spool, "--rotate-interval", "300ms", "--flush-interval", "500ms"}
	rng := rand.New(rand.NewPCG(3, 4))
	seen := map[string]string{} // key -> sha256, over all iterations
	check := func() {
		for k, o := range storeObjects(t, srv, "flows", "kill/") {
			if !strings.HasSuffix(k, ".parquet") {
				continue
			}
			if prev, ok := seen[k]; ok && prev != o.sha {
				t.Fatalf("%s changed content", k)
			}
			if o.meta != o.sha {
				t.Fatalf("%s: content sha256 %s, metadata says %s", k, o.sha, o.meta)
			}
			seen[k] = o.sha
		}
	}
	iterations := testutil.KillIterations(t, 4)
	for i := 0; i < iterations; i++ {
		cmd := exec.Command(testutil.FlowtapeBinary(t), args...)
		cmd.Env = append(os.Environ(), env...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(1500+rng.IntN(2000)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL) //nolint:errcheck
		cmd.Wait()                          //nolint:errcheck
		check()
	}
	// A last run that stops normally drains what the killed ones left.
	if out, stderr, err := runBin(t, env, append(args, "--duration", "2s")...); err != nil {
		t.Fatalf("last record: %v\n%s%s", err, out, stderr)
	} else if strings.Contains(stderr, "cannot tell where") || !strings.Contains(stderr, "resuming the previous recording") {
		t.Errorf("the last run did not resume:\n%s", stderr)
	}
	check()
	flows, fileRanges := storeFlows(t, url) // a flow in the store twice is an error there
	got := map[string]bool{}
	for _, f := range flows {
		got[f.GetUuid()] = true
	}
	sort.Slice(flows, func(a, b int) bool { return flows[a].GetTime().AsTime().Before(flows[b].GetTime().AsTime()) })
	first, last := flows[0].GetTime().AsTime(), flows[len(flows)-1].GetTime().AsTime()
	if missing := missingSimFlows(cfg, first, last, got); len(missing) > 0 {
		t.Errorf("%d of the simulator's flows between the first (%s) and the last (%s) in the store are missing, from %s (%s) to %s",
			len(missing), first, last, missing[0].GetTime().AsTime().Format(time.RFC3339Nano), missing[0].GetNodeName(),
			missing[len(missing)-1].GetTime().AsTime().Format(time.RFC3339Nano))
		lo, hi := missing[0].GetTime().AsTime().Add(-2*time.Second), missing[len(missing)-1].GetTime().AsTime().Add(2*time.Second)
		for name, r := range fileRanges {
			if !r[1].Before(lo) && !r[0].After(hi) {
				t.Logf("file %s: %s .. %s", name, r[0].Format(time.RFC3339Nano), r[1].Format(time.RFC3339Nano))
			}
		}
		if m, err := tape.ReadManifest(spool); err == nil {
			for _, s := range m.Sessions {
				t.Logf("session %s from %s: %d flows, lost %v", s.RecordingID, s.Start.Format(time.RFC3339Nano), s.Totals.Flows, s.Totals.LostEvents)
			}
		}
	}
	t.Logf("%d kills: %d flows in the store from %s to %s, %d objects", iterations, len(flows), first.Format(time.RFC3339), last.Format(time.RFC3339), len(seen))
}

// A bucket that does not exist, wrong credentials and a bucket the
// credentials may only read each stop record (and the readers) at once
// with one line that says what to do; so do an empty window and a file
// that is not a recording's.
func TestS3Errors(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes")
	}
	srv := testutil.StartS3(t)
	srv.CreateBucket("flows")
	srv.CreateBucket("readonly")
	srv.AddUser("reader", "reader-secret-key")
	srv.GrantRead("readonly", "reader")
	addr := testutil.FreeAddr(t)
	serveSim(t, addr, sim.Config{Seed: 8, Start: time.Now(), Speed: 3})
	root := srv.Env(srv.Access, srv.Secret)
	oneLine := func(name string, env []string, want string, args ...string) {
		t.Helper()
		_, stderr, err := runBin(t, env, args...)
		if err == nil {
			t.Errorf("%s: no error", name)
			return
		}
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		last := lines[len(lines)-1]
		t.Logf("%s: %s", name, last)
		if !strings.Contains(last, want) || !strings.HasPrefix(last, "flowtape: ") {
			t.Errorf("%s: last line %q, want one containing %q\n%s", name, last, want, stderr)
		}
		if strings.Contains(stderr, "REDACTED") || strings.Contains(stderr, srv.Secret) {
			t.Errorf("%s: the message shows a secret:\n%s", name, stderr)
		}
	}
	rec := func(url string) []string {
		return []string{"record", "--server", addr, "-o", url, "--spool", t.TempDir(), "--duration", "3s"}
	}
	oneLine("no such bucket", root, "the bucket does not exist", rec(srv.URL("nosuch", "p"))...)
	oneLine("wrong secret", srv.Env(srv.Access, "wrong"), "secret key is wrong", rec(srv.URL("flows", "p"))...)
	oneLine("unknown key", srv.Env("nobody", "wrong"), "access key is not known", rec(srv.URL("flows", "p"))...)
	oneLine("read-only bucket", srv.Env("reader", "reader-secret-key"), "may read but not write", rec(srv.URL("readonly", "p"))...)
	oneLine("analyze, wrong secret", srv.Env(srv.Access, "wrong"), "secret key is wrong", "analyze", "services", srv.URL("flows", "p"), "--cache-dir", t.TempDir())
	oneLine("analyze, no recording", root, "no recording here", "analyze", "services", srv.URL("flows", "nothing"), "--cache-dir", t.TempDir())

	// A recording, an empty window of it, and a foreign file in it.
	url := srv.URL("flows", "rec")
	if out, stderr, err := runBin(t, root, rec(url)...); err != nil {
		t.Fatalf("record: %v\n%s%s", err, out, stderr)
	}
	// The reader may read the read-only bucket: nothing there yet.
	oneLine("analyze, empty window", root, "no flow files in the window", "analyze", "services", url, "--since", "2020-01-01T00:00:00Z", "--until", "2020-01-02T00:00:00Z", "--cache-dir", t.TempDir())
	day := time.Now().UTC()
	key := "rec/flows/" + tape.Partition(day) + "/20260101T000000Z-foreign-000001.parquet"
	if _, err := srv.Client(srv.Access, srv.Secret).PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("flows"), Key: aws.String(key), Body: strings.NewReader("this is not parquet at all")}); err != nil {
		t.Fatal(err)
	}
	oneLine("analyze, foreign file", root, "not a recording's file", "analyze", "services", url, "--cache-dir", t.TempDir())
}
