package record_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowtape/flowtape/internal/testutil"
)

// BenchmarkRelayVsPerNode records the same simulated agents (three nodes,
// at the simulator's full speed) twice in one run: through the real
// hubble-relay (flowtape record --server RELAY) and directly from the
// agents (flowtape record --per-node, found through the Peer service). It
// reports the flows per second each recording kept up with, and the CPU
// per flow of each process: the recorder's, and hubble-relay's on the
// relay path. The simulator runs in the benchmark's process on the same
// two cores and is not counted: the CPU figures are the processes' own
// user and system time (rusage).
func BenchmarkRelayVsPerNode(b *testing.B) {
	bin := testutil.FlowtapeBinary(b)
	testutil.Tool(b, "hubble-relay")
	var rates, cpus [2]float64
	var relayCPU float64
	for i := 0; i < b.N; i++ {
		for m, mode := range []string{"relay", "per-node"} {
			c, lis := serveAgentCluster(b, benchSim)
			server := lis[0].Addr().String()
			var relay *exec.Cmd
			if mode == "relay" {
				server, relay = testutil.StartRelayProcess(b, lis[0].Addr().String(), "--disable-server-tls", "--disable-client-tls")
			}
			dir := filepath.Join(b.TempDir(), "rec")
			args := []string{"record", "--server", server, "-o", dir, "--since", t0.Add(-time.Hour).Format(time.RFC3339), "--flush-interval", "200ms"}
			if mode == "per-node" {
				args = append(args, "--per-node")
			}
			cmd := exec.Command(bin, args...)
			var out lockedBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			var n uint64
			testutil.Eventually(b, 5*time.Minute, mode+" records every simulated flow", func() bool {
				if !c.Finished() {
					return false
				}
				got, _ := readRecordingQuiet(dir)
				n = uint64(got)
				return n >= c.Truth().Flows
			})
			rates[m] += float64(n) / time.Since(start).Seconds()
			cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck
			if err := cmd.Wait(); err != nil {
				b.Fatalf("flowtape %s: %v\n%s", strings.Join(args, " "), err, out.String())
			}
			cpus[m] += float64((cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Microseconds()) / float64(n)
			if relay != nil {
				relay.Process.Signal(syscall.SIGTERM) //nolint:errcheck
				relay.Wait()                          //nolint:errcheck
				relayCPU += float64((relay.ProcessState.UserTime() + relay.ProcessState.SystemTime()).Microseconds()) / float64(n)
			}
			if i == 0 {
				b.Logf("%s: %d flows of 3 simulated agents (the simulator in this process, at full speed)", mode, n)
			}
		}
	}
	k := float64(b.N)
	b.ReportMetric(rates[0]/k, "relay-flows/s")
	b.ReportMetric(rates[1]/k, "per-node-flows/s")
	b.ReportMetric(rates[1]/rates[0], "per-node/relay-rate")
	b.ReportMetric(cpus[0]/k, "relay-path-record-cpu-us/flow")
	b.ReportMetric(relayCPU/k, "relay-path-relay-cpu-us/flow")
	b.ReportMetric(cpus[1]/k, "per-node-record-cpu-us/flow")
}
