package analyze_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// The cases where what a file pairs and what the views pair across files
// meet: flows that come late, endpoints named otherwise by different
// flows, sessions that recorded the same flows, the writer's memory
// bounds. Each is compared with the oracle (oracle_test.go).

var edgeT0 = time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)

// edgeFlows numbers the flows' uuids.
type edgeFlows struct{ n int }

func (g *edgeFlows) uuid() string {
	g.n++
	return fmt.Sprintf("00000000-0000-0000-0000-%012d", g.n)
}

func podEndpoint(pod string) *flowpb.Endpoint {
	if pod == "" {
		return &flowpb.Endpoint{Identity: 2}
	}
	return &flowpb.Endpoint{Namespace: "default", PodName: pod, Identity: 1000, Labels: []string{"k8s:app=" + pod}}
}

// tcp is a TCP flow between two pods ("" for an endpoint without one).
func (g *edgeFlows) tcp(at time.Duration, node, sip string, sport uint32, dip string, dport uint32, syn, ack, reply bool, spod, dpod string) *flowpb.Flow {
	return &flowpb.Flow{Time: timestamppb.New(edgeT0.Add(at)), Uuid: g.uuid(), NodeName: node,
		Verdict: flowpb.Verdict_FORWARDED, Type: flowpb.FlowType_L3_L4,
		IP: &flowpb.IP{Source: sip, Destination: dip, IpVersion: flowpb.IPVersion_IPv4},
		L4: &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{SourcePort: sport, DestinationPort: dport,
			Flags: &flowpb.TCPFlags{SYN: syn, ACK: ack}}}},
		Source: podEndpoint(spod), Destination: podEndpoint(dpod), IsReply: wrapperspb.Bool(reply)}
}

// http is an HTTP flow an egress proxy reported, with X-Request-Id id.
func (g *edgeFlows) http(at time.Duration, typ flowpb.L7FlowType, id string, src, dst *flowpb.Endpoint, sip, dip string, sport, dport uint32) *flowpb.Flow {
	h := &flowpb.HTTP{Method: "GET", Url: "http://reviews:9080/r", Headers: []*flowpb.HTTPHeader{{Key: "X-Request-Id", Value: id}}}
	if typ == flowpb.L7FlowType_RESPONSE {
		h.Code = 200
	}
	return &flowpb.Flow{Time: timestamppb.New(edgeT0.Add(at)), Uuid: g.uuid(), NodeName: "a",
		Verdict: flowpb.Verdict_FORWARDED, Type: flowpb.FlowType_L7, TrafficDirection: flowpb.TrafficDirection_EGRESS,
		IP:     &flowpb.IP{Source: sip, Destination: dip, IpVersion: flowpb.IPVersion_IPv4},
		L4:     &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{SourcePort: sport, DestinationPort: dport}}},
		Source: src, Destination: dst,
		L7: &flowpb.Layer7{Type: typ, LatencyNs: 1000, Record: &flowpb.Layer7_Http{Http: h}}}
}

