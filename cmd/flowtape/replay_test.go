package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"

	"github.com/flowtape/flowtape/internal/buildinfo"
	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/internal/hubblecli"
	"github.com/flowtape/flowtape/internal/observer"
	"github.com/flowtape/flowtape/internal/simrecord"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/record"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// startReplay runs `flowtape replay` in-process and returns the address it
// serves and what it printed on start.
func startReplay(t *testing.T, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"replay", "--listen", "127.0.0.1:0"}, args...), pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("flowtape replay exited %d", code)
		}
	})
	re := regexp.MustCompile(`on (127\.0\.0\.1:\d+)`)
	sc := bufio.NewScanner(pr)
	var banner strings.Builder
	addr := ""
	for sc.Scan() {
		banner.WriteString(sc.Text() + "\n")
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
		}
		if strings.Contains(sc.Text(), "hubble list nodes") {
			go io.Copy(io.Discard, pr) //nolint:errcheck
			return addr, banner.String()
		}
	}
	t.Fatalf("flowtape replay did not say where it listens:\n%s", banner.String())
	return "", ""
}

// recordedFlows reads a recording's flows file by file (they are written in
// time order) and orders them by time, keeping ties in file order.
func recordedFlows(t *testing.T, dir string) []*observerpb.GetFlowsResponse {
	t.Helper()
	files, err := tape.FindFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []*observerpb.GetFlowsResponse
	for _, p := range files.Flows {
		if _, err := tape.ReadFile(context.Background(), schema.Flows, p, func(f *flowpb.Flow) error {
			out = append(out, observer.FlowResponse(f))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	slices.SortStableFunc(out, func(a, b *observerpb.GetFlowsResponse) int {
		return cmp.Compare(a.GetTime().AsTime().UnixNano(), b.GetTime().AsTime().UnixNano())
	})
	return out
}

func onlyFlows(rs []*observerpb.GetFlowsResponse) []*observerpb.GetFlowsResponse {
	var out []*observerpb.GetFlowsResponse
	for _, r := range rs {
		if r.GetFlow() != nil {
			out = append(out, r)
		}
	}
	return out
}

var replayScenario = func() sim.Config {
	s := sim.Scenarios["incident"]
	s.IncidentAt = 10 * time.Second
	return sim.Config{Scenario: s, Seed: 12, Rate: 250, Duration: 20 * time.Second,
		Start: time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)}
}()

// The real hubble CLI against flowtape replay: the recording comes back
// whole, and every filter behaves as the CLI's own filtering of the same
// flows exported as jsonpb.
func TestHubbleObserveAgainstReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hubble CLI")
	}
	hubble(t, "version")
	dir := t.TempDir()
	truth, err := simrecord.Run(t.Context(), replayScenario, dir, nil, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	addr, banner := startReplay(t, dir)
	for _, want := range []string{"serving " + thousands(truth.Flows) + " flows", "from 3 nodes", "window: 2026-11-25T13:00:00", "hubble observe --server " + addr} {
		if !strings.Contains(banner, want) {
			t.Errorf("start message lacks %q:\n%s", want, banner)
		}
	}

	recorded := recordedFlows(t, dir)
	if uint64(len(recorded)) != truth.Flows {
		t.Fatalf("the recording holds %d flows, the simulation made %d", len(recorded), truth.Flows)
	}
	all := onlyFlows(jsonpbFlows(t, hubble(t, "observe", "--server", addr, "--all", "-o", "jsonpb")))
	testutil.SameMessages(t, "hubble observe --all", all, recorded)

	exported := filepath.Join(t.TempDir(), "flows.json")
	if code := run(context.Background(), []string{"export", dir, "-o", exported}, io.Discard, io.Discard); code != 0 {
		t.Fatalf("flowtape export exited %d", code)
	}
	// A wildcard node filter, as users type them: a node of the recording
	// by the suffix of its name.
	node := recorded[0].GetFlow().GetNodeName()
	nodePattern := "boutique/*-" + node[strings.LastIndex(node, "-")+1:]
	for _, tc := range []struct {
		args     []string
		nonEmpty bool
	}{
		{[]string{"--namespace", "kube-system"}, true},
		{[]string{"--pod", "default/frontend"}, true},
		{[]string{"--from-pod", "default/checkoutservice", "--to-pod", "default/paymentservice"}, true},
		{[]string{"--verdict", "DROPPED"}, true},
		{[]string{"--http-status", "503"}, true},
		{[]string{"--http-status", "5+", "--http-method", "POST"}, false},
		{[]string{"--type", "l7"}, true},
		{[]string{"--type", "trace:to-endpoint"}, false},
		{[]string{"--label", "k8s:app=cartservice"}, true},
		{[]string{"--to-label", "k8s:app=redis-cart", "--protocol", "tcp"}, true},
		{[]string{"--since", "2026-11-25T13:00:12Z", "--until", "2026-11-25T13:00:13.5Z"}, true},
		{[]string{"--not", "--verdict", "FORWARDED"}, true},
		{[]string{"--not", "--namespace", "default", "--not", "--protocol", "udp"}, false},
		{[]string{"--drop-reason-desc", "POLICY_DENIED"}, true},
		{[]string{"--protocol", "dns"}, true},
		{[]string{"--node-name", nodePattern}, true},
		{[]string{"--traffic-direction", "ingress", "--port", "7070"}, true},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			window := slices.Contains(tc.args, "--since")
			oracleArgs := append([]string{"observe", "--input-file", exported, "-o", "jsonpb"}, tc.args...)
			serverArgs := append([]string{"observe", "--server", addr, "-o", "jsonpb"}, tc.args...)
			if !window {
				oracleArgs = append(oracleArgs, "--all")
				serverArgs = append(serverArgs, "--all")
			}
			want := onlyFlows(jsonpbFlows(t, hubble(t, oracleArgs...)))
			if tc.nonEmpty && len(want) == 0 {
				t.Fatal("the scenario has no such flows: the case tests nothing")
			}
			testutil.SameMessages(t, "hubble observe --server replay "+strings.Join(tc.args, " "),
				onlyFlows(jsonpbFlows(t, hubble(t, serverArgs...))), want)
		})
	}

	// Following at speed max plays the rest of the recording and ends.
	testutil.SameMessages(t, "hubble observe --follow (speed max)",
		onlyFlows(jsonpbFlows(t, hubble(t, "observe", "--server", startReplayAddr(t, dir, "--speed", "max"), "--follow", "-o", "jsonpb"))), recorded)
}

