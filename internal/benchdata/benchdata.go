// Package benchdata makes and caches the simulated recordings flowtape's
// benchmarks measure (10M flows take minutes to simulate), and measures a
// process's peak memory.
package benchdata

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/protobuf/proto"

	"github.com/flowtape/flowtape/importer"
	"github.com/flowtape/flowtape/internal/observer"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// The benchmark recordings: the incident scenario at the simulator's
// default rate, so that 10M flows span 83 minutes over two hour partitions
// and the incident (from minute 2) dominates, as in a real incident capture.
const (
	benchScenario = "incident"
	benchSeed     = 1
	benchRate     = 2000
	// A recorder at 2000 flows/s rotates every 5 minutes (600k flows);
	// 1M-row files are the same order, and give 10M flows about ten.
	benchFileRows = 1_000_000
)

var benchStart = time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)

// FlowCount is the number of flows a benchmark measures: def, or the
// environment variable env.
func FlowCount(b *testing.B, env string, def int) int {
	s := os.Getenv(env)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number of flows", env, s)
	}
	return n
}

// Recording returns a recording of n simulated flows (one session, as one
// recorder writes it) and, withJSON, the same flows as Hubble jsonpb. They
// are generated once and kept in the user's cache directory
// (FLOWTAPE_BENCH_CACHE overrides it): 10M flows take minutes to simulate.
func Recording(b *testing.B, n int, withJSON bool) (rec, jsonFile string) {
	b.Helper()
	root := cacheRoot(b)
	kind := "rec"
	if withJSON {
		kind = "jsonpb"
	}
	prefix := fmt.Sprintf("%s-%d-%s", benchScenario, n, kind)
	// The simulator's output, the columns and the derivation are part of
	// the key, so that data of an older simulator, schema or derivation is
	// not measured by mistake.
	dir := filepath.Join(root, fmt.Sprintf("%s-%s-v%s-d%d", prefix, dataFingerprint(b), schema.Version, schema.DerivedVersion))
	rec, jsonFile = filepath.Join(dir, "recording"), filepath.Join(dir, "flows.json")
	done := filepath.Join(dir, "complete")
	if _, err := os.Stat(done); err == nil {
		b.Logf("reusing %s", dir)
		return rec, jsonFile
	}
	stale, _ := filepath.Glob(filepath.Join(root, prefix+"-*"))
	for _, d := range stale {
		if err := os.RemoveAll(d); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var jf string
	if withJSON {
		jf = jsonFile
	}
	if err := generate(b.Context(), n, rec, jf); err != nil {
		b.Fatalf("generate benchmark data in %s: %v", dir, err)
	}
	if err := os.WriteFile(done, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d flows (jsonpb too: %v) in %s, into %s", n, withJSON, time.Since(start).Round(time.Second), dir)
	return rec, jsonFile
}

// cacheRoot is where generated benchmark data is kept: the user's cache
// directory, or FLOWTAPE_BENCH_CACHE.
func cacheRoot(b *testing.B) string {
	if root := os.Getenv("FLOWTAPE_BENCH_CACHE"); root != "" {
		return root
	}
	c, err := os.UserCacheDir()
	if err != nil {
		b.Fatalf("no cache directory for the benchmark data (set FLOWTAPE_BENCH_CACHE): %v", err)
	}
	return filepath.Join(c, "flowtape-bench")
}

// layout is the revision of how the writer lays rows out in a file where
// it changes what the benchmarks measure but not the columns (row groups,
// their order) of Recording's data: 5, data pages of up to 4 MB (4:
// 1 MB); 4, request row groups full but for the last of each kind (3: a
// batch that filled a kind also left a remainder group; 2: the requests a
// file did not settle in row groups of their own, but not the counted
// ones). The cluster data, summaries without request rows, does not
// depend on it.
const layout = 5

func dataFingerprint(b *testing.B) string {
	h := sha256.New()
	fmt.Fprintln(h, "layout", layout)
	for _, c := range schema.Reference() {
		fmt.Fprintln(h, c.Table, c.Name, c.Type)
	}
	for _, f := range newBenchSource().Take(1000) {
		m, err := proto.MarshalOptions{Deterministic: true}.Marshal(f)
		if err != nil {
			b.Fatal(err)
		}
		h.Write(m)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func newBenchSource() *sim.Source {
	return sim.NewSource(sim.Scenarios[benchScenario], benchSeed, benchRate, benchStart)
}

// generate writes n flows through the recorder's own sink (the import
// path: no WAL), so that files, names, partitions and row groups are a
// real recording's, and, when jsonFile is set, as jsonpb lines. Flows are
// simulated in chunks on one goroutine and written on others: 10M flows
// never sit in memory at once.
func generate(ctx context.Context, n int, rec, jsonFile string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const chunk = 32 * 1024
	toSink, toJSON := make(chan []*flowpb.Flow, 2), make(chan []*flowpb.Flow, 2)
	go func() {
		defer close(toSink)
		defer close(toJSON)
		src := newBenchSource()
		for left := n; left > 0; left -= chunk {
			c := src.Take(min(left, chunk))
			for _, ch := range []chan []*flowpb.Flow{toSink, toJSON} {
				if ch == toJSON && jsonFile == "" {
					continue
				}
				select {
				case ch <- c:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	jsonErr := make(chan error, 1)
	go func() {
		if jsonFile == "" {
			jsonErr <- nil
			return
		}
		err := writeJSONPB(toJSON, jsonFile)
		if err != nil {
			cancel()
		}
		jsonErr <- err
	}()
	sinkErr := writeSink(toSink, rec)
	if sinkErr != nil {
		cancel()
	}
	return errors.Join(sinkErr, <-jsonErr)
}

func writeSink(flows <-chan []*flowpb.Flow, dir string) error {
	// One recording id: analyze then sees one session and skips the
	// uuid dedupe, as it does for a real single-recorder capture. Staged,
	// as an import writes: without write-ahead logs.
	st, err := tape.Stage(tape.SinkOptions{Dir: dir, RecordingID: "bench0001", Writer: "flowtape bench",
		RotateRows: benchFileRows}, tape.Session{Status: "importing", Start: time.Now().UTC()})
	if err != nil {
		return err
	}
	var n uint64
	for c := range flows {
		for _, f := range c {
			if err := st.WriteFlow(f); err != nil {
				st.Abort()
				return fmt.Errorf("write recording: %w", err)
			}
			n++
		}
	}
	if _, err := st.Commit(tape.Totals{Flows: n}); err != nil {
		return fmt.Errorf("write recording: %w", err)
	}
	return nil
}

func writeJSONPB(flows <-chan []*flowpb.Flow, name string) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	var scratch bytes.Buffer
	for c := range flows {
		for _, fl := range c {
			line, err := importer.MarshalLine(observer.FlowResponse(fl), &scratch)
			if err != nil {
				return err
			}
			if _, err := w.Write(line); err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return f.Close()
}

// ResetPeakRSS makes VmHWM start again from the current RSS (Linux:
// writing 5 to clear_refs), after handing the Go heap's garbage back to
// the OS, so that the next VmHWM is the peak of what runs in between.
// DuckDB allocates outside the Go heap: the Go runtime's statistics miss
// it. It returns the RSS the peak starts from.
func ResetPeakRSS() (float64, error) {
	runtime.GC()
	debug.FreeOSMemory()
	if err := ResetProcessPeak("self"); err != nil {
		return 0, err
	}
	return ProcStatusMB("VmRSS")
}

// ResetProcessPeak makes VmHWM of process pid ("self", or a number) start
// again from its current RSS.
func ResetProcessPeak(pid string) error {
	if err := os.WriteFile("/proc/"+pid+"/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("reset VmHWM: %w", err)
	}
	return nil
}

// ProcStatusMB reads a kB field of /proc/self/status, in MB.
func ProcStatusMB(field string) (float64, error) { return ProcessStatusMB("self", field) }

// ProcessStatusMB reads a kB field of /proc/PID/status, in MB.
func ProcessStatusMB(pid, field string) (float64, error) {
	name := "/proc/" + pid + "/status"
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				return 0, fmt.Errorf("%s %s: %w", name, field, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("%s has no %s", name, field)
}

// PeakSampler polls a kB field of /proc/PID/status (such as RssAnon, which
// has no high-water mark of its own) until Stop, which returns the largest
// value seen, in MB.
type PeakSampler struct {
	stop chan struct{}
	done chan float64
}

// SamplePeak starts polling field of process pid every period.
func SamplePeak(pid, field string, period time.Duration) *PeakSampler {
	s := &PeakSampler{stop: make(chan struct{}), done: make(chan float64, 1)}
	go func() {
		peak := 0.0
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			if v, err := ProcessStatusMB(pid, field); err == nil {
				peak = max(peak, v)
			}
			select {
			case <-s.stop:
				s.done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends the polling and returns the peak.
func (s *PeakSampler) Stop() float64 {
	close(s.stop)
	return <-s.done
}

// ProcessCPU is the CPU time (user and system) process pid ("self", or a
// number) has used so far, from /proc/PID/stat: for a process that keeps
// running, such as a server, where exec's ProcessState is not there yet.
func ProcessCPU(pid string) (time.Duration, error) {
	name := "/proc/" + pid + "/stat"
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: the fields after it
	// start after its closing parenthesis; utime and stime are fields 14
	// and 15, in clock ticks (USER_HZ, 100 on Linux).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("%s: no command name", name)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: %d fields after the command name, want 13 or more", name, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / 100), nil
}
