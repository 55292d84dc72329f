package replay_test

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	relaypb "github.com/cilium/cilium/api/v1/relay"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/internal/observer"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/replay"
	"github.com/flowtape/flowtape/tape"
)

var t0 = time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func flow(when time.Time, node, ns string, verdict flowpb.Verdict) *observerpb.GetFlowsResponse {
	return observer.FlowResponse(&flowpb.Flow{Time: timestamppb.New(when), NodeName: node, Verdict: verdict,
		Type:   flowpb.FlowType_L3_L4,
		Source: &flowpb.Endpoint{Namespace: ns, PodName: "client-" + node}, Destination: &flowpb.Endpoint{Namespace: "db", PodName: "server"},
		IP: &flowpb.IP{Source: "10.0.0.1", Destination: "10.0.0.2"}})
}

// fixture is a recording of three nodes in two files that overlap in time:
// n1 (file a) and n2 (file b) send a flow every 100 ms for a minute, every
// tenth one dropped; n3 (file b) only in the first second. A lost event
// sits at 30.05 s. It returns the recording and its responses in time order.
func fixture(t *testing.T) (string, []*observerpb.GetFlowsResponse) {
	t.Helper()
	var a, b []*observerpb.GetFlowsResponse
	for i := 0; i < 600; i++ {
		v := flowpb.Verdict_FORWARDED
		if i%10 == 9 {
			v = flowpb.Verdict_DROPPED
		}
		a = append(a, flow(at(time.Duration(i)*100*time.Millisecond), "c/n1", "shop", v))
		b = append(b, flow(at(time.Duration(i)*100*time.Millisecond+50*time.Millisecond), "c/n2", "bank", v))
	}
	for i := 0; i < 5; i++ {
		b = append(b, flow(at(time.Duration(i)*200*time.Millisecond+10*time.Millisecond), "c/n3", "shop", flowpb.Verdict_FORWARDED))
	}
	slices.SortStableFunc(b, byTime)
	lost := &observerpb.GetFlowsResponse{Time: timestamppb.New(at(30*time.Second + 75*time.Millisecond)), NodeName: "c/n1",
		ResponseTypes: &observerpb.GetFlowsResponse_LostEvents{LostEvents: &flowpb.LostEvent{
			Source: flowpb.LostEventSource_PERF_EVENT_RING_BUFFER, NumEventsLost: 7}}}
	dir := t.TempDir()
	testutil.WriteRecording(t, dir, "a", append(a, lost))
	testutil.WriteRecording(t, dir, "b", b)
	all := append(append(append([]*observerpb.GetFlowsResponse{}, a...), b...), lost)
	slices.SortStableFunc(all, byTime)
	return dir, all
}

func byTime(x, y *observerpb.GetFlowsResponse) int {
	return cmp.Compare(x.GetTime().AsTime().UnixNano(), y.GetTime().AsTime().UnixNano())
}

// serve starts a replay server over dir on loopback and returns a client.
func serve(t *testing.T, dir string, opts replay.Options) observerpb.ObserverClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := replay.New(ctx, []string{dir}, opts)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return observerpb.NewObserverClient(conn)
}

func getFlows(t *testing.T, c observerpb.ObserverClient, req *observerpb.GetFlowsRequest) ([]*observerpb.GetFlowsResponse, error) {
	t.Helper()
	stream, err := c.GetFlows(context.Background(), req)
	if err != nil {
		return nil, err
	}
	var out []*observerpb.GetFlowsResponse
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
}