func startReplayAddr(t *testing.T, args ...string) string {
	addr, _ := startReplay(t, args...)
	return addr
}

// A recording made through the real hubble-relay, replayed: hubble status,
// hubble list nodes and --first/--last N answer as the relay does over the
// same flows (N per node, merged in time order).
func TestReplayAnswersAsTheRelayItReplays(t *testing.T) {
	if testing.Short() {
		t.Skip("builds hubble-relay")
	}
	cfg := replayScenario
	cfg.Duration = 20 * time.Second
	cfg.RingCapacity = 1 << 16 // the agents keep every flow, as the recording does
	cfg.Truth = true
	c, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := sim.ListenAgents("127.0.0.1:0", defaults.SimNodes)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)              //nolint:errcheck // ends with ctx
	go c.ServeAgents(ctx, lis) //nolint:errcheck // ends with ctx
	relay := testutil.StartRelay(t, lis[0].Addr().String(), "--disable-server-tls", "--disable-client-tls")

	dir := t.TempDir()
	fl := hubblecli.ConnFlags()
	if err := fl.Parse([]string{"--server", relay}); err != nil {
		t.Fatal(err)
	}
	d, err := hubblecli.NewDialer(fl)
	if err != nil {
		t.Fatal(err)
	}
	recCtx, stop := context.WithTimeout(ctx, 3*time.Minute)
	defer stop()
	_, err = record.Run(recCtx, record.Options{Dialer: d, Since: cfg.Start.Add(-time.Hour),
		Sink: tape.SinkOptions{Dir: dir, Writer: buildinfo.Writer()}, Log: slog.Default(),
		Progress: func(p record.Progress) {
			if c.Finished() && p.Flows >= c.Truth().Flows {
				stop()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if recCtx.Err() == context.DeadlineExceeded {
		t.Fatal("the recording through hubble-relay did not get every flow in 3 minutes")
	}
	replayAddr, _ := startReplay(t, dir)

	for _, args := range [][]string{{"--first", "7"}, {"--last", "7"}, {"--last", "5", "--verdict", "DROPPED"}, {"--first", "3", "--to-pod", "default/cartservice"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			fromRelay := onlyFlows(jsonpbFlows(t, hubble(t, append([]string{"observe", "--server", relay, "-o", "jsonpb"}, args...)...)))
			fromReplay := onlyFlows(jsonpbFlows(t, hubble(t, append([]string{"observe", "--server", replayAddr, "-o", "jsonpb"}, args...)...)))
			if len(fromRelay) == 0 {
				t.Fatal("the relay returned no flows: the case tests nothing")
			}
			// The relay's sort buffer orders flows of equal time as they
			// arrive; compare in a canonical order, after checking the time
			// order itself.
			for _, rs := range [][]*observerpb.GetFlowsResponse{fromRelay, fromReplay} {
				if !slices.IsSortedFunc(rs, byTime) {
					t.Fatal("flows are not in time order")
				}
				slices.SortStableFunc(rs, func(a, b *observerpb.GetFlowsResponse) int {
					return cmp.Or(byTime(a, b), cmp.Compare(a.GetFlow().GetUuid(), b.GetFlow().GetUuid()))
				})
			}
			if slices.Contains(args, "--first") {
				fromRelay, fromReplay = awayFromCut(t, fromRelay, fromReplay, true)
			} else {
				fromRelay, fromReplay = awayFromCut(t, fromRelay, fromReplay, false)
			}
			testutil.SameMessages(t, "replay vs relay", fromReplay, fromRelay)
		})
	}

	var relayNodes, replayNodes []string
	for _, l := range strings.Split(string(hubble(t, "list", "nodes", "--server", relay)), "\n")[1:] {
		if f := strings.Fields(l); len(f) > 1 {
			relayNodes = append(relayNodes, f[0]+" "+f[1])
		}
	}
	for _, l := range strings.Split(string(hubble(t, "list", "nodes", "--server", replayAddr)), "\n")[1:] {
		if f := strings.Fields(l); len(f) > 1 {
			replayNodes = append(replayNodes, f[0]+" "+f[1])
		}
	}
	slices.Sort(relayNodes)
	if len(relayNodes) != 3 || !slices.Equal(relayNodes, replayNodes) {
		t.Errorf("hubble list nodes: replay shows %v, the relay %v", replayNodes, relayNodes)
	}
	var st map[string]any
	if err := json.Unmarshal(hubble(t, "status", "--server", replayAddr, "-o", "json"), &st); err != nil {
		t.Fatal(err)
	}
	n := c.Truth().Flows
	if st["num_flows"] != itoa(n) || st["max_flows"] != itoa(n) || st["num_connected_nodes"] != float64(3) {
		t.Errorf("hubble status -o json: %v, want %d flows of %d and 3 connected nodes", st, n, n)
	}
	if out := string(hubble(t, "status", "--server", replayAddr)); !strings.Contains(out, "Healthcheck (via "+replayAddr+"): Ok") {
		t.Errorf("hubble status:\n%s", out)
	}
}

func byTime(a, b *observerpb.GetFlowsResponse) int {
	return cmp.Compare(a.GetTime().AsTime().UnixNano(), b.GetTime().AsTime().UnixNano())
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// sampleRecording writes a real capture as a recording.
func sampleRecording(t *testing.T, name string) (string, []*observerpb.GetFlowsResponse) {
	t.Helper()
	dir := t.TempDir()
	rs := testutil.LoadResponses(t, testutil.Testdata("samples", name))
	testutil.WriteRecording(t, dir, "s1", rs)
	return dir, rs
}

// awayFromCut drops, per node, the flows at the time where N flows were cut
// off (the latest time of a node's first N, the earliest of its last N),
// after checking both sides have as many there. Flows of equal time have no
// order of their own: the relay takes them in its agents' ring order, the
// recording in the order the relay streamed them, and either is the first
// or last N.
func awayFromCut(t *testing.T, a, b []*observerpb.GetFlowsResponse, first bool) (_, _ []*observerpb.GetFlowsResponse) {
	t.Helper()
	cut := map[string]int64{}
	for _, r := range a {
		ns, node := r.GetFlow().GetTime().AsTime().UnixNano(), r.GetFlow().GetNodeName()
		if c, ok := cut[node]; !ok || (first && ns > c) || (!first && ns < c) {
			cut[node] = ns
		}
	}
	split := func(rs []*observerpb.GetFlowsResponse) (away []*observerpb.GetFlowsResponse, at map[string]int) {
		at = map[string]int{}
		for _, r := range rs {
			node := r.GetFlow().GetNodeName()
			if c, ok := cut[node]; ok && r.GetFlow().GetTime().AsTime().UnixNano() == c {
				at[node]++
				continue
			}
			away = append(away, r)
		}
		return away, at
	}
	awayA, atA := split(a)
	awayB, atB := split(b)
	if !maps.Equal(atA, atB) {
		t.Errorf("flows at the cut per node: %v and %v", atA, atB)
	}
	return awayA, awayB
}

// TLS as hubble-relay serves it: the hubble CLI's TLS flags work, and with
// a client CA a client without a certificate is refused.
func TestReplayServesTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hubble CLI")
	}
	dir, rs := sampleRecording(t, "basic-sample-10-flows.json")
	pki := testutil.NewTLS(t, t.TempDir(), "replay.flowtape.test")
	addr, banner := startReplay(t, dir, "--tls-relay-server-cert-file", pki.ServerCert, "--tls-relay-server-key-file", pki.ServerKey,
		"--tls-relay-client-ca-files", pki.CA)
	if !strings.Contains(banner, "--tls --tls-ca-cert-files CA.crt --tls-server-name replay.flowtape.test --tls-client-cert-file") {
		t.Errorf("the start message does not show the TLS flags to use:\n%s", banner)
	}
	tlsArgs := []string{"--tls", "--tls-ca-cert-files", pki.CA, "--tls-server-name", pki.ServerName}
	got := onlyFlows(jsonpbFlows(t, hubble(t, append([]string{"observe", "--server", addr, "--all", "-o", "jsonpb",
		"--tls-client-cert-file", pki.ClientCert, "--tls-client-key-file", pki.ClientKey}, tlsArgs...)...)))
	testutil.SameMessages(t, "hubble observe over mutual TLS", got, onlyFlows(rs))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testutil.Tool(t, "hubble"), append([]string{"observe", "--server", addr, "--all", "--timeout", "5s"}, tlsArgs...)...)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("hubble observe without a client certificate was served:\n%s", out)
	}
}

