package record_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	relaypb "github.com/cilium/cilium/api/v1/relay"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowtape/flowtape/internal/hubblecli"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/record"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// peerDialer is the per-node dialer the record command builds.
type peerDialer struct{ *hubblecli.Dialer }

func (p peerDialer) ForPeer(address, tlsServerName string) record.Dialer {
	return p.Dialer.ForPeer(address, tlsServerName)
}

// serveAgentCluster runs a simulated cluster whose nodes are served as
// agents (Observer and Peer, with the server options), node i on lis[i].
func serveAgentCluster(t testing.TB, cfg sim.Config, opts ...grpc.ServerOption) (*sim.Cluster, []net.Listener) {
	t.Helper()
	return serveAgentsVia(t, cfg, nil, opts...)
}

// serveAgentsVia is serveAgentCluster with the agents' listeners passed
// through wrap first (wrap may replace them).
func serveAgentsVia(t testing.TB, cfg sim.Config, wrap func([]net.Listener), opts ...grpc.ServerOption) (*sim.Cluster, []net.Listener) {
	t.Helper()
	c, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := sim.ListenAgents("127.0.0.1:0", len(c.Topology().Nodes))
	if err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		wrap(lis)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go c.Run(ctx)                       //nolint:errcheck
	go c.ServeAgents(ctx, lis, opts...) //nolint:errcheck
	return c, lis
}

// checkNodeSessions checks a recording made node by node against the
// simulator's truth: every flow once, one session per node holding that
// node's flows only, each with its own totals.
func checkNodeSessions(t *testing.T, dir string, truth sim.Truth) {
	t.Helper()
	flows, _ := readRecording(t, dir)
	seen := map[string]bool{}
	byNode := map[string]uint64{}
	for _, f := range flows {
		if seen[f.GetUuid()] {
			t.Fatalf("flow %s recorded twice", f.GetUuid())
		}
		seen[f.GetUuid()] = true
		byNode[f.GetNodeName()]++
	}
	if uint64(len(flows)) != truth.Flows {
		t.Errorf("recorded %d flows, the simulation produced %d", len(flows), truth.Flows)
	}
	for node, n := range truth.FlowsByNode {
		if byNode[node] != n {
			t.Errorf("node %s: %d flows recorded, the simulation produced %d", node, byNode[node], n)
		}
	}
	m, err := tape.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Sessions) != len(truth.FlowsByNode) {
		t.Fatalf("%d sessions in the manifest, want one per node (%d)", len(m.Sessions), len(truth.FlowsByNode))
	}
	for _, s := range m.Sessions {
		if s.Status != "complete" || truth.FlowsByNode[nodeOf(t, dir, s.RecordingID)] != s.Totals.Flows {
			t.Errorf("session %s (%s, %s): %d flows, want its node's", s.RecordingID, s.Server.Address, s.Status, s.Totals.Flows)
		}
	}
	if m.Totals.Flows != truth.Flows {
		t.Errorf("manifest totals %d flows, want %d", m.Totals.Flows, truth.Flows)
	}
}

