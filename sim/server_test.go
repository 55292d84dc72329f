package sim_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	peerpb "github.com/cilium/cilium/api/v1/peer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/sim"
)

var t0 = time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)

// startCluster runs a cluster and serves it on a loopback port; it returns a
// connected Observer client.
func startCluster(t *testing.T, cfg sim.Config) (*sim.Cluster, observerpb.ObserverClient, string) {
	t.Helper()
	c, client, addr, run := startClusterHeld(t, cfg)
	run()
	return c, client, addr
}

// startClusterHeld serves a cluster whose simulation starts when run is called.
func startClusterHeld(t *testing.T, cfg sim.Config) (*sim.Cluster, observerpb.ObserverClient, string, func()) {
	t.Helper()
	if cfg.Start.IsZero() {
		cfg.Start = t0
	}
	c, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	running := 1 // Serve; Run once run is called
	run := func() {
		running++
		go func() { _ = c.Run(ctx); done <- struct{}{} }()
	}
	go func() { _ = c.Serve(ctx, lis); done <- struct{}{} }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		for range running {
			<-done
		}
	})
	return c, observerpb.NewObserverClient(conn), lis.Addr().String(), run
}

func collect(t *testing.T, client observerpb.ObserverClient, req *observerpb.GetFlowsRequest) (flows []*flowpb.Flow, lost uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := client.GetFlows(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return flows, lost
		}
		if err != nil {
			t.Fatal(err)
		}
		if f := r.GetFlow(); f != nil {
			flows = append(flows, f)
		}
		if l := r.GetLostEvents(); l != nil {
			if l.GetSource() != flowpb.LostEventSource_HUBBLE_RING_BUFFER {
				t.Fatalf("lost events from %v", l.GetSource())
			}
			lost += l.GetNumEventsLost()
		}
	}
}

// waitFull waits until the (speed max) cluster has filled its rings and
// stopped: without a follower it waits once a node's ring is full.
func waitFull(t *testing.T, client observerpb.ObserverClient) *observerpb.ServerStatusResponse {
	t.Helper()
	var st, prev *observerpb.ServerStatusResponse
	testutil.Eventually(t, 30*time.Second, "the ring buffers fill", func() bool {
		var err error
		if st, err = client.ServerStatus(context.Background(), &observerpb.ServerStatusRequest{}); err != nil {
			t.Fatal(err)
		}
		full := st.GetSeenFlows() > 0 && st.GetNumFlows() >= st.GetMaxFlows()-st.GetMaxFlows()/3
		stopped := prev != nil && st.GetSeenFlows() == prev.GetSeenFlows()
		prev = st
		return full && stopped
	})
	return st
}

func TestGetFlowsRequests(t *testing.T) {
	_, client, _ := startCluster(t, sim.Config{Seed: 1, Speed: 0, RingCapacity: 500})
	st := waitFull(t, client)
	if st.GetMaxFlows() != 1500 || st.GetNumConnectedNodes().GetValue() != 3 || st.GetVersion() == "" {
		t.Fatalf("status = %v", st)
	}
	all, _ := collect(t, client, &observerpb.GetFlowsRequest{})
	if uint64(len(all)) != st.GetNumFlows() {
		t.Fatalf("GetFlows without number returned %d flows, status says %d", len(all), st.GetNumFlows())
	}
	for i := 1; i < len(all); i++ {
		if all[i].GetTime().AsTime().Before(all[i-1].GetTime().AsTime()) {
			t.Fatal("flows of the nodes are not merged in time order")
		}
	}
	last, _ := collect(t, client, &observerpb.GetFlowsRequest{Number: 10})
	first, _ := collect(t, client, &observerpb.GetFlowsRequest{Number: 10, First: true})
	if len(last) != 10 || len(first) != 10 || last[9].GetUuid() != all[len(all)-1].GetUuid() || first[0].GetUuid() != all[0].GetUuid() {
		t.Fatalf("--last 10 / --first 10 did not return the newest / oldest flows")
	}
	mid := all[len(all)/2].GetTime()
	since, _ := collect(t, client, &observerpb.GetFlowsRequest{Since: mid})
	until, _ := collect(t, client, &observerpb.GetFlowsRequest{Until: mid})
	for _, f := range since {
		if f.GetTime().AsTime().Before(mid.AsTime()) {
			t.Fatal("since returned an earlier flow")
		}
	}
	for _, f := range until {
		if f.GetTime().AsTime().After(mid.AsTime()) {
			t.Fatal("until returned a later flow")
		}
	}
	if len(since)+len(until) < len(all) {
		t.Fatalf("since (%d) and until (%d) miss flows of %d", len(since), len(until), len(all))
	}
	// Filters are Cilium's own: a destination pod prefix and a verdict.
	pay, _ := collect(t, client, &observerpb.GetFlowsRequest{Whitelist: []*flowpb.FlowFilter{{
		DestinationPod: []string{"default/paymentservice"}}}})
	want := 0
	for _, f := range all {
		if f.GetDestination().GetNamespace() == "default" && len(f.GetDestination().GetPodName()) > 0 &&
			f.GetDestination().GetWorkloads()[0].GetName() == "paymentservice" {
			want++
		}
	}
	if len(pay) != want {
		t.Errorf("destination pod filter: %d flows, want %d", len(pay), want)
	}
	notFwd, _ := collect(t, client, &observerpb.GetFlowsRequest{Blacklist: []*flowpb.FlowFilter{{Verdict: []flowpb.Verdict{flowpb.Verdict_FORWARDED}}}})
	for _, f := range notFwd {
		if f.GetVerdict() == flowpb.Verdict_FORWARDED {
			t.Fatal("denylist did not exclude FORWARDED")
		}
	}
	nodes, err := client.GetNodes(context.Background(), &observerpb.GetNodesRequest{})
	if err != nil || len(nodes.GetNodes()) != 3 {
		t.Fatalf("GetNodes = %v, %v", nodes, err)
	}
	ns, err := client.GetNamespaces(context.Background(), &observerpb.GetNamespacesRequest{})
	if err != nil || len(ns.GetNamespaces()) != 2 {
		t.Fatalf("GetNamespaces = %v, %v", ns, err)
	}
}