func TestReplayBadInput(t *testing.T) {
	dir, _ := sampleRecording(t, "basic-sample-10-flows.json")
	empty := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no recording", []string{"replay", empty}, exitError, empty + ": not a flowtape recording"},
		{"missing directory", []string{"replay", empty + "/nope"}, exitError, "no such file or directory"},
		{"plaintext off loopback", []string{"replay", dir, "--listen", "0.0.0.0:0"}, exitUsage, "is not a loopback address"},
		{"certificate without key", []string{"replay", dir, "--tls-relay-server-cert-file", "x.crt"}, exitUsage, "needs both"},
		{"client CA without TLS", []string{"replay", dir, "--tls-relay-client-ca-files", "ca.crt"}, exitUsage, "needs --tls-relay-server-cert-file"},
		{"unreadable certificate", []string{"replay", dir, "--tls-relay-server-cert-file", "x.crt", "--tls-relay-server-key-file", "x.key"}, exitError, "TLS certificate x.crt"},
		{"bad speed", []string{"replay", dir, "--speed", "fast"}, exitUsage, `invalid --speed "fast"`},
		{"bad memory limit", []string{"replay", dir, "--memory-limit", "lots"}, exitUsage, `--memory-limit: invalid size "lots"`},
		{"no directory", []string{"replay"}, exitUsage, "requires at least 1 arg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantOneLineError(t, tc.args, tc.code, tc.want)
		})
	}
}