// nodeOf is the one node whose flows a session's files hold.
func nodeOf(t *testing.T, dir, id string) string {
	t.Helper()
	files, err := tape.FindFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]bool{}
	for _, p := range files.Flows {
		if tape.SessionOf(p) != id {
			continue
		}
		if _, err := tape.ReadFile(context.Background(), schema.Flows, p, func(f *flowpb.Flow) error {
			nodes[f.GetNodeName()] = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if len(nodes) != 1 {
		t.Errorf("session %s holds flows of %d nodes: %v", id, len(nodes), nodes)
	}
	for n := range nodes {
		return n
	}
	return ""
}

// stopWhenRecorded cancels once the simulation is over and the recording
// holds all its flows.
func stopWhenRecorded(t *testing.T, c *sim.Cluster, dir string, cancel context.CancelFunc) {
	go func() {
		testutil.Eventually(t, 2*time.Minute, "the recording holds every simulated flow", func() bool {
			if !c.Finished() {
				return false
			}
			n, _ := readRecordingQuiet(dir)
			return uint64(n) >= c.Truth().Flows
		})
		cancel()
	}()
}

// Per-node capture finds the agents through the Peer service, as
// hubble-relay does, and records each node's stream as a session of its
// own: the flows equal the simulator's truth, node by node.
func TestPerNodeCapture(t *testing.T) {
	cfg := sim.Config{Seed: 31, Start: t0, Duration: 20 * time.Second, Scenario: sim.Scenarios["incident"], Truth: true}
	c, lis := serveAgentCluster(t, cfg)
	dir := filepath.Join(t.TempDir(), "rec")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stopWhenRecorded(t, c, dir, cancel)
	// The Peer service of any agent lists every node.
	d := dialer(t, "--server", lis[1].Addr().String())
	res, err := record.RunPerNode(ctx, record.Options{Since: t0.Add(-time.Hour), FlushInterval: 200 * time.Millisecond,
		Sink: tape.SinkOptions{Dir: dir, Writer: "test"}}, peerDialer{d})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(lis) {
		t.Errorf("%d node results, want %d", len(res), len(lis))
	}
	checkNodeSessions(t, dir, c.Truth())
}

// Three recorders, one per agent, write one directory at once: no file
// name collides, and the recording is one recording, equal to the
// simulator's truth.
func TestRecordersShareADirectory(t *testing.T) {
	cfg := sim.Config{Seed: 32, Start: t0, Duration: 20 * time.Second, Scenario: sim.Scenarios["steady"], Truth: true}
	c, lis := serveAgentCluster(t, cfg)
	dir := filepath.Join(t.TempDir(), "rec")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stopWhenRecorded(t, c, dir, cancel)
	var wg sync.WaitGroup
	errs := make([]error, len(lis))
	for i, l := range lis {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = record.Run(ctx, record.Options{Dialer: dialer(t, "--server", l.Addr().String()), Since: t0.Add(-time.Hour),
				FlushInterval: 200 * time.Millisecond, Sink: tape.SinkOptions{Dir: dir, Writer: "test", RotateInterval: time.Second}})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("recorder %d: %v", i, err)
		}
	}
	checkNodeSessions(t, dir, c.Truth())
}

// Per-node capture with TLS, as hubble-relay's peer client does it: the
// Peer service and every agent require a client certificate, and each
// agent is verified against the server name the Peer service announces.
func TestPerNodeCaptureTLS(t *testing.T) {
	const agentName = "node.default.hubble-grpc.cilium.io"
	pki := testutil.NewTLS(t, t.TempDir(), agentName)
	cert, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
		MinVersion: tls.VersionTLS13})

	cfg := sim.Config{Seed: 33, Start: t0, Duration: 10 * time.Second, Scenario: sim.Scenarios["steady"], Truth: true, AgentTLSServerName: agentName}
	c, lis := serveAgentCluster(t, cfg, grpc.Creds(creds))

	dir := filepath.Join(t.TempDir(), "rec")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stopWhenRecorded(t, c, dir, cancel)
	d := dialer(t, "--server", lis[0].Addr().String(), "--tls", "--tls-server-name", agentName, "--tls-ca-cert-files", pki.CA,
		"--tls-client-cert-file", pki.ClientCert, "--tls-client-key-file", pki.ClientKey)
	res, err := record.RunPerNode(ctx, record.Options{Since: t0.Add(-time.Hour), FlushInterval: 200 * time.Millisecond,
		Sink: tape.SinkOptions{Dir: dir, Writer: "test"}}, peerDialer{d})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.Session.Server.TLS || r.Err != nil {
			t.Errorf("node %s: TLS %v, %v", r.Node, r.Session.Server.TLS, r.Err)
		}
	}
	checkNodeSessions(t, dir, c.Truth())
}

// A peer service that cannot be reached is one clear error, not a wait for
// ever.
func TestPerNodeCaptureWithoutPeerService(t *testing.T) {
	d := dialer(t, "--server", testutil.FreeAddr(t), "--timeout", "1s")
	start := time.Now()
	_, err := record.RunPerNode(context.Background(), record.Options{Sink: tape.SinkOptions{Dir: t.TempDir()}}, peerDialer{d})
	if !errors.Is(err, record.ErrNoServer) || !strings.Contains(err.Error(), "announced no node") {
		t.Errorf("per-node capture from nowhere: %v, want ErrNoServer", err)
	}
	t.Logf("gave up after %s", time.Since(start).Round(time.Millisecond))
}

// cuttable is a listener whose connections can be cut, and new ones held
// off, for a while: one agent's outage.
type cuttable struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
	until time.Time
}

