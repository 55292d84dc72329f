package analyze_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/printer"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// summariesMatch runs services, graph, timeline, errors and slo on the exact
// path and on the summaries (a new engine each: the path is chosen before
// the views are set up) under each of ps: every count equal, the
// percentiles within the sketch's relative error, max exact; errors as
// the exact path gives them --by edge.
func summariesMatch(t *testing.T, dir string, ps []analyze.Params) {
	t.Helper()
	ctx := context.Background()
	for _, p := range ps {
		for _, name := range []string{"services", "graph", "timeline", "errors", "slo"} {
			if name == "graph" && p.Level == "pod" || (name == "timeline" || name == "slo") && p.Bucket%time.Minute != 0 ||
				name == "slo" && (p.Level == "pod" || p.Bucket > 5*time.Minute) || name != "slo" && p.Level == "edge" {
				continue
			}
			exact, summary := p, p
			exact.Summaries, summary.Summaries = analyze.SummariesNever, analyze.SummariesAlways
			if name == "errors" {
				exact.By = "edge"
			}
			want, err := open(t, dir).Run(ctx, name, exact)
			if err != nil {
				t.Fatalf("%s %+v exact: %v", name, p, err)
			}
			e := open(t, dir)
			got, err := e.Run(ctx, name, summary)
			if err != nil {
				t.Fatalf("%s %+v on the summaries: %v", name, p, err)
			}
			if !strings.Contains(e.PathNote, "summaries") {
				t.Errorf("%s %+v: no note of the summary path (%q)", name, p, e.PathNote)
			}
			if len(want.Rows) == 0 && name != "errors" && (name != "slo" || strings.Contains(t.Name(), "many_files")) {
				// (a recording may have no failure: both lists empty; a
				// sample no request or connection to judge)
				t.Fatalf("%s %+v: no rows to compare", name, p)
			}
			if d := summaryDiff(got, want); d != "" {
				t.Errorf("%s %+v: the summaries differ from the exact path (%d and %d rows): %s", name, p, len(got.Rows), len(want.Rows), d)
			}
		}
	}
}

// summaryDiff says where a summary result differs from the exact one
// beyond what the sketch allows.
func summaryDiff(got, want printer.Table) string {
	if strings.Join(got.Columns, ",") != strings.Join(want.Columns, ",") {
		return fmt.Sprintf("columns %v, want %v", got.Columns, want.Columns)
	}
	if len(got.Rows) != len(want.Rows) {
		return fmt.Sprintf("%d rows, want %d", len(got.Rows), len(want.Rows))
	}
	var diffs []string
	for i := range want.Rows {
		for j, c := range want.Columns {
			g, w := got.Rows[i][j], want.Rows[i][j]
			if strings.HasSuffix(c, "_ms") && c != "max_ms" && g != nil && w != nil {
				gf, wf := g.(float64), w.(float64)
				if math.Abs(gf-wf) > schema.SketchRelativeError*wf+1e-9 {
					diffs = append(diffs, fmt.Sprintf("row %d %s: %v, want %v within %.0f%%", i, c, g, w, schema.SketchRelativeError*100))
				}
				continue
			}
			if fmt.Sprint(g) != fmt.Sprint(w) {
				diffs = append(diffs, fmt.Sprintf("row %d (%v) %s: %v, want %v", i, want.Rows[i][0], c, g, w))
			}
		}
	}
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("and %d more", len(diffs)-5))
	}
	return strings.Join(diffs, "; ")
}

