package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/flowtape/flowtape/internal/testutil"
)

// startSim runs `flowtape sim` in-process and returns the address it serves.
func startSim(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"sim", "--listen", "127.0.0.1:0"}, args...), pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("flowtape sim exited %d", code)
		}
	})
	re := regexp.MustCompile(`on (127\.0\.0\.1:\d+)`)
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			go io.Copy(io.Discard, pr) //nolint:errcheck
			return m[1]
		}
	}
	t.Fatal("flowtape sim did not say where it listens")
	return ""
}

func hubble(t *testing.T, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testutil.Tool(t, "hubble"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hubble %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func jsonpbFlows(t *testing.T, out []byte) []*observerpb.GetFlowsResponse {
	t.Helper()
	var rs []*observerpb.GetFlowsResponse
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		r := &observerpb.GetFlowsResponse{}
		if err := protojson.Unmarshal(line, r); err != nil {
			t.Fatalf("hubble printed a line that is not a GetFlowsResponse: %v\n%s", err, line)
		}
		rs = append(rs, r)
	}
	return rs
}

// The real hubble CLI against flowtape sim: the cluster looks like a relay.
func TestHubbleObserveAgainstSim(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hubble CLI")
	}
	hubble(t, "version") // build it before the simulation starts
	addr := startSim(t, "--speed", "max", "--scenario", "incident", "--seed", "9",
		"--start", "2026-11-25T13:00:00Z", "--incident-at", "0s")

	// At speed max without a follower the simulation runs until a node's
	// ring buffer is full, then waits; wait for that.
	var status map[string]any
	prev := ""
	testutil.Eventually(t, 30*time.Second, "the simulation fills a ring and waits", func() bool {
		out := hubble(t, "status", "--server", addr, "-o", "json")
		if err := json.Unmarshal(out, &status); err != nil {
			t.Fatalf("hubble status -o json: %v\n%s", err, out)
		}
		n, _ := status["num_flows"].(string)
		stable := n == prev && n != ""
		prev = n
		return stable
	})
	numFlows, _ := strconv.Atoi(prev)
	if numFlows < 4095 || status["max_flows"] != "12285" || status["num_connected_nodes"] != float64(3) {
		t.Fatalf("hubble status: %v, want 3 nodes with rings of 4095, one of them full", status)
	}

	compact := hubble(t, "observe", "--server", addr, "--last", "100")
	lines := strings.Split(strings.TrimSpace(string(compact)), "\n")
	if len(lines) != 100 {
		t.Fatalf("hubble observe --last 100 printed %d lines", len(lines))
	}
	for _, l := range lines {
		if !strings.Contains(l, "FORWARDED") && !strings.Contains(l, "DROPPED") {
			t.Fatalf("not a flow line: %q", l)
		}
	}
	nodes := hubble(t, "list", "nodes", "--server", addr)
	if c := strings.Count(string(nodes), "Connected"); c != 3 {
		t.Errorf("hubble list nodes shows %d connected nodes:\n%s", c, nodes)
	}

	// Follow the whole incident with server-side filters; the oracle is the
	// CLI's own filter semantics applied to the unfiltered flows.
	all := jsonpbFlows(t, hubble(t, "observe", "--server", addr, "--all", "-o", "jsonpb"))
	if len(all) != numFlows {
		t.Fatalf("--all returned %d flows", len(all))
	}
	for _, tc := range []struct {
		name     string
		args     []string
		nonEmpty bool
		match    func(r *observerpb.GetFlowsResponse) bool
	}{
		{
			// Hubble reports responses with source and destination swapped,
			// so these are the requests to paymentservice that were answered 503: none
			// on the request flows themselves (they carry no status).
			name: "to-pod paymentservice, http-status 503",
			args: []string{"--to-pod", "default/paymentservice", "--http-status", "503"},
			match: func(r *observerpb.GetFlowsResponse) bool {
				f := r.GetFlow()
				return strings.HasPrefix(f.GetDestination().GetPodName(), "paymentservice") && f.GetL7().GetHttp().GetCode() == 503
			},
		},
		{
			name:     "from-pod paymentservice, http-status 503",
			args:     []string{"--from-pod", "default/paymentservice", "--http-status", "503"},
			nonEmpty: true,
			match: func(r *observerpb.GetFlowsResponse) bool {
				f := r.GetFlow()
				return strings.HasPrefix(f.GetSource().GetPodName(), "paymentservice") && f.GetL7().GetHttp().GetCode() == 503
			},
		},
		{
			name:     "to-pod productcatalogservice, verdict DROPPED",
			args:     []string{"--to-pod", "default/productcatalogservice", "--verdict", "DROPPED"},
			nonEmpty: true,
			match: func(r *observerpb.GetFlowsResponse) bool {
				f := r.GetFlow()
				return strings.HasPrefix(f.GetDestination().GetPodName(), "productcatalogservice") && f.GetVerdict().String() == "DROPPED"
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := jsonpbFlows(t, hubble(t, append([]string{"observe", "--server", addr, "--all", "-o", "jsonpb"}, tc.args...)...))
			var want []string
			for _, r := range all {
				if tc.match(r) {
					want = append(want, r.GetFlow().GetUuid())
				}
			}
			if tc.nonEmpty && len(want) == 0 {
				t.Fatal("the incident produced no such flows to filter")
			}
			if len(got) != len(want) {
				t.Fatalf("hubble observe %s: %d flows, want %d", strings.Join(tc.args, " "), len(got), len(want))
			}
			for i, r := range got {
				if !tc.match(r) || r.GetFlow().GetUuid() != want[i] {
					t.Fatalf("flow %d does not match the filter: %v", i, r)
				}
			}
		})
	}
}