func (c *cuttable) Accept() (net.Conn, error) {
	for {
		conn, err := c.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		down := time.Now().Before(c.until)
		if !down {
			c.conns = append(c.conns, conn)
		}
		c.mu.Unlock()
		if !down {
			return conn, nil
		}
		conn.Close()
	}
}

// cut closes every connection and refuses new ones for d.
func (c *cuttable) cut(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.until = time.Now().Add(d)
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

// One node's outage does not stop the others: while one agent is away,
// the other nodes' flows keep coming; the reconnects and the outage are
// that node's alone, in its session and in coverage.
func TestPerNodeOutageOfOneNode(t *testing.T) {
	// A reader held up falls behind its node's ring and comes back at the
	// oldest flow still there: the gap in its flows is the hold less what
	// the ring holds. Rings of 256 flows (about 0.35 s of flow time here;
	// the default 4095 hold 5.4-6 s, which hid most of a hold) and an
	// outage long enough that a node held up by it stands out from a
	// loaded machine's stalls of the readers (in CI, with every package's
	// tests running at once, a gap of 5.2 s of flow time with the default
	// rings: a reader held about 2.1 s).
	cfg := sim.Config{Seed: 34, Start: t0, Speed: 5, Scenario: sim.Scenarios["steady"], RingCapacity: 256}
	const outage = 4 * time.Second
	var down *cuttable
	c, lis := serveAgentsVia(t, cfg, func(lis []net.Listener) {
		down = &cuttable{Listener: lis[2]}
		lis[2] = down
	})

	dir := filepath.Join(t.TempDir(), "rec")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		testutil.Eventually(t, 30*time.Second, "every node records", func() bool {
			n, _ := readRecordingQuiet(dir)
			return n > 3000
		})
		down.cut(outage)
		time.Sleep(outage + 2500*time.Millisecond) // the agent back, and its reconnect recorded
		cancel()
	}()
	res, err := record.RunPerNode(ctx, record.Options{FlushInterval: 200 * time.Millisecond, MinBackoff: 50 * time.Millisecond,
		Sink: tape.SinkOptions{Dir: dir, Writer: "test"}}, peerDialer{dialer(t, "--server", lis[0].Addr().String())})
	if err != nil {
		t.Fatal(err)
	}
	downNode := c.Topology().Nodes[2].FullName()
	if len(res) != 3 {
		t.Fatalf("%d node results, want 3", len(res))
	}
	for _, r := range res {
		got := r.Session.Totals.Reconnects
		if (r.Node == downNode) != (got > 0) {
			t.Errorf("node %s: %d reconnects; want them on %s alone", r.Node, got, downNode)
		}
	}
	// The other nodes' flows kept coming while the agent was away: no gap
	// in their flows (hundreds a second each) near the outage's length
	// (20 s of flow time at the simulation's speed; about 19.6 s in the
	// flows of a node held up by it). Shorter ones are a loaded machine's
	// stalls: up to 15 s of flow time (a reader held about 3 s) allowed.
	maxGap := time.Duration(cfg.Speed*float64(outage)) * 3 / 4
	flows, events := readRecording(t, dir)
	byNode := map[string][]time.Time{}
	for _, f := range flows {
		byNode[f.GetNodeName()] = append(byNode[f.GetNodeName()], f.GetTime().AsTime())
	}
	for node, times := range byNode {
		if node == downNode {
			continue
		}
		slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
		for i := 1; i < len(times); i++ {
			if gap := times[i].Sub(times[i-1]); gap > maxGap {
				t.Errorf("node %s has a gap of %s in its flows at %s while %s was away", node, gap, times[i-1], downNode)
				break
			}
		}
	}
	unavailable := map[string]int{}
	for _, ev := range events {
		if ev.GetNodeStatus().GetStateChange() == relaypb.NodeState_NODE_UNAVAILABLE {
			for _, n := range ev.GetNodeStatus().GetNodeNames() {
				unavailable[n]++
			}
		}
	}
	if len(unavailable) != 1 || unavailable[downNode] == 0 {
		t.Errorf("outage events by node: %v, want %s's alone", unavailable, downNode)
	}
}