// The summary path counts what the exact path counts, over the
// simulator's incident written in many files (requests answered and
// connections continued in the next file, pods renamed), with the
// writer's bounds at a few rows (requests written open, connections
// forgotten), while it is still being written (pieces), and over every
// real sample; latency percentiles within 1% of the exact (nearest-rank,
// the simulator's truth as recorded).
func TestSummaryMatchesExact(t *testing.T) {
	flows := simFlows(t, 3*time.Minute)
	minutes := []analyze.Params{
		{},
		{Reporter: "client"},
		{Reporter: "both", Level: "service"},
		{Namespace: "default"},
		// whole minutes: the summaries' grain
		{Since: edgeT0.Add(time.Minute), Until: edgeT0.Add(2*time.Minute - time.Nanosecond)},
	}
	t.Run("many files", func(t *testing.T) {
		dir := t.TempDir()
		sinkRecording(t, dir, tape.SinkOptions{RowGroupRows: 500, RotateRows: 5000}, flows, 0)
		e := open(t, dir)
		for _, q := range []string{
			"SELECT count(*) FROM derived_connections WHERE NOT opens AND NOT unchanged",
			// rows the summary path leaves unread (with drop reasons, and
			// without: errors reads the first kind)
			"SELECT count(*) FROM derived_connections WHERE unchanged AND drop_reasons IS NULL",
			"SELECT count(*) FROM derived_connections WHERE unchanged AND drop_reasons IS NOT NULL",
			"SELECT count(*) FROM derived_requests WHERE open OR seen_by_server IS NULL",
		} {
			if n := count(t, e, q); n == 0 {
				t.Fatalf("%s: 0; the fixture must leave the summaries something to settle", q)
			}
		}
		// slo's edges and a latency SLI (no latency of this fixture lies
		// within the sketch's 1% of 100ms, so the counts are equal)
		summariesMatch(t, dir, []analyze.Params{minutes[0], minutes[2], minutes[3], minutes[4],
			{Level: "edge", Latency: 100 * time.Millisecond, Objective: 99.5}})
	})
	t.Run("within bounds", func(t *testing.T) {
		defer func(r, c int, idle int64) { schema.MaxOpenRequests, schema.MaxConns, schema.ConnIdle = r, c, idle }(
			schema.MaxOpenRequests, schema.MaxConns, schema.ConnIdle)
		schema.MaxOpenRequests, schema.MaxConns, schema.ConnIdle = 3, 20, int64(2*time.Second)
		dir := t.TempDir()
		sinkRecording(t, dir, tape.SinkOptions{RowGroupRows: 200, RotateRows: 5000}, flows, 0)
		summariesMatch(t, dir, minutes[:1])
	})
	t.Run("while recording", func(t *testing.T) {
		dir := t.TempDir()
		sk := sinkRecording(t, dir, tape.SinkOptions{RowGroupRows: 97}, flows[:len(flows)/2], 1000)
		defer sk.Close()
		summariesMatch(t, dir, minutes[:1])
	})
	t.Run("hours", func(t *testing.T) {
		// Two hours and a half: the hours the window covers whole are read
		// from the summaries' hour rows, the rest from minute rows.
		long := steadyFlows(edgeT0.Add(20*time.Minute), 140*time.Minute, 3)
		dir := t.TempDir()
		sinkRecording(t, dir, tape.SinkOptions{RowGroupRows: 1000, RotateRows: 7000}, long, 0)
		summariesMatch(t, dir, []analyze.Params{{}, {Since: edgeT0.Add(30 * time.Minute), Until: edgeT0.Add(150*time.Minute - time.Nanosecond)},
			{Bucket: time.Hour}, {Bucket: 5 * time.Minute, Namespace: "default"}})
	})
	t.Run("connections continued in the next file", func(t *testing.T) {
		// L4 only, so errors lists how each connection failed: the
		// summary path leaves unread the connections whose later rows
		// change nothing the summary counted (unchanged), and must read
		// the others, and for errors those whose later rows add drop
		// reasons (POLICY_DENIED=4, not the first file's =2).
		flows, rotate := retriedConnections(edgeT0)
		dir := t.TempDir()
		sinkRecording(t, dir, tape.SinkOptions{RotateRows: int64(rotate)}, flows, 0)
		e := open(t, dir)
		for q, want := range map[string]int64{
			"SELECT count(*) FROM derived_connections WHERE unchanged AND drop_reasons IS NOT NULL": 2, // the retried SYN
			"SELECT count(*) FROM derived_connections WHERE unchanged AND drop_reasons IS NULL":     2, // the kept-alive one
			// answered late (and its next row), reset
			"SELECT count(*) FROM derived_connections WHERE NOT opens AND NOT unchanged": 3,
		} {
			if n := count(t, e, q); n != want {
				t.Fatalf("%s: %d, want %d", q, n, want)
			}
		}
		summariesMatch(t, dir, minutes[:1])
		// Without the middle file (not given, or removed), the third
		// file's row of the connection answered in the second joins the
		// opening row alone: answered by the third's ACK on the exact
		// path, and so on the summary path, which must read it.
		middle, err := filepath.Glob(filepath.Join(dir, "*", "*", "*", "*-000002.parquet"))
		if err != nil || len(middle) < 5 {
			t.Fatalf("the middle file's flow and derived files: %v (%v)", middle, err)
		}
		for _, p := range middle {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
		summariesMatch(t, dir, minutes[:1])
		// Retention removes the first file, with the rows that opened the
		// attempts: the exact path counts the retried SYN from the later
		// rows, and so must the summary path.
		d, err := tape.OpenDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		_, usage, err := d.Expire(tape.Retention{}, edgeT0, 0)
		if err != nil {
			t.Fatal(err)
		}
		expired, _, err := d.Expire(tape.Retention{MaxBytes: usage.Bytes - 1}, edgeT0, 0)
		d.Close()
		if err != nil {
			t.Fatal(err)
		}
		if expired.Flows != int64(rotate) {
			t.Fatalf("retention removed %d flows, want the first file's %d", expired.Flows, rotate)
		}
		summariesMatch(t, dir, minutes[:1])
	})
	t.Run("samples", func(t *testing.T) {
		for i, in := range sampleFiles() {
			dir := t.TempDir()
			testutil.WriteRecording(t, dir, "sample", testutil.LoadResponses(t, in))
			if n := count(t, open(t, dir), "SELECT count(*) FROM flows"); n < 20 {
				continue // too few flows to say anything
			}
			t.Run(fmt.Sprint(i), func(t *testing.T) { summariesMatch(t, dir, minutes[:2]) })
		}
	})
}

// --summaries auto reads the summaries over windows longer than an hour,
// and says so; never and always force either path; what the summaries
// cannot answer is a one-line error with always, the exact path with auto.
func TestSummaryPathChoice(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	testutil.WriteRecording(t, dir, "long", testutil.SimResponses(sim.Scenarios["steady"], 3, 2, start, start.Add(70*time.Minute)))
	run := func(name string, p analyze.Params) (string, error) {
		e := open(t, dir)
		_, err := e.Run(ctx, name, p)
		return e.PathNote, err
	}
	for _, tc := range []struct {
		name     string
		analysis string
		p        analyze.Params
		summary  bool
		err      string
	}{
		{"auto over 70 minutes", "services", analyze.Params{}, true, ""},
		{"auto over 10 minutes", "services", analyze.Params{Since: start, Until: start.Add(10 * time.Minute)}, false, ""},
		{"never", "services", analyze.Params{Summaries: analyze.SummariesNever}, false, ""},
		{"always over 10 minutes", "services", analyze.Params{Summaries: analyze.SummariesAlways, Until: start.Add(10 * time.Minute)}, true, ""},
		{"graph", "graph", analyze.Params{}, true, ""},
		{"graph at pod level", "graph", analyze.Params{Level: "pod"}, false, ""},
		{"always at pod level", "graph", analyze.Params{Level: "pod", Summaries: analyze.SummariesAlways}, false, "--level pod"},
		{"timeline", "timeline", analyze.Params{Bucket: 5 * time.Minute}, true, ""},
		{"timeline of 10s buckets", "timeline", analyze.Params{Bucket: 10 * time.Second}, false, ""},
		{"errors", "errors", analyze.Params{}, true, ""},
		{"errors by path", "errors", analyze.Params{By: "path"}, false, ""},
		{"always errors by path", "errors", analyze.Params{By: "path", Summaries: analyze.SummariesAlways}, false, "--by path"},
		{"drops", "drops", analyze.Params{}, false, ""},
		{"always drops", "drops", analyze.Params{Summaries: analyze.SummariesAlways}, false, "drops has no summary path"},
		{"bad by", "errors", analyze.Params{By: "url"}, false, `--by "url"`},
		{"bad mode", "services", analyze.Params{Summaries: "sometimes"}, false, `--summaries "sometimes"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			note, err := run(tc.analysis, tc.p)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %v, want one line with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := note != ""; got != tc.summary {
				t.Errorf("summary path %v (note %q), want %v", got, note, tc.summary)
			}
		})
	}
	// The window is rounded out to whole minutes, and the note says so.
	note, err := run("services", analyze.Params{Summaries: analyze.SummariesAlways, Since: start.Add(90 * time.Second)})
	if err != nil || !strings.Contains(note, "rounded to whole minutes: 2026-11-25T13:01:00Z") {
		t.Errorf("note %q, err %v: want the window rounded to 13:01", note, err)
	}
}

// Two sessions that recorded the same node's flows (a restarted recorder
// that resumed early): the summaries would count them twice, so auto
// reads every request, and always refuses.
func TestSummaryRefusesOverlappingSessions(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	resps := testutil.SimResponses(sim.Scenarios["incident"], 7, 20, start, start.Add(3*time.Minute))
	testutil.WriteRecording(t, dir, "first", resps[:len(resps)*6/10])
	testutil.WriteRecording(t, dir, "second", resps[len(resps)*4/10:])
	_, err := open(t, dir).Run(context.Background(), "services", analyze.Params{Summaries: analyze.SummariesAlways})
	if err == nil || !strings.Contains(err.Error(), "same node's flows") {
		t.Fatalf("error %v, want a refusal naming the overlap", err)
	}
}

// A day's rollup (flowtape compact) holds the same rows as its summary
// files: the summary path answers alike with and without it, reads it
// instead of them, and leaves a stale one (its files changed) alone.
func TestRollupMatchesSummaries(t *testing.T) {
	ctx := context.Background()
	start := edgeT0.Add(20 * time.Minute)
	long := steadyFlows(start, 100*time.Minute, 2)
	dir := t.TempDir()
	sinkRecording(t, dir, tape.SinkOptions{RowGroupRows: 1000, RotateRows: 4000}, long, 0)
	run := func() (printer.Table, *analyze.Engine) {
		e := open(t, dir)
		res, err := e.Run(ctx, "services", analyze.Params{Summaries: analyze.SummariesAlways})
		if err != nil {
			t.Fatal(err)
		}
		return res, e
	}
	before, _ := run()
	st, err := analyze.Rollup(ctx, dir, edgeT0.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if st.Written != 1 || st.Files < 2 {
		t.Fatalf("rolled up %+v, want one day of several files", st)
	}
	after, e := run()
	if d := summaryDiff(after, before); d != "" || len(after.Rows) == 0 {
		t.Errorf("with the rollup: %s", d)
	}
	if n := count(t, e, "SELECT count(DISTINCT filename) FROM read_parquet('"+dir+"/rollup/*/*.parquet', filename = true)"); n != 1 {
		t.Errorf("%d rollup files", n)
	}
	// a window that cuts hours: their minutes from the rolled-up files
	cut := analyze.Params{Since: start.Add(30 * time.Minute), Until: start.Add(80*time.Minute - time.Nanosecond)}
	for _, name := range []string{"services", "graph", "timeline"} {
		exact, summary := cut, cut
		exact.Summaries, summary.Summaries = analyze.SummariesNever, analyze.SummariesAlways
		want, err := open(t, dir).Run(ctx, name, exact)
		if err != nil {
			t.Fatal(err)
		}
		got, err := open(t, dir).Run(ctx, name, summary)
		if err != nil {
			t.Fatal(err)
		}
		if d := summaryDiff(got, want); d != "" || len(want.Rows) == 0 {
			t.Errorf("%s of a window that cuts hours, with the rollup: %s", name, d)
		}
	}
	// a second compact writes nothing; nor one before the day is over
	if st, err := analyze.Rollup(ctx, dir, edgeT0.Add(48*time.Hour)); err != nil || st.Written != 0 {
		t.Errorf("again: %+v, %v", st, err)
	}
	if st, err := analyze.Rollup(ctx, dir, start); err != nil || st.Days != 0 {
		t.Errorf("on the day itself: %+v, %v", st, err)
	}
	// a recording made before summaries (a file without one): the day is
	// left to its files, and compact goes on
	old := t.TempDir()
	sinkRecording(t, old, tape.SinkOptions{RotateRows: 4000}, long[:9000], 0)
	sums, _ := filepath.Glob(filepath.Join(old, "summary", "*", "*", "*.parquet"))
	if len(sums) < 2 {
		t.Fatalf("%d summary files", len(sums))
	}
	if err := os.Remove(sums[0]); err != nil {
		t.Fatal(err)
	}
	if st, err := analyze.Rollup(ctx, old, edgeT0.Add(48*time.Hour)); err != nil || st.Written != 0 {
		t.Errorf("a day with a file without its summary: %+v, %v", st, err)
	}
	// its files changed (compacted): not used, the same answer from the files
	if st, err := tape.Compact(ctx, dir, tape.CompactOptions{Writer: "test"}); err != nil || st.Written == 0 {
		t.Fatalf("compact: %+v, %v", st, err)
	}
	want, err := open(t, dir).Run(ctx, "services", analyze.Params{Summaries: analyze.SummariesNever})
	if err != nil {
		t.Fatal(err)
	}
	stale, _ := run()
	if d := summaryDiff(stale, want); d != "" {
		t.Errorf("with a stale rollup: %s", d)
	}
}

// retriedConnections are TCP connections of web to db (L3/L4 only) over
// three files of rotate rows each (the last shorter): a SYN dropped by
// policy and retried past both files' ends, a SYN retried and answered in
// the second file and acknowledged in the third, a connection reset in
// the second, one kept alive through all three, and one of the second
// file alone.
func retriedConnections(t0 time.Time) ([]*flowpb.Flow, int) {
	web := &flowpb.Endpoint{ID: 11, Identity: 5011, Namespace: "shop", PodName: "web-7d9f8b6c5d-x2x4q",
		Labels: []string{"k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop"}}
	db := &flowpb.Endpoint{ID: 12, Identity: 5012, Namespace: "shop", PodName: "db-0",
		Labels: []string{"k8s:app=db", "k8s:io.kubernetes.pod.namespace=shop"}}
	var flows []*flowpb.Flow
	seg := func(at time.Duration, sport uint32, flags *flowpb.TCPFlags, reply bool, verdict flowpb.Verdict) {
		src, dst, sIP, dIP, sp, dp := web, db, "10.0.0.11", "10.0.0.12", sport, uint32(5432)
		if reply {
			src, dst, sIP, dIP, sp, dp = db, web, dIP, sIP, dp, sp
		}
		f := &flowpb.Flow{Time: timestamppb.New(t0.Add(at)), NodeName: "node-a", Verdict: verdict,
			Type: flowpb.FlowType_L3_L4, IsReply: wrapperspb.Bool(reply), EventType: &flowpb.CiliumEventType{Type: 4},
			IP:     &flowpb.IP{Source: sIP, Destination: dIP, IpVersion: flowpb.IPVersion_IPv4},
			L4:     &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{SourcePort: sp, DestinationPort: dp, Flags: flags}}},
			Source: src, Destination: dst}
		if verdict == flowpb.Verdict_DROPPED {
			f.DropReasonDesc = flowpb.DropReason_POLICY_DENIED
		}
		flows = append(flows, f)
	}
	syn, synAck, ack, rst := &flowpb.TCPFlags{SYN: true}, &flowpb.TCPFlags{SYN: true, ACK: true}, &flowpb.TCPFlags{ACK: true},
		&flowpb.TCPFlags{RST: true, ACK: true}
	const fw, dropped = flowpb.Verdict_FORWARDED, flowpb.Verdict_DROPPED
	ms := time.Millisecond
	// the first file
	seg(100*ms, 40004, syn, false, fw)
	seg(150*ms, 40004, synAck, true, fw)
	seg(200*ms, 40003, syn, false, fw)
	seg(300*ms, 40003, synAck, true, fw)
	seg(400*ms, 40003, ack, false, fw)
	seg(500*ms, 40002, syn, false, fw)
	seg(900*ms, 40001, syn, false, dropped)
	seg(1900*ms, 40001, syn, false, dropped)
	rotate := len(flows)
	// the second
	seg(2500*ms, 40002, syn, false, fw)
	seg(2600*ms, 40002, synAck, true, fw)
	seg(3000*ms, 40005, syn, false, fw)
	seg(3050*ms, 40005, synAck, true, fw)
	seg(3100*ms, 40005, ack, false, fw)
	seg(3500*ms, 40003, rst, false, fw)
	seg(3600*ms, 40004, ack, false, fw)
	seg(3900*ms, 40001, syn, false, dropped)
	// the third
	seg(4600*ms, 40002, ack, false, fw)
	seg(4700*ms, 40004, ack, false, fw)
	seg(5900*ms, 40001, syn, false, dropped)
	return flows, rotate
}

// steadyFlows are the flows of the simulator's steady scenario from start
// for span, at rate flows per second.
func steadyFlows(start time.Time, span time.Duration, rate float64) []*flowpb.Flow {
	var out []*flowpb.Flow
	for _, r := range testutil.SimResponses(sim.Scenarios["steady"], 5, rate, start, start.Add(span)) {
		if f := r.GetFlow(); f != nil {
			out = append(out, f)
		}
	}
	return out
}

// On the summary path with a rollup, a window of whole hours reads the
// hour rows of those hours only; the recording's end (which decides
// whether a SYN or a request still open could have been answered) and the
// replies that show a node's connections can be judged are the whole
// recording's, as on the exact path, and so is the Kubernetes service a
// workload serves (graph --level service). Here a SYN and a request
// without answer at the window's last second, node a's only replies and
// db's service after the window: the exact path counts both as failures.
func TestRollupWindowKeepsTheRecordingsEnd(t *testing.T) {
	ctx := context.Background()
	flows := steadyFlows(edgeT0.Add(20*time.Minute), 100*time.Minute, 2)
	g := &edgeFlows{}
	web, db := podEndpoint("web"), podEndpoint("db")
	last := 2*time.Hour - 500*time.Millisecond
	late := 3*time.Hour + 30*time.Minute
	req, resp := flowpb.L7FlowType_REQUEST, flowpb.L7FlowType_RESPONSE
	flows = append(flows,
		g.tcp(last, "a", "10.0.9.1", 41000, "10.0.9.2", 5432, true, false, false, "web", "db"),
		g.http(last, req, "lost", web, db, "10.0.9.1", "10.0.9.2", 41001, 8080),
		g.tcp(late, "a", "10.0.9.1", 41002, "10.0.9.2", 5432, true, false, false, "web", "db"),
		g.tcp(late+time.Millisecond, "a", "10.0.9.2", 5432, "10.0.9.1", 41002, true, true, true, "db", "web"),
		g.http(late, req, "late", web, db, "10.0.9.1", "10.0.9.2", 41003, 8080),
		g.http(late+time.Millisecond, resp, "late", db, web, "10.0.9.2", "10.0.9.1", 8080, 41003),
	)
	// db's Kubernetes service is named by a flow after the window only
	flows[len(flows)-4].DestinationService = &flowpb.Service{Name: "db-svc", Namespace: "default"}
	slices.SortStableFunc(flows, func(a, b *flowpb.Flow) int { return a.GetTime().AsTime().Compare(b.GetTime().AsTime()) })
	dir := t.TempDir()
	sinkRecording(t, dir, tape.SinkOptions{RowGroupRows: 1000, RotateRows: 4000}, flows, 0)
	if st, err := analyze.Rollup(ctx, dir, edgeT0.Add(48*time.Hour)); err != nil || st.Written != 1 {
		t.Fatalf("rollup: %+v, %v", st, err)
	}
	window := analyze.Params{Since: edgeT0.Add(time.Hour), Until: edgeT0.Add(2*time.Hour - time.Nanosecond)}
	byService := window
	byService.Level = "service"
	summariesMatch(t, dir, []analyze.Params{window, byService})
	res, err := open(t, dir).Run(ctx, "services", analyze.Params{Since: window.Since, Until: window.Until, Summaries: analyze.SummariesAlways})
	if err != nil {
		t.Fatal(err)
	}
	failed := map[string]int64{}
	for _, r := range res.Rows {
		row := map[string]any{}
		for i, c := range res.Columns {
			row[c] = r[i]
		}
		failed[fmt.Sprint(row["service"])] = analyze.IntCell(row["connection_failures"]) + analyze.IntCell(row["no_response"])
	}
	if failed["db"] != 2 {
		t.Errorf("db: %d connection failures and requests without response on the summaries, want 2 (the SYN and the request at the window's end): %v", failed["db"], failed)
	}
}

// errors --by edge is one row per edge, protocol and port, with the
// failures of its paths: the same totals as --by path.
func TestErrorsByEdge(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	testutil.WriteRecording(t, dir, "incident", testutil.SimResponses(sim.Scenarios["incident"], 7, 50, start, start.Add(5*time.Minute)))
	totals := func(by string) (map[string]int64, printer.Table) {
		res, err := open(t, dir).Run(context.Background(), "errors", analyze.Params{By: by})
		if err != nil {
			t.Fatal(err)
		}
		sum := map[string]int64{}
		for _, r := range res.Rows {
			for i, c := range res.Columns {
				switch c {
				case "requests", "errors", "client_errors", "no_response":
					if c != "requests" {
						sum[c] += analyze.IntCell(r[i])
					}
				case "method", "path":
					if r[i] != nil {
						sum["with "+c]++
					}
				}
			}
			sum["rows"]++
		}
		return sum, res
	}
	byPath, _ := totals("path")
	byEdge, res := totals("edge")
	if byPath["with path"] == 0 || byPath["errors"] == 0 {
		t.Fatalf("by path: %v, want rows with paths and errors", byPath)
	}
	if byEdge["with path"] != 0 || byEdge["with method"] != 0 || byEdge["rows"] >= byPath["rows"] {
		t.Errorf("by edge: %v (by path: %v), want fewer rows, none with a method or path", byEdge, byPath)
	}
	for _, c := range []string{"errors", "client_errors", "no_response"} {
		if byEdge[c] != byPath[c] {
			t.Errorf("%s: %d by edge, %d by path", c, byEdge[c], byPath[c])
		}
	}
	seen := map[string]bool{}
	for _, r := range res.Rows {
		k := fmt.Sprint(r[:6]...)
		if seen[k] {
			t.Errorf("edge %s listed twice", k)
		}
		seen[k] = true
	}
}