// sinkRecording writes flows through the recorder's sink (one session,
// connections carried from file to file), syncing live pieces every
// syncEvery flows (0: not live).
func sinkRecording(t *testing.T, dir string, o tape.SinkOptions, flows []*flowpb.Flow, syncEvery int) *tape.Sink {
	t.Helper()
	o.Dir, o.NotLive = dir, syncEvery == 0
	if o.RecordingID == "" {
		o.RecordingID = "rec"
	}
	sk, err := tape.NewSink(o)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range flows {
		if err := sk.WriteFlow(f); err != nil {
			t.Fatal(err)
		}
		if syncEvery > 0 && (i+1)%syncEvery == 0 {
			if err := sk.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if syncEvery > 0 {
		if err := sk.Sync(); err != nil {
			t.Fatal(err)
		}
		return sk
	}
	if err := sk.Close(); err != nil {
		t.Fatal(err)
	}
	return nil
}

// writeSession writes flows as one file of session id.
func writeSession(t *testing.T, dir, id string, flows []*flowpb.Flow) {
	t.Helper()
	at := flows[0].GetTime().AsTime()
	p := dir + "/flows/" + tape.Partition(at) + "/" + tape.FileName(at, id, 1)
	if err := tape.WriteFile(schema.Flows, p, flows, tape.WriterOptions{}); err != nil {
		t.Fatal(err)
	}
}

func simFlows(t *testing.T, span time.Duration) []*flowpb.Flow {
	t.Helper()
	var flows []*flowpb.Flow
	for _, r := range testutil.SimResponses(sim.Scenarios["incident"], 9, 300, edgeT0, edgeT0.Add(span)) {
		if f := r.GetFlow(); f != nil {
			flows = append(flows, f)
		}
	}
	return flows
}

// Flows that reach the recorder out of time order (a relay merging nodes,
// a node's clock behind another's): a row of a connection that starts
// before the file's row of it is of no attempt the writer can tell.
func TestDerivedMatchOracleOnLateFlows(t *testing.T) {
	t.Parallel() // beside TestClickHouseMatchesDuckDB: it changes no package state
	t.Run("SYN of another node", func(t *testing.T) {
		var g edgeFlows
		c, s := "10.0.0.1", "10.0.0.2"
		flows := []*flowpb.Flow{
			g.tcp(1*time.Millisecond, "a", c, 40000, s, 80, true, false, false, "client", "server"),
			g.tcp(2*time.Millisecond, "a", s, 80, c, 40000, true, true, true, "server", "client"),
			g.tcp(3*time.Millisecond, "a", c, 40000, s, 80, false, true, false, "client", "server"),
			// node b's clock is behind: its SYN comes in a later flush
			g.tcp(500*time.Microsecond, "b", c, 40000, s, 80, true, false, false, "client", "server"),
			g.tcp(10*time.Second, "a", c, 40001, s, 80, false, true, false, "client", "server"),
			g.tcp(10*time.Second, "a", c, 40001, s, 80, false, true, false, "client", "server"),
		}
		dir := t.TempDir()
		sinkRecording(t, dir, tape.SinkOptions{RowGroupRows: 2}, flows, 0)
		e := open(t, dir)
		res, err := e.Query(context.Background(), "SELECT count(*) FROM connections WHERE source_port = 40000")
		if err != nil {
			t.Fatal(err)
		}
		if n := res.Rows[0][0]; n != int64(1) {
			t.Errorf("%v connections of port 40000, want 1", n)
		}
		sameAsOracle(t, dir, []analyze.Params{{}})
	})
	t.Run("simulation reordered", func(t *testing.T) {
		flows := simFlows(t, 40*time.Second)
		// each block of 40 flows backwards
		for i := 0; i+40 < len(flows); i += 40 {
			for j := 0; j < 20; j++ {
				flows[i+j], flows[i+39-j] = flows[i+39-j], flows[i+j]
			}
		}
		dir := t.TempDir()
		sinkRecording(t, dir, tape.SinkOptions{RowGroupRows: 50, RotateRows: 700}, flows, 0)
		sameAsOracle(t, dir, oracleParams(edgeT0, 40*time.Second)[:4])
	})
}

// A live recording read mid-segment: the pieces' flows and derived rows.
func TestDerivedMatchOracleWhileRecording(t *testing.T) {
	dir := t.TempDir()
	sk := sinkRecording(t, dir, tape.SinkOptions{RowGroupRows: 97}, simFlows(t, 40*time.Second), 250)
	defer sk.Close()
	sameAsOracle(t, dir, oracleParams(edgeT0, 40*time.Second)[:4])
}

// The writer's bounds (open requests, connections remembered) change no
// answer: with them at a few rows, requests are written open early and
// connections are forgotten, and the views pair them alike.
func TestDerivedMatchOracleWithinBounds(t *testing.T) {
	flows := simFlows(t, 60*time.Second)
	count := func(dir, q string) int64 {
		t.Helper()
		res, err := open(t, dir).Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		return res.Rows[0][0].(int64)
	}
	unbounded := t.TempDir()
	sinkRecording(t, unbounded, tape.SinkOptions{RowGroupRows: 200, RotateRows: 1500}, flows, 0)

	defer func(r, c int, idle int64) { schema.MaxOpenRequests, schema.MaxConns, schema.ConnIdle = r, c, idle }(
		schema.MaxOpenRequests, schema.MaxConns, schema.ConnIdle)
	schema.MaxOpenRequests, schema.MaxConns, schema.ConnIdle = 3, 20, int64(2*time.Second)
	bounded := t.TempDir()
	sinkRecording(t, bounded, tape.SinkOptions{RowGroupRows: 200, RotateRows: 1500}, flows, 0)

	// The bounds were reached: more rows open, more of unknown attempt.
	for _, q := range []string{"SELECT count(*) FROM derived_requests WHERE open",
		"SELECT count(*) FROM derived_connections WHERE attempt IS NULL"} {
		if b, u := count(bounded, q), count(unbounded, q); b <= u {
			t.Errorf("%s: %d bounded, %d without bounds; want more", q, b, u)
		}
	}
	sameAsOracle(t, bounded, oracleParams(edgeT0, 60*time.Second)[:4])
}

// A connection across files whose first flows do not name the client's
// pod: each endpoint column from the first row that names one.
func TestDerivedMatchOracleOnEndpointsNamedLater(t *testing.T) {
	var g edgeFlows
	c, s := "10.0.0.1", "10.0.0.2"
	flows := []*flowpb.Flow{
		g.tcp(1*time.Millisecond, "a", c, 40000, s, 80, true, false, false, "", "server"),
		g.tcp(2*time.Millisecond, "a", s, 80, c, 40000, true, true, true, "server", ""),
		g.tcp(3*time.Millisecond, "a", c, 40000, s, 80, false, true, false, "client", "server"),
		g.tcp(4*time.Millisecond, "a", c, 40000, s, 80, false, true, false, "client", "server"),
		g.tcp(10*time.Second, "a", c, 40001, s, 80, false, true, false, "client", "server"),
		g.tcp(10*time.Second, "a", c, 40001, s, 80, false, true, false, "client", "server"),
	}
	dir := t.TempDir()
	sinkRecording(t, dir, tape.SinkOptions{RotateRows: 2}, flows, 0)
	sameAsOracle(t, dir, []analyze.Params{{}, {Level: "pod"}, {Namespace: "default"}})
}

// Requests whose flows name the same client and server otherwise: a
// response that names the server by its labels only, and a request ID
// answered by another replica of the server than the one first asked.
// Requests pair by the names the views give the endpoints.
func TestDerivedMatchOracleOnRequestsNamedOtherwise(t *testing.T) {
	var g edgeFlows
	client := &flowpb.Endpoint{Namespace: "default", PodName: "productpage-v1-6b746f74dc-ffh56", Identity: 1000, Labels: []string{"k8s:app=productpage"}}
	replica := func(pod string) *flowpb.Endpoint {
		return &flowpb.Endpoint{Namespace: "default", PodName: pod, Identity: 1001, Labels: []string{"k8s:app=reviews"}}
	}
	a, b := replica("reviews-v1-6b746f74dc-abcde"), replica("reviews-v1-6b746f74dc-fghjk")
	noPod := &flowpb.Endpoint{Namespace: "default", Identity: 1001, Labels: []string{"k8s:app=reviews"}}
	req, resp := flowpb.L7FlowType_REQUEST, flowpb.L7FlowType_RESPONSE
	flows := []*flowpb.Flow{
		g.http(0, req, "req-1", client, a, "10.0.0.1", "10.0.0.2", 40000, 9080),
		g.http(time.Millisecond, resp, "req-1", noPod, client, "10.0.0.2", "10.0.0.1", 9080, 40000),
		// asked replica a, answered by b (the same ID)
		g.http(2*time.Second, req, "req-2", client, a, "10.0.0.1", "10.0.0.2", 40002, 9080),
		g.http(3*time.Second, req, "req-2", client, b, "10.0.0.1", "10.0.0.3", 40003, 9080),
		g.http(3*time.Second+time.Millisecond, resp, "req-2", b, client, "10.0.0.3", "10.0.0.1", 9080, 40003),
		// a request never answered, to show the rest are
		g.http(4*time.Second, req, "req-3", client, a, "10.0.0.1", "10.0.0.2", 40004, 9080),
		g.http(10*time.Second, resp, "req-4", noPod, client, "10.0.0.2", "10.0.0.1", 9080, 40001),
	}
	for _, files := range []struct {
		name   string
		rotate int64
	}{{"one file", 0}, {"a file per flow", 1}} {
		t.Run(files.name, func(t *testing.T) {
			dir := t.TempDir()
			sinkRecording(t, dir, tape.SinkOptions{RotateRows: files.rotate}, flows, 0)
			res, err := open(t, dir).Query(context.Background(), "SELECT count(*) FROM requests WHERE no_response")
			if err != nil {
				t.Fatal(err)
			}
			if n := res.Rows[0][0]; n != int64(1) {
				t.Errorf("%v requests without response, want 1 (req-3)", n)
			}
			sameAsOracle(t, dir, []analyze.Params{{}, {Reporter: "client", Level: "pod"}})
		})
	}
}

// Two sessions that recorded the same minute: the service a workload is
// reached by counts each flow once.
func TestDerivedMatchOracleOnServicesOfTwoSessions(t *testing.T) {
	var g edgeFlows
	udp := func(at time.Duration, svc string) *flowpb.Flow {
		f := &flowpb.Flow{Time: timestamppb.New(edgeT0.Add(at)), Uuid: g.uuid(), NodeName: "a",
			Verdict: flowpb.Verdict_FORWARDED, Type: flowpb.FlowType_L3_L4,
			IP:          &flowpb.IP{Source: "10.0.0.1", Destination: "10.0.0.2", IpVersion: flowpb.IPVersion_IPv4},
			L4:          &flowpb.Layer4{Protocol: &flowpb.Layer4_UDP{UDP: &flowpb.UDP{SourcePort: 40000, DestinationPort: 53}}},
			Source:      podEndpoint("client"),
			Destination: podEndpoint("web"), IsReply: wrapperspb.Bool(false)}
		if svc != "" {
			f.DestinationService = &flowpb.Service{Name: svc, Namespace: "default"}
		}
		return f
	}
	var first, again []*flowpb.Flow
	for i := range 10 {
		first = append(first, udp(time.Duration(i)*time.Second, "svc-a"))
	}
	for i := range 6 {
		f := udp(time.Minute+time.Duration(i)*time.Second, "svc-b")
		first, again = append(first, f), append(again, f)
	}
	// web calls db: at level service, web is named by the service it serves
	for i := range 3 {
		f := udp(time.Duration(i)*time.Second+time.Millisecond, "")
		f.Source, f.Destination = podEndpoint("web"), podEndpoint("db")
		f.IP = &flowpb.IP{Source: "10.0.0.2", Destination: "10.0.0.3", IpVersion: flowpb.IPVersion_IPv4}
		first = append(first, f)
	}
	dir := t.TempDir()
	writeSession(t, dir, "first", first)
	writeSession(t, dir, "again", again)
	sameAsOracle(t, dir, []analyze.Params{{Level: "service"}})
}

// Rows of one connection at the same times, in files derived on their
// own (of no known attempt), belong to one attempt each: every flow is in
// exactly one connection, however the ties are ordered.
func TestConnectionsTiedRowsCountOnce(t *testing.T) {
	var g edgeFlows
	c, s := "10.0.0.1", "10.0.0.2"
	dir := t.TempDir()
	for i, f := range []*flowpb.Flow{
		g.tcp(0, "a", c, 40000, s, 80, true, false, false, "client", "server"),
		g.tcp(time.Millisecond, "a", s, 80, c, 40000, true, true, true, "server", "client"),
		g.tcp(5*time.Millisecond, "a", c, 40000, s, 80, false, true, false, "client", "server"),
		g.tcp(5*time.Millisecond, "b", c, 40000, s, 80, true, false, false, "client", "server"),
		g.tcp(5*time.Millisecond, "c", c, 40000, s, 80, true, false, false, "client", "server"),
	} {
		writeSession(t, dir, fmt.Sprintf("s%d", i), []*flowpb.Flow{f})
	}
	res, err := open(t, dir).Query(context.Background(), "SELECT sum(flows), count(*) FROM connections")
	if err != nil {
		t.Fatal(err)
	}
	if flows := res.Rows[0][0]; fmt.Sprint(flows) != "5" {
		t.Errorf("the connections hold %v flows (in %v connections), want each of the 5 once", flows, res.Rows[0][1])
	}
}
