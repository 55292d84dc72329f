package main

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flowtape/flowtape/internal/testutil"
)

// The real hubble-relay finds the simulated agents through the Peer service
// and aggregates them like a cluster's nodes.
func TestHubbleRelayAggregatesSimAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds hubble-relay")
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"sim", "--listen", "", "--agents-listen", "127.0.0.1:0", "--seed", "4"}, pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	re := regexp.MustCompile(`agent (\S+) on (127\.0\.0\.1:\d+)`)
	sc := bufio.NewScanner(pr)
	var agents []string
	for len(agents) < 3 && sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			agents = append(agents, m[2])
		}
	}
	go io.Copy(io.Discard, pr) //nolint:errcheck
	if len(agents) != 3 {
		t.Fatalf("sim announced %d agents", len(agents))
	}
	relayAddr := testutil.StartRelay(t, agents[0], "--disable-server-tls", "--disable-client-tls")
	var nodes string
	testutil.Eventually(t, 30*time.Second, "hubble-relay sees the 3 simulated nodes", func() bool {
		out, _ := exec.Command(testutil.Tool(t, "hubble"), "list", "nodes", "--server", relayAddr).Output()
		nodes = string(out)
		return strings.Count(nodes, "Connected") == 3
	})
	seen := map[string]bool{}
	for _, r := range jsonpbFlows(t, hubble(t, "observe", "--server", relayAddr, "--last", "300", "-o", "jsonpb")) {
		if f := r.GetFlow(); f != nil {
			seen[f.GetNodeName()] = true
		}
	}
	if len(seen) != 3 {
		t.Fatalf("flows through the relay came from %d nodes, want 3: %v", len(seen), seen)
	}
}
