package importer

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	relaypb "github.com/cilium/cilium/api/v1/relay"
	v1 "github.com/cilium/cilium/pkg/hubble/api/v1"
	"github.com/cilium/cilium/pkg/hubble/exporter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/internal/observer"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/sim"
)

// incidentFlows are simulated flows of the incident scenario from its
// start: HTTP, gRPC, DNS, TCP and policy drops, across an hour boundary.
func incidentFlows(n int) []*flowpb.Flow {
	sc := sim.Scenarios["incident"]
	sc.IncidentAt = 0
	return sim.NewSource(sc, 7, 2000, time.Date(2026, 11, 25, 13, 59, 59, 500e6, time.UTC)).Take(n)
}

// writeExporterFiles runs Cilium's own flow exporter (the code behind
// hubble-export-file-path) with lumberjack rotation and gzip, and returns
// the files it left, and the events it was given as GetFlows responses.
func writeExporterFiles(t *testing.T, dir string, flows []*flowpb.Flow) ([]string, []*observerpb.GetFlowsResponse) {
	t.Helper()
	ex, err := exporter.NewExporter(slog.New(slog.DiscardHandler), exporter.WithNewWriterFunc(exporter.FileWriter(exporter.FileWriterConfig{
		Filename: filepath.Join(dir, "events.log"), MaxSize: 1, Compress: true})))
	if err != nil {
		t.Fatal(err)
	}
	var want []*observerpb.GetFlowsResponse
	ctx := context.Background()
	for i, f := range flows {
		if err := ex.Export(ctx, &v1.Event{Timestamp: f.GetTime(), Event: f}); err != nil {
			t.Fatal(err)
		}
		want = append(want, observer.FlowResponse(f))
		if i%500 == 250 {
			// The agent's perf ring overflowed here.
			lost := &flowpb.LostEvent{Source: flowpb.LostEventSource_PERF_EVENT_RING_BUFFER, NumEventsLost: uint64(i), Cpu: nil}
			if err := ex.Export(ctx, &v1.Event{Timestamp: f.GetTime(), Event: lost}); err != nil {
				t.Fatal(err)
			}
			// The exporter names lost events after the agent's node.
			want = append(want, nil)
		}
		if i == 100 {
			if err := ex.Export(ctx, &v1.Event{Timestamp: f.GetTime(), Event: &flowpb.AgentEvent{Type: flowpb.AgentEventType_AGENT_STARTED}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := ex.Stop(); err != nil {
		t.Fatal(err)
	}
	// lumberjack compresses rotated files in the background.
	var files []string
	testutil.Eventually(t, 30*time.Second, "the exporter compresses its rotated files", func() bool {
		files, _ = filepath.Glob(filepath.Join(dir, "events*"))
		for _, f := range files {
			if !strings.HasSuffix(f, ".gz") && filepath.Base(f) != "events.log" {
				return false
			}
		}
		return true
	})
	return files, want
}

// Exporter files, rotated and gzip'd by the real exporter, with DROPPED
// flows, lost events and an agent event.
func TestExporterFiles(t *testing.T) {
	flows := incidentFlows(3000)
	files, want := writeExporterFiles(t, t.TempDir(), flows)
	gz := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".gz") {
			gz++
		}
	}
	if len(files) < 2 || gz == 0 {
		t.Fatalf("exporter left %v; want a rotated, gzip'd set", files)
	}
	dir, res := importFiles(t, Options{Strict: true}, files...)
	got := exportLines(t, ExportOptions{Paths: []string{dir}})

	dropped := 0
	for _, f := range flows {
		if f.GetVerdict() == flowpb.Verdict_DROPPED {
			dropped++
		}
	}
	if dropped == 0 {
		t.Fatal("the scenario has no DROPPED flows; the test needs some")
	}
	k := kinds(got)
	lostLines := len(want) - len(flows)
	if k["flow"] != len(flows) || k["lost_events"] != lostLines {
		t.Fatalf("exported kinds %v; want %d flows and %d lost events", k, len(flows), lostLines)
	}
	gotDropped := 0
	var lostTotal uint64
	for _, r := range got {
		if r.GetFlow().GetVerdict() == flowpb.Verdict_DROPPED {
			gotDropped++
		}
		lostTotal += r.GetLostEvents().GetNumEventsLost()
	}
	if gotDropped != dropped {
		t.Errorf("%d DROPPED flows after the round trip, want %d", gotDropped, dropped)
	}
	if res.Session.Totals.LostEvents["PERF_EVENT_RING_BUFFER"] != lostTotal || lostTotal == 0 {
		t.Errorf("manifest lost events %v, exported %d", res.Session.Totals.LostEvents, lostTotal)
	}
	// Flows come back exactly, in time order.
	var wantFlows, gotFlows []*observerpb.GetFlowsResponse
	for _, r := range want {
		if r != nil {
			wantFlows = append(wantFlows, r)
		}
	}
	for _, r := range got {
		if r.GetFlow() != nil {
			gotFlows = append(gotFlows, r)
		}
	}
	testutil.SameMessages(t, "responses after import and export", gotFlows, byTime(wantFlows))

	// The agent event is kept in the recording, and left out of jsonpb,
	// which cannot hold it.
	var out bytes.Buffer
	st, err := Export(context.Background(), ExportOptions{Paths: []string{dir}}, &out)
	if err != nil || st.Skipped != 1 {
		t.Errorf("export skipped %d events (%v), want the 1 agent event", st.Skipped, err)
	}
	for _, sf := range res.Source.Files {
		if strings.HasSuffix(sf.Path, ".gz") != (sf.Compression == "gzip") || sf.Format != string(FormatJSONPB) {
			t.Errorf("source file %+v", sf)
		}
	}
}

// Node status lines as hubble-relay sends them in hubble observe -o jsonpb.
func TestNodeStatusLines(t *testing.T) {
	flows := incidentFlows(20)
	var lines []string
	var want []*observerpb.GetFlowsResponse
	add := func(r *observerpb.GetFlowsResponse) {
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
		want = append(want, r)
	}
	add(&observerpb.GetFlowsResponse{Time: timestamppb.New(flows[0].GetTime().AsTime().Add(-time.Millisecond)), ResponseTypes: &observerpb.GetFlowsResponse_NodeStatus{
		NodeStatus: &relaypb.NodeStatusEvent{StateChange: relaypb.NodeState_NODE_CONNECTED, NodeNames: []string{"node-a", "node-b"}}}})
	for _, f := range flows {
		add(observer.FlowResponse(f))
	}
	add(&observerpb.GetFlowsResponse{Time: timestamppb.New(flows[19].GetTime().AsTime().Add(time.Millisecond)), ResponseTypes: &observerpb.GetFlowsResponse_NodeStatus{
		NodeStatus: &relaypb.NodeStatusEvent{StateChange: relaypb.NodeState_NODE_UNAVAILABLE, NodeNames: []string{"node-b"}, Message: "connection refused"}}})
	path := filepath.Join(t.TempDir(), "observe.json")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir, res := importFiles(t, Options{Strict: true}, path)
	if res.Session.Totals.NodeStatusChanges != 2 {
		t.Errorf("node status changes %d, want 2", res.Session.Totals.NodeStatusChanges)
	}
	testutil.SameMessages(t, "responses after import and export", exportLines(t, ExportOptions{Paths: []string{dir}}), byTime(want))
}