// At speed max a follower gets everything, in order, and the stream ends
// with the simulation.
func TestFollowAtMaxSpeedLosesNothing(t *testing.T) {
	c, client, _ := startCluster(t, sim.Config{Seed: 5, Speed: 0, RingCapacity: 200, Duration: 20 * time.Second, Truth: true})
	flows, lost := collect(t, client, &observerpb.GetFlowsRequest{Follow: true, Since: timestamppb.New(t0)})
	if lost != 0 {
		t.Fatalf("a follower lost %d flows at speed max", lost)
	}
	tr := c.Truth()
	if uint64(len(flows)) != tr.Flows || tr.Flows < 20*1500 {
		t.Fatalf("follower got %d flows, the simulation produced %d", len(flows), tr.Flows)
	}
}

// A reader slower than the cluster is told how much it lost, per node, and
// what it got plus what it lost is everything.
func TestSlowReaderGetsLostEvents(t *testing.T) {
	c, client, _, run := startClusterHeld(t, sim.Config{Seed: 2, Speed: 20, Rate: 2000, RingCapacity: 100, Duration: 6 * time.Second, Truth: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := client.GetFlows(ctx, &observerpb.GetFlowsRequest{Follow: true, Since: timestamppb.New(t0)})
	if err != nil {
		t.Fatal(err)
	}
	// The reader is there before the first flow: what it does not get
	// must all be reported lost (flows evicted before it came are not its
	// loss, as with Hubble).
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "the reader follows", func() bool { return c.Followers() == 1 })
	run()
	var got, lost uint64
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.GetFlow() != nil {
			got++
			if got%200 == 0 {
				time.Sleep(20 * time.Millisecond) // a slow consumer
			}
		}
		if l := r.GetLostEvents(); l != nil {
			if l.GetSource() != flowpb.LostEventSource_HUBBLE_RING_BUFFER || r.GetNodeName() == "" {
				t.Fatalf("lost event without source or node: %v", r)
			}
			lost += l.GetNumEventsLost()
		}
	}
	total := c.Truth().Flows
	if lost == 0 {
		t.Fatal("a slow reader lost nothing: the ring buffer does not overflow")
	}
	if got+lost != total {
		t.Fatalf("received %d + lost %d != produced %d: a silent gap", got, lost, total)
	}
}

func TestAgentsAndPeerService(t *testing.T) {
	c, err := sim.New(sim.Config{Seed: 3, Start: t0, RingCapacity: 300})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lis, err := sim.ListenAgents("127.0.0.1:0", len(c.Topology().Nodes))
	if err != nil {
		t.Fatal(err)
	}
	go c.Run(ctx)              //nolint:errcheck
	go c.ServeAgents(ctx, lis) //nolint:errcheck
	conn, err := grpc.NewClient(lis[1].Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pc, err := peerpb.NewPeerClient(conn).Notify(ctx, &peerpb.NotifyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range lis {
		n, err := pc.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if n.GetType() != peerpb.ChangeNotificationType_PEER_ADDED || n.GetAddress() != lis[i].Addr().String() ||
			n.GetName() != c.Topology().Nodes[i].FullName() {
			t.Fatalf("peer %d = %v", i, n)
		}
	}
	agent := observerpb.NewObserverClient(conn)
	waitFull(t, agent)
	flows, _ := collect(t, agent, &observerpb.GetFlowsRequest{})
	if len(flows) == 0 {
		t.Fatal("agent served no flows")
	}
	for _, f := range flows {
		if f.GetNodeName() != c.Topology().Nodes[1].FullName() {
			t.Fatalf("agent of node 1 served a flow of %s", f.GetNodeName())
		}
	}
}