// A DaemonSet's recorder records its own node only (--node), found through
// the Peer service like the others.
func TestPerNodeCaptureOfOneNode(t *testing.T) {
	// At a speed of its own: the other agents have no reader. A ring that
	// holds the whole run (about 7,100 flows a node; the default 4095 is
	// 1.2 s of it): a recorder a loaded machine starts late loses nothing.
	cfg := sim.Config{Seed: 35, Start: t0, Duration: 10 * time.Second, Speed: 5, Scenario: sim.Scenarios["steady"], Truth: true,
		RingCapacity: 1 << 14}
	c, lis := serveAgentCluster(t, cfg)
	full := c.Topology().Nodes[1].FullName()
	_, short, _ := strings.Cut(full, "/")
	dir := filepath.Join(t.TempDir(), "rec")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		testutil.Eventually(t, time.Minute, "the node's flows are recorded", func() bool {
			n, _ := readRecordingQuiet(dir)
			return c.Finished() && uint64(n) >= c.Truth().FlowsByNode[full]
		})
		cancel()
	}()
	res, err := record.RunPerNode(ctx, record.Options{Since: t0.Add(-time.Hour), FlushInterval: 200 * time.Millisecond,
		Sink: tape.SinkOptions{Dir: dir, Writer: "test"}}, peerDialer{dialer(t, "--server", lis[0].Addr().String())}, short)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Node != full {
		t.Fatalf("recorded %v, want %s alone", res, full)
	}
	flows, _ := readRecording(t, dir)
	for _, f := range flows {
		if f.GetNodeName() != full {
			t.Fatalf("a flow of %s in the recording of %s", f.GetNodeName(), full)
		}
	}
	if uint64(len(flows)) != c.Truth().FlowsByNode[full] {
		t.Errorf("%d flows of %s, the simulation produced %d", len(flows), full, c.Truth().FlowsByNode[full])
	}
}

// Per-node recorders (a DaemonSet's pods, each --per-node --node its own)
// writing one recording, as into one bucket prefix: each file's name
// carries its node, so no two recorders ever name a file alike, and the
// recording holds every node's flows once, its sessions the nodes'.
func TestPerNodeRecordersShareOneRecording(t *testing.T) {
	// (a ring that holds the whole run, as in TestPerNodeCaptureOfOneNode)
	cfg := sim.Config{Seed: 36, Start: t0, Duration: 10 * time.Second, Speed: 5, Scenario: sim.Scenarios["steady"], Truth: true,
		RingCapacity: 1 << 14}
	c, lis := serveAgentCluster(t, cfg)
	dir := filepath.Join(t.TempDir(), "rec")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var nodes []string
	for _, n := range c.Topology().Nodes[:2] {
		nodes = append(nodes, n.FullName())
	}
	// what the nodes' agents produced, once the simulation is over
	want := func() (n uint64) {
		for _, full := range nodes {
			n += c.Truth().FlowsByNode[full]
		}
		return n
	}
	go func() {
		testutil.Eventually(t, time.Minute, "both nodes' flows are recorded", func() bool {
			n, _ := readRecordingQuiet(dir)
			return c.Finished() && uint64(n) >= want()
		})
		cancel()
	}()
	errs := make(chan error, len(nodes))
	for _, full := range nodes {
		_, short, _ := strings.Cut(full, "/")
		go func() {
			_, err := record.RunPerNode(ctx, record.Options{Since: t0.Add(-time.Hour), FlushInterval: 200 * time.Millisecond,
				Sink: tape.SinkOptions{Dir: dir, Writer: "test"}}, peerDialer{dialer(t, "--server", lis[0].Addr().String())}, short)
			errs <- err
		}()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	files, err := tape.FindFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := tape.Sessions(files.Flows); n != len(nodes) {
		t.Errorf("%d sessions, want one per node (%d)", n, len(nodes))
	}
	for _, p := range files.Flows {
		ok := false
		for _, full := range nodes {
			_, short, _ := strings.Cut(full, "/")
			ok = ok || strings.Contains(filepath.Base(p), "_"+strings.ReplaceAll(short, "-", "_")+"-")
		}
		if !ok {
			t.Errorf("%s: no node in its name", p)
		}
	}
	flows, _ := readRecording(t, dir)
	if uint64(len(flows)) != want() || want() == 0 {
		t.Errorf("%d flows, the two nodes' agents produced %d", len(flows), want())
	}
}
