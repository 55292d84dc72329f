package report_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/observer"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/report"
	"github.com/flowtape/flowtape/sim"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

var simStart = time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)

// simRecording writes a recording of the simulator's incident scenario:
// four minutes, the incident two minutes in.
func simRecording(t *testing.T) (dir string, incidentStart time.Time) {
	t.Helper()
	scen := sim.Scenarios["incident"]
	resps := testutil.SimResponses(scen, 7, 300, simStart, simStart.Add(4*time.Minute))
	dir = t.TempDir()
	testutil.WriteRecording(t, dir, "simincident", resps)
	return dir, simStart.Add(scen.IncidentAt)
}

func build(t *testing.T, dir string, o report.Options) *report.Report {
	t.Helper()
	ctx := context.Background()
	eng, err := analyze.Open(ctx, []string{dir}, analyze.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	r, err := report.Build(ctx, eng, []string{"incident-42"}, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func names(cs []report.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// The simulator's incident: the report finds when it began and what it
// changed, from the data alone, and with a baseline given.
func TestReportFindsTheSimulatedIncident(t *testing.T) {
	dir, truth := simRecording(t)
	for _, tc := range []struct {
		name string
		o    report.Options
	}{
		{"from the data", report.Options{}},
		{"10s buckets", report.Options{Bucket: 10 * time.Second}},
		{"with a baseline", report.Options{Baseline: &report.Window{Since: simStart, Until: simStart.Add(90 * time.Second)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := build(t, dir, tc.o)
			if r.Incident == nil {
				t.Fatal("no incident found")
			}
			if d := r.Incident.Start.Sub(truth); d < -r.Bucket || d > r.Bucket {
				t.Errorf("incident marked at %s, it began at %s: more than one %s bucket apart", r.Incident.Start, truth, r.Bucket)
			}
			if r.Changes == nil {
				t.Fatal("no comparison with the baseline")
			}
			top := names(r.Changes.Services)
			if len(top) > 6 {
				top = top[:6]
			}
			for _, want := range []string{"default/paymentservice", "default/cartservice"} {
				if !strings.Contains(strings.Join(top, " "), want) {
					t.Errorf("%s is not among the top changes %v", want, top)
				}
			}
			if !strings.Contains(strings.Join(names(r.Changes.NewDropReasons), " "), "POLICY_DEN") {
				t.Errorf("new drop reasons %v lack the deny policy's", r.Changes.NewDropReasons)
			}
			if !r.Summary.L7 || !r.Summary.Complete || r.Summary.Nodes != 3 {
				t.Errorf("summary = %+v, want L7, complete, 3 nodes", r.Summary)
			}
		})
	}
}

// A steady recording has no incident, and the report says so rather than
// marking noise.
func TestReportOfASteadyRecordingMarksNoIncident(t *testing.T) {
	resps := testutil.SimResponses(sim.Scenarios["steady"], 3, 300, simStart, simStart.Add(3*time.Minute))
	dir := t.TempDir()
	testutil.WriteRecording(t, dir, "steady", resps)
	r := build(t, dir, report.Options{})
	if r.Incident != nil {
		t.Errorf("incident marked in a steady recording: %+v", r.Incident)
	}
	var md bytes.Buffer
	if err := report.WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "Nothing to compare with") {
		t.Error("the report does not say there was nothing to compare with")
	}
	// Three minutes of 5s buckets: more than the table lists, and the
	// command that prints them all, ready to paste.
	want := fmt.Sprintf("`flowtape analyze timeline %s --bucket %s --since %s --until %s` prints every one", strings.Join(r.Recordings, " "), r.Bucket,
		r.Window.Since.UTC().Format(time.RFC3339Nano), r.Window.Until.UTC().Format(time.RFC3339Nano))
	if !strings.Contains(md.String(), want) {
		t.Errorf("the Markdown report lacks %q", want)
	}
}

// Events lost while recording make the report say loudly that its counts
// are lower bounds.
func TestReportWarnsOfAnIncompleteRecording(t *testing.T) {
	resps := testutil.LoadResponses(t, testutil.Testdata("samples", "basic-sample-400-tcp-flows.json"))
	lostAt := resps[len(resps)/2].GetTime()
	resps = append(resps, &observerpb.GetFlowsResponse{Time: lostAt, NodeName: "kind-control-plane",
		ResponseTypes: &observerpb.GetFlowsResponse_LostEvents{LostEvents: &flowpb.LostEvent{Source: flowpb.LostEventSource_HUBBLE_RING_BUFFER, NumEventsLost: 120}}})
	dir := t.TempDir()
	testutil.WriteRecording(t, dir, "lossy", resps)
	r := build(t, dir, report.Options{})
	if r.Summary.Complete || r.Summary.LostEvents != 120 {
		t.Fatalf("summary = %+v, want incomplete with 120 lost", r.Summary)
	}
	var html, md bytes.Buffer
	if err := report.WriteHTML(&html, r); err != nil {
		t.Fatal(err)
	}
	if err := report.WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]string{"HTML": html.String(), "Markdown": md.String()} {
		for _, want := range []string{"Incomplete recording", "120 events were lost (HUBBLE_RING_BUFFER=120)", "lower bounds"} {
			if !strings.Contains(doc, want) {
				t.Errorf("the %s report lacks %q", name, want)
			}
		}
	}
}

// The Markdown report over the real captures, as a golden file.
func TestMarkdownGolden(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteRecording(t, dir, "samples", testutil.SampleResponses(t))
	r := build(t, dir, report.Options{Title: "Postmortem: the real samples"})
	var buf bytes.Buffer
	if err := report.WriteMarkdown(&buf, r); err != nil {
		t.Fatal(err)
	}
	testutil.Golden(t, testutil.Testdata("golden", "report.md"), buf.Bytes(), *update, "go test ./report -run Golden -update")
}

// hostile are strings an attacker controls in flows: URLs, pod names,
// header values. A report shows them as text.
var hostile = []string{
	`<script>window.pwned = "script"</script>`,
	`"><img src=x onerror="window.pwned='img'">`,
	`javascript:window.pwned='href'`,
	"</text><script>window.pwned='svg'</script>",
	"`|*[x](javascript:window.pwned='md')",
}

// injectionRecording is the simulator's incident with hostile strings in
// the places flows carry text a report prints: pod and workload names
// (graph, tables), URLs (errors) and DNS names.
func injectionRecording(t *testing.T) string {
	t.Helper()
	src := sim.NewSource(sim.Scenarios["incident"], 5, 200, simStart)
	var resps []*observerpb.GetFlowsResponse
	i := 0
	for {
		f := src.Next()
		if f.GetTime().AsTime().After(simStart.Add(3 * time.Minute)) {
			break
		}
		i++
		if i%50 == 0 {
			f = proto.Clone(f).(*flowpb.Flow)
			bad := hostile[(i/50)%len(hostile)]
			if f.GetSource() != nil {
				f.Source.PodName = bad
				if len(f.Source.Workloads) > 0 {
					f.Source.Workloads[0].Name = bad
				}
			}
			if h := f.GetL7().GetHttp(); h != nil {
				h.Url = "http://frontend/" + bad
				h.Code = 503
			}
			if d := f.GetL7().GetDns(); d != nil {
				d.Query = bad
				d.Rcode = 3
			}
		}
		resps = append(resps, observer.FlowResponse(f))
	}
	// A drop whose policy and endpoints are hostile too.
	resps = append(resps, observer.FlowResponse(&flowpb.Flow{
		Time: timestamppb.New(simStart.Add(150 * time.Second)), NodeName: hostile[1], Verdict: flowpb.Verdict_DROPPED,
		DropReasonDesc: flowpb.DropReason_POLICY_DENIED,
		Source:         &flowpb.Endpoint{Namespace: hostile[0], PodName: hostile[3]},
		Destination:    &flowpb.Endpoint{Namespace: "default", PodName: hostile[1]},
		EgressDeniedBy: []*flowpb.Policy{{Name: hostile[0], Namespace: hostile[2]}},
	}))
	dir := t.TempDir()
	testutil.WriteRecording(t, dir, "hostile", resps)
	return dir
}

func TestHostileStringsStayText(t *testing.T) {
	r := build(t, injectionRecording(t), report.Options{})
	var html, md bytes.Buffer
	if err := report.WriteHTML(&html, r); err != nil {
		t.Fatal(err)
	}
	if err := report.WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{"<script>window", "<img", "</text><script>", "onerror=\"window"} {
		if strings.Contains(html.String(), raw) {
			t.Errorf("the HTML report holds %q unescaped", raw)
		}
	}
	// Markdown renderers pass HTML through: no tag may come from a flow.
	// (Quotes are harmless outside a tag.)
	for _, raw := range []string{"<script", "<img", "</text>"} {
		if strings.Contains(md.String(), raw) {
			t.Errorf("the Markdown report holds %q unescaped", raw)
		}
	}
	if link := regexp.MustCompile(`[^\\]\]\(javascript:`).FindString(md.String()); link != "" {
		t.Errorf("the Markdown report holds a link: %q", link)
	}
	if !strings.Contains(html.String(), "&lt;script&gt;window.pwned") {
		t.Error("the hostile strings are not in the HTML report at all: the test proves nothing")
	}
}