// perNode keeps, of the flows of rs, those keep says (given the flow's
// index among its node's flows and the node's count), and every event
// between the first and last flow kept.
func perNode(rs []*observerpb.GetFlowsResponse, keep func(i, n int) bool) []*observerpb.GetFlowsResponse {
	count := map[string]int{}
	for _, r := range rs {
		if r.GetFlow() != nil {
			count[r.GetNodeName()]++
		}
	}
	seen := map[string]int{}
	var kept []*observerpb.GetFlowsResponse
	for _, r := range rs {
		if r.GetFlow() == nil {
			kept = append(kept, r)
			continue
		}
		n := r.GetNodeName()
		if keep(seen[n], count[n]) {
			kept = append(kept, r)
		}
		seen[n]++
	}
	// Events outside the flows kept are not part of the answer.
	first, last := -1, -1
	for i, r := range kept {
		if r.GetFlow() != nil {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return nil
	}
	return kept[first : last+1]
}

func within(rs []*observerpb.GetFlowsResponse, since, until time.Time) []*observerpb.GetFlowsResponse {
	var out []*observerpb.GetFlowsResponse
	for _, r := range rs {
		ts := r.GetTime().AsTime()
		if !ts.Before(since) && !ts.After(until) {
			out = append(out, r)
		}
	}
	return out
}

func flowsOnly(rs []*observerpb.GetFlowsResponse, pred func(*flowpb.Flow) bool) []*observerpb.GetFlowsResponse {
	var out []*observerpb.GetFlowsResponse
	for _, r := range rs {
		if r.GetFlow() == nil || pred(r.GetFlow()) {
			out = append(out, r)
		}
	}
	return out
}

func TestGetFlowsAnswersAsARelayOverTheRecordedNodes(t *testing.T) {
	dir, all := fixture(t)
	c := serve(t, dir, replay.Options{})
	ts := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(at(d)) }
	for _, tc := range []struct {
		name string
		req  *observerpb.GetFlowsRequest
		want []*observerpb.GetFlowsResponse
	}{
		{"all (hubble observe --all)", &observerpb.GetFlowsRequest{Number: ^uint64(0)}, all},
		{"number 0 is all", &observerpb.GetFlowsRequest{}, all},
		{"first 3 per node", &observerpb.GetFlowsRequest{Number: 3, First: true},
			perNode(all, func(i, _ int) bool { return i < 3 })},
		// n3 has flows only in the first second: its last 4 are found by
		// widening the tail searched to the whole minute.
		{"last 4 per node", &observerpb.GetFlowsRequest{Number: 4},
			perNode(all, func(i, n int) bool { return i >= n-4 })},
		{"last 2 per node up to until", &observerpb.GetFlowsRequest{Number: 2, Until: ts(20 * time.Second)},
			perNode(within(all, t0, at(20*time.Second)), func(i, n int) bool { return i >= n-2 })},
		{"since and until, both inclusive", &observerpb.GetFlowsRequest{Since: ts(10 * time.Second), Until: ts(20*time.Second + 50*time.Millisecond)},
			within(all, at(10*time.Second), at(20*time.Second+50*time.Millisecond))},
		// Since takes precedence over number, as in Hubble: the first N
		// from since.
		{"since with number", &observerpb.GetFlowsRequest{Since: ts(30 * time.Second), Number: 5},
			perNode(within(all, at(30*time.Second), at(time.Hour)), func(i, _ int) bool { return i < 5 })},
		{"allowlist", &observerpb.GetFlowsRequest{Number: ^uint64(0), Whitelist: []*flowpb.FlowFilter{{Verdict: []flowpb.Verdict{flowpb.Verdict_DROPPED}}}},
			flowsOnly(all, func(f *flowpb.Flow) bool { return f.GetVerdict() == flowpb.Verdict_DROPPED })},
		{"denylist", &observerpb.GetFlowsRequest{Number: ^uint64(0), Blacklist: []*flowpb.FlowFilter{{SourcePod: []string{"bank/"}}}},
			flowsOnly(all, func(f *flowpb.Flow) bool { return f.GetSource().GetNamespace() != "bank" })},
		{"until before since", &observerpb.GetFlowsRequest{Since: ts(20 * time.Second), Until: ts(10 * time.Second)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := getFlows(t, c, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 || got[0].GetNodeStatus().GetStateChange() != relaypb.NodeState_NODE_CONNECTED ||
				!slices.Equal(got[0].GetNodeStatus().GetNodeNames(), []string{"c/n1", "c/n2", "c/n3"}) {
				t.Fatalf("first response is not the relay's NODE_CONNECTED for the 3 nodes: %v", got[:min(1, len(got))])
			}
			got = got[1:]
			testutil.SameMessages(t, "responses", got, tc.want)
		})
	}
}

func TestGetFlowsFieldMask(t *testing.T) {
	dir, all := fixture(t)
	c := serve(t, dir, replay.Options{})
	got, err := getFlows(t, c, &observerpb.GetFlowsRequest{Number: 3, First: true,
		FieldMask: &fieldmaskpb.FieldMask{Paths: []string{"time", "verdict", "source.namespace"}}})
	if err != nil {
		t.Fatal(err)
	}
	var flows []*observerpb.GetFlowsResponse
	for _, r := range got {
		if r.GetFlow() != nil {
			flows = append(flows, r)
		}
	}
	if len(flows) != 9 {
		t.Fatalf("got %d flows, want 9", len(flows))
	}
	for i, r := range flows {
		f, orig := r.GetFlow(), all[0].GetFlow()
		for _, o := range all {
			if o.GetFlow() != nil && o.GetTime().AsTime().Equal(r.GetTime().AsTime()) {
				orig = o.GetFlow()
			}
		}
		want := &flowpb.Flow{Time: orig.GetTime(), Verdict: orig.GetVerdict(), Source: &flowpb.Endpoint{Namespace: orig.GetSource().GetNamespace()}}
		if !proto.Equal(f, want) {
			t.Errorf("flow %d with mask time,verdict,source.namespace:\n got %v\nwant %v", i, f, want)
		}
	}
}

func TestGetFlowsRefusesBadRequests(t *testing.T) {
	dir, _ := fixture(t)
	c := serve(t, dir, replay.Options{})
	for _, tc := range []struct {
		name string
		req  *observerpb.GetFlowsRequest
	}{
		{"first with follow", &observerpb.GetFlowsRequest{First: true, Follow: true, Number: 1}},
		{"bad field mask", &observerpb.GetFlowsRequest{FieldMask: &fieldmaskpb.FieldMask{Paths: []string{"no_such_field"}}}},
		{"bad filter", &observerpb.GetFlowsRequest{Whitelist: []*flowpb.FlowFilter{{SourceIp: []string{"not-an-ip/99"}}}}},
		{"bad time", &observerpb.GetFlowsRequest{Since: &timestamppb.Timestamp{Nanos: -1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := getFlows(t, c, tc.req)
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("got %v, want InvalidArgument", err)
			}
		})
	}
}

func TestStatusNodesAndNamespacesDescribeTheRecording(t *testing.T) {
	dir, _ := fixture(t)
	c := serve(t, dir, replay.Options{})
	ctx := context.Background()
	st, err := c.ServerStatus(ctx, &observerpb.ServerStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetNumFlows() != 1205 || st.GetMaxFlows() != 1205 || st.GetSeenFlows() != 1212 || st.GetNumConnectedNodes().GetValue() != 3 {
		t.Errorf("ServerStatus = %v, want 1205 flows, 1212 seen (7 lost), 3 nodes", st)
	}
	nodes, err := c.GetNodes(ctx, &observerpb.GetNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range nodes.GetNodes() {
		got = append(got, n.GetName()+"="+time.Duration(n.GetUptimeNs()).String()+"/"+
			map[bool]string{true: "connected"}[n.GetState() == relaypb.NodeState_NODE_CONNECTED]+"/"+strconv.FormatUint(n.GetNumFlows(), 10))
	}
	want := []string{"c/n1=59.9s/connected/600", "c/n2=59.9s/connected/600", "c/n3=800ms/connected/5"}
	if !slices.Equal(got, want) {
		t.Errorf("GetNodes = %v, want %v", got, want)
	}
	ns, err := c.GetNamespaces(ctx, &observerpb.GetNamespacesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range ns.GetNamespaces() {
		names = append(names, n.GetNamespace())
	}
	if !slices.Equal(names, []string{"bank", "db", "shop"}) {
		t.Errorf("GetNamespaces = %v, want bank, db, shop", names)
	}
}

// fakeClock is a simulated clock: sleeping moves it forward at once.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps int
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.sleeps++
	return nil
}

// Following replays at the recorded pace times the speed: with the flows
// stamped with the (simulated) time they are sent, their spacing is the
// recorded spacing divided by the speed.
func TestFollowKeepsTheRecordedPace(t *testing.T) {
	dir, all := fixture(t)
	for _, speed := range []float64{1, 10} {
		clock := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
		start := clock.Now()
		c := serve(t, dir, replay.Options{Speed: speed, ShiftToNow: true, Clock: clock})
		got, err := getFlows(t, c, &observerpb.GetFlowsRequest{Follow: true, Since: timestamppb.New(at(10 * time.Second)),
			Until: timestamppb.New(at(20 * time.Second))})
		if err != nil {
			t.Fatal(err)
		}
		want := within(all, at(10*time.Second), at(20*time.Second))
		got = got[1:] // NODE_CONNECTED
		if len(got) != len(want) {
			t.Fatalf("speed %g: got %d responses, want %d", speed, len(got), len(want))
		}
		for i := range got {
			sent := got[i].GetTime().AsTime().Sub(start)
			due := time.Duration(float64(want[i].GetTime().AsTime().Sub(at(10*time.Second))) / speed)
			if d := sent - due; d < -time.Millisecond || d > time.Millisecond {
				t.Fatalf("speed %g: response %d sent at +%v, due at +%v", speed, i, sent, due)
			}
			if f := got[i].GetFlow(); f != nil && !f.GetTime().AsTime().Equal(got[i].GetTime().AsTime()) {
				t.Fatalf("speed %g: flow time %v differs from its response's %v", speed, f.GetTime().AsTime(), got[i].GetTime().AsTime())
			}
		}
		if clock.sleeps < len(want)/2 {
			t.Errorf("speed %g: %d sleeps for %d flows", speed, clock.sleeps, len(want))
		}
	}
}

// At speed max, following sends the rest of the recording at once, with the
// recorded times, and ends with it.
func TestFollowAtMaxSpeed(t *testing.T) {
	dir, all := fixture(t)
	clock := &fakeClock{now: t0}
	c := serve(t, dir, replay.Options{Clock: clock})
	got, err := getFlows(t, c, &observerpb.GetFlowsRequest{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	got = got[1:]
	if clock.sleeps != 0 {
		t.Fatalf("%d sleeps, want none", clock.sleeps)
	}
	testutil.SameMessages(t, "responses", got, all)
}

// A damaged flow file fails the requests that read it, as gRPC's DataLoss
// naming the file, and the server serves on: arrow-go panics on some
// damaged pages and footers (tape/damaged.go), which ended the server and
// every client's stream.
func TestGetFlowsOfADamagedFile(t *testing.T) {
	dir, _ := fixture(t)
	files, err := tape.FindFiles(dir)
	if err != nil || len(files.Flows) != 2 {
		t.Fatalf("flow files: %v, %v", files.Flows, err)
	}
	damaged := files.Flows[1]
	// a column the catalog does not read: the server starts
	testutil.DamagePageHeader(t, damaged, "verdict")
	c := serve(t, dir, replay.Options{})
	for range 2 {
		_, err := getFlows(t, c, &observerpb.GetFlowsRequest{})
		if status.Code(err) != codes.DataLoss || !strings.Contains(err.Error(), damaged) || !strings.Contains(err.Error(), "a damaged page (arrow-go: ") {
			t.Fatalf("GetFlows: %v, want DataLoss naming %s, from arrow-go's panic", err, damaged)
		}
	}
	st, err := c.ServerStatus(context.Background(), &observerpb.ServerStatusRequest{})
	if err != nil || st.GetNumFlows() == 0 {
		t.Fatalf("the server after the damaged file: %v, %v", st, err)
	}
	// a footer damaged while it serves (the files are listed again for
	// each request): arrow-go panics on some as it opens the file
	testutil.DamageFooter(t, files.Flows[0])
	_, err = getFlows(t, c, &observerpb.GetFlowsRequest{})
	if status.Code(err) != codes.DataLoss || !strings.Contains(err.Error(), files.Flows[0]) {
		t.Fatalf("GetFlows: %v, want DataLoss naming %s", err, files.Flows[0])
	}
	if _, err := c.ServerStatus(context.Background(), &observerpb.ServerStatusRequest{}); err != nil {
		t.Fatalf("the server after the damaged footer: %v", err)
	}
}
