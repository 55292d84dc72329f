package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/printer"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// flowtape query over imported real samples: any SQL, every format, the
// views listed, and one-line errors.
func TestQueryCommand(t *testing.T) {
	dir := importSamples(t)
	out, errOut, code := runCmd(t, "query", dir, "SELECT type, count(*) AS n FROM flows GROUP BY ALL ORDER BY type", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rows []struct {
		Type string `json:"type"`
		N    int64  `json:"n"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	total := int64(0)
	for _, r := range rows {
		total += r.N
	}
	if total != 768 || len(rows) != 2 || rows[0].Type != "L3_L4" || rows[1].Type != "L7" {
		t.Errorf("flows by type %+v; want L3_L4 and L7 adding up to 768", rows)
	}
	out, _, code = runCmd(t, "query", dir, "--views")
	for _, v := range []string{"flows:", "events:", "requests:", "dns:", "drops:", "edges:"} {
		if code != 0 || !strings.Contains(out, "\n"+v) && !strings.HasPrefix(out, v) {
			t.Errorf("--views lacks %s:\n%s", v, out)
		}
	}
	// what runs in the duckdb CLI is tested in analyze (TestSetupSQLRunsAlone)
	out, _, code = runCmd(t, "query", dir, "--print-setup")
	if code != 0 || !strings.Contains(out, "SET VARIABLE ft_default_reporter = 'server';") || !strings.Contains(out, "CREATE OR REPLACE VIEW flows_all AS") {
		t.Errorf("--print-setup: exit %d\n%s", code, out)
	}
	out, _, code = runCmd(t, "query", dir, "SELECT count(*) AS n FROM requests WHERE error", "--format", "csv")
	if code != 0 || !strings.HasPrefix(out, "n\n") {
		t.Errorf("csv: exit %d\n%s", code, out)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"query", dir, "SELEC 1"}, 1, `query: Parser Error: syntax error at or near "SELEC"`},
		{[]string{"query", dir}, 2, "give the recordings and then the SQL"},
		{[]string{"query", dir, "SELECT 1", "--format", "xml"}, 2, "unknown --format"},
		{[]string{"query", dir, "--views", "--print-setup"}, 2, "give --views or --print-setup, not both"},
		{[]string{"query", t.TempDir(), "SELECT 1"}, 1, "not a flowtape recording"},
	} {
		wantOneLineError(t, tc.args, tc.code, tc.want)
	}
}

// flowtape analyze services: JSON with the documented field names, and
// usage errors for what does not exist.
func TestAnalyzeServicesCommand(t *testing.T) {
	dir := importSamples(t)
	out, errOut, code := runCmd(t, "analyze", "services", dir, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) == 0 {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, f := range []string{"service", "namespace", "protocols", "requests", "rps", "errors", "error_rate", "client_errors",
		"no_response", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "outbound_requests", "drops", "policy_denies",
		"tcp_resets", "dns_errors", "health"} {
		if _, ok := rows[0][f]; !ok {
			t.Errorf("services JSON lacks %q", f)
		}
	}
	if out, _, code := runCmd(t, "analyze", "services", "--sql"); code != 0 || !strings.Contains(out, "requests_counted") {
		t.Errorf("--sql: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"analyze", "nope", dir}, {"analyze", "services", dir, "--reporter", "proxy"}, {"analyze", "services"}} {
		if _, _, code := runCmd(t, args...); code != 2 {
			t.Errorf("flowtape %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
}

// Recordings that cannot be analysed: one line naming the file or what to
// do, a non-zero exit, no panic.
func TestAnalyzeBadInput(t *testing.T) {
	dir := importSamples(t)
	files, err := filepath.Glob(filepath.Join(dir, "flows", "*", "*", "*.parquet"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no flow files in %s: %v", dir, err)
	}
	valid, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// withFile makes a recording of one flows file, changed by edit.
	withFile := func(edit func([]byte) []byte) (string, string) {
		d := t.TempDir()
		p := filepath.Join(d, "flows", "date=2021-10-04", "hour=14", filepath.Base(files[0]))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, edit(bytes.Clone(valid)), 0o600); err != nil {
			t.Fatal(err)
		}
		return d, p
	}
	newer, newerFile := withFile(func(b []byte) []byte {
		// the footer's schema version, as a flowtape of schema 2 would write it
		i := bytes.LastIndex(b, []byte(schema.MetaSchemaVersion))
		j := i + bytes.Index(b[i:], []byte(schema.Version))
		copy(b[j:], "2.0")
		return b
	})
	corrupt, corruptFile := withFile(func(b []byte) []byte {
		for i := len(b) / 3; i < len(b)/3+2000; i++ {
			b[i] = 0xab // inside the column chunks; the footer is intact
		}
		return b
	})
	truncated, truncatedFile := withFile(func(b []byte) []byte { return b[:len(b)/2] })
	empty := t.TempDir()
	if err := os.MkdirAll(filepath.Join(empty, "flows"), 0o700); err != nil {
		t.Fatal(err)
	}
	notRecording := filepath.Join(t.TempDir(), "flows.json")
	if err := os.WriteFile(notRecording, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"analyze", "services", newer}, []string{newerFile, "schema version 2.0 is not supported"}},
		// The analyses read derived tables, which this recording lacks;
		// deriving them reads the damaged flows.
		{[]string{"analyze", "graph", corrupt}, []string{corrupt, "flowtape reindex " + corrupt}},
		{[]string{"reindex", corrupt}, []string{corruptFile}},
		{[]string{"query", corrupt, "SELECT * FROM flows"}, []string{corruptFile}},
		{[]string{"analyze", "services", truncated}, []string{truncatedFile, "not a readable Parquet file"}},
		{[]string{"analyze", "timeline", empty}, []string{empty, "no recording files"}},
		{[]string{"analyze", "coverage", notRecording}, []string{notRecording}},
		{[]string{"query", dir, "SELECT nope FROM flows"}, []string{"query:", "nope"}},
	} {
		_, errOut, code := runCmd(t, tc.args...)
		msg := strings.TrimSpace(errOut)
		ok := code == 1 && !strings.Contains(msg, "\n") && !strings.Contains(msg, "panic")
		for _, w := range tc.want {
			ok = ok && strings.Contains(msg, w)
		}
		if !ok {
			t.Errorf("flowtape %s: exit %d, %q; want exit 1 and one line with %q", strings.Join(tc.args, " "), code, msg, tc.want)
		}
	}
}

// A flow file cut short (a copy that did not finish, a full disk) next to
// its intact derived files: the analyses of the derived tables answer as
// before, with a warning naming the file and what to do; what reads the
// flows fails in one line naming it and what to do. An intact recording
// gets no warning.
func TestAnalyzeAFlowFileCutShort(t *testing.T) {
	dir := importSamples(t)
	want, errOut, code := runCmd(t, "analyze", "services", dir, "--format", "csv")
	if code != 0 || strings.Contains(errOut, "warning") {
		t.Fatalf("analyze services of the intact recording: exit %d, stderr %q", code, errOut)
	}
	files, err := filepath.Glob(filepath.Join(dir, "flows", "*", "*", "*.parquet"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no flow files in %s: %v", dir, err)
	}
	cut := files[len(files)-1]
	st, err := os.Stat(cut)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(cut, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	got, errOut, code := runCmd(t, "analyze", "services", dir, "--format", "csv")
	if code != 0 || got != want {
		t.Errorf("analyze services with %s cut short: exit %d\n%s\nwant what the derived tables said before:\n%s", cut, code, got, want)
	}
	if !strings.Contains(errOut, "warning: "+cut+" is not a readable Parquet file (it ends before its Parquet footer)") || !strings.Contains(errOut, "copy it again") {
		t.Errorf("analyze services with %s cut short: no warning naming it and what to do; stderr:\n%s", cut, errOut)
	}
	// emptied (a copy that failed at once) or overwritten at its head
	for _, edit := range []func() error{
		func() error { return os.Truncate(cut, 0) },
		func() error { return os.WriteFile(cut, bytes.Repeat([]byte{0}, 4096), 0o600) },
	} {
		if err := edit(); err != nil {
			t.Fatal(err)
		}
		got, errOut, code := runCmd(t, "analyze", "services", dir, "--format", "csv")
		if code != 0 || got != want || !strings.Contains(errOut, "warning: "+cut+" is not a readable Parquet file") {
			t.Errorf("analyze services with %s emptied or overwritten: exit %d, stderr %q", cut, code, errOut)
		}
	}
	for _, args := range [][]string{
		{"analyze", "drops", dir},
		{"export", dir, "-o", filepath.Join(t.TempDir(), "out.json")},
		{"query", dir, "SELECT count(*) FROM flows"},
	} {
		_, errOut, code := runCmd(t, args...)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		last := lines[len(lines)-1]
		if code != 1 || !strings.HasPrefix(last, "flowtape: ") || !strings.Contains(last, cut) ||
			!strings.Contains(last, "copy it again from where it came, or move it out of the recording") {
			t.Errorf("flowtape %s: exit %d, stderr %q; want exit 1 and a last line naming %s and what to do", strings.Join(args, " "), code, errOut, cut)
		}
	}
}

// A flow file with a damaged page (one flipped byte of a page header,
// which arrow-go panics on): the commands that read its rows with arrow-go
// end with a line naming it and what to do, not a Go stack trace. They run
// as processes of the built binary: a native crash (DuckDB's, on damaged
// data) fails this test alone, not every test of the package with it.
func TestReadAFlowFileWithADamagedPage(t *testing.T) {
	bin := testutil.FlowtapeBinary(t)
	// (a simulated recording: some damage to the samples' page headers
	// sends arrow-go into minutes of decoding where DamagePageHeader
	// looks for the byte it panics on)
	dir := filepath.Join(t.TempDir(), "rec")
	t0 := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	testutil.WriteRecording(t, dir, "rec", testutil.SimResponses(sim.Scenarios["incident"], 3, 50, t0, t0.Add(20*time.Second)))
	files, err := filepath.Glob(filepath.Join(dir, "flows", "*", "*", "*.parquet"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no flow files in %s: %v", dir, err)
	}
	damaged := files[len(files)-1]
	valid, err := os.ReadFile(damaged)
	if err != nil {
		t.Fatal(err)
	}
	// (replay would serve on, were the file read: runProcess bounds it)
	run := func(args ...string) (string, int) { t.Helper(); return runProcess(t, bin, args...) }
	testutil.DamagePageHeader(t, damaged, "time")
	for _, args := range [][]string{
		{"export", dir, "-o", filepath.Join(t.TempDir(), "out.json")},
		{"reindex", dir, "--force"},
		{"replay", dir, "--listen", "127.0.0.1:0"},
	} {
		errOut, code := run(args...)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		last := lines[len(lines)-1]
		if code != 1 || strings.Contains(errOut, "panic:") || !strings.HasPrefix(last, "flowtape: ") || !strings.Contains(last, damaged) ||
			!strings.Contains(last, "copy it again from where it came, or move it out of the recording") {
			t.Errorf("flowtape %s: exit %d, stderr %q; want exit 1 and a last line naming %s and what to do", strings.Join(args, " "), code, errOut, damaged)
		}
		if args[0] == "export" && !strings.Contains(errOut, "a damaged page (arrow-go: ") {
			t.Errorf("flowtape export: %q, want the panic arrow-go raised on the page, recovered", errOut)
		}
	}
	// the page data itself damaged (in the file as it was, its page
	// headers whole): DuckDB names the file it cannot decompress, and the
	// line says what to do. Only the first half of the column's first zstd
	// frame is damaged: page data, which zstd's checksum guards, not a page
	// header, which DuckDB is never given damaged (it may crash on one)
	start, end := testutil.FirstPage(t, damaged, "time")
	frame := bytes.Index(valid[start:end], []byte{0x28, 0xb5, 0x2f, 0xfd})
	if frame < 0 {
		t.Fatal("the time column's first page is not zstd: the test proves nothing")
	}
	next := bytes.Index(valid[start+frame+4:end], []byte{0x28, 0xb5, 0x2f, 0xfd})
	lo, hi := start+frame+16, end
	if next >= 0 {
		hi = start + frame + 4 + next
	}
	hi = lo + (hi-lo)/2
	named := false // by DuckDB itself
	for at := lo; at+8 < hi; at += max(1, (hi-lo)/4) {
		b := bytes.Clone(valid)
		for i := at; i < at+8; i++ {
			b[i] ^= 0xff
		}
		if err := os.WriteFile(damaged, b, 0o600); err != nil {
			t.Fatal(err)
		}
		errOut, code := run("query", dir, "SELECT min(time) FROM flows_all")
		if code == 0 {
			continue // DuckDB read the damaged data as data
		}
		named = named || strings.Contains(errOut, `Failed to read file "`+damaged+`"`)
		if code != 1 || !strings.Contains(errOut, damaged) || !strings.HasSuffix(strings.TrimSpace(errOut),
			": copy it again from where it came, or move it out of the recording to read the rest (without its flows)") {
			t.Errorf("query of a damaged page (bytes %d to %d): exit %d, stderr %q; want one naming %s and what to do", at, at+8, code, errOut, damaged)
		}
	}
	if !named {
		t.Error("no damage to the time column's data that DuckDB names the file for: the test proves less than it says")
	}
}

// A piece of a live file torn when its recorder stopped (power lost
// before the piece reached the disk): the command names it and says to
// run recover, which brings its rows back from the write-ahead log.
func TestQueryATornPiece(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "live")
	d, err := tape.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tape.NewSink(tape.SinkOptions{Dir: dir, RecordingID: "0123abcd", Writer: "test"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range testutil.SampleResponses(t) {
		if f := r.GetFlow(); f != nil {
			if err := s.WriteFlow(f); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	// the recorder stops without closing its files
	d.Close()
	pieces, err := filepath.Glob(filepath.Join(dir, "flows", "*", "*", "*.p0*.parquet"))
	if err != nil || len(pieces) == 0 {
		t.Fatalf("no pieces in %s: %v", dir, err)
	}
	st, err := os.Stat(pieces[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(pieces[0], st.Size()/2); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCmd(t, "query", dir, "SELECT count(*) FROM flows")
	if want := "run flowtape recover " + dir; code != 1 || !strings.Contains(errOut, pieces[0]) || !strings.HasSuffix(strings.TrimSpace(errOut), want) {
		t.Fatalf("query with a torn piece: exit %d, stderr %q; want exit 1 naming %s and ending %q", code, errOut, pieces[0], want)
	}
	if out, errOut, code := runCmd(t, "recover", dir); code != 0 {
		t.Fatalf("recover: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code := runCmd(t, "query", dir, "SELECT count(*) FROM flows", "--format", "csv")
	if code != 0 || strings.TrimSpace(out) != fmt.Sprintf("count_star()\n%d", n) {
		t.Errorf("query after recover: exit %d, %q (stderr %q), want the %d flows written", code, out, errOut, n)
	}
}

// Every analysis runs from the command line in every format; graph draws.
func TestAnalyzeCommandFormats(t *testing.T) {
	dir := importSamples(t)
	for _, name := range analyze.Analyses() {
		for _, format := range append(printer.Formats, "wide") {
			args := []string{"analyze", name, dir, "--format", format}
			switch name {
			case "timeline":
				args = append(args, "--bucket", "24h") // the samples span months
			case "slo":
				args = append(args, "--bucket", "5m") // the longest step slo takes
			}
			if out, errOut, code := runCmd(t, args...); code != 0 || out == "" {
				t.Errorf("flowtape %s: exit %d, %s", strings.Join(args, " "), code, errOut)
			}
		}
	}
	// The table shows the main columns, endpoints as namespace/name; -o
	// wide and csv every column, as the analysis returns them.
	header := func(args ...string) string {
		t.Helper()
		out, errOut, code := runCmd(t, args...)
		if code != 0 {
			t.Fatalf("flowtape %s: exit %d, %s", strings.Join(args, " "), code, errOut)
		}
		return strings.Join(strings.Fields(strings.SplitN(out, "\n", 2)[0]), " ")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"analyze", "services", dir}, "SERVICE NAMESPACE VISIBILITY RPS ERROR_RATE P50_MS P99_MS CONNECTIONS CONNECTION_FAILURES DROPS HEALTH"},
		{[]string{"analyze", "services", dir, "-o", "wide"}, "SERVICE NAMESPACE VISIBILITY PROTOCOLS REQUESTS RPS ERRORS ERROR_RATE CLIENT_ERRORS NO_RESPONSE " +
			"P50_MS P90_MS P95_MS P99_MS MAX_MS OUTBOUND_REQUESTS OUTBOUND_ERRORS FLOWS CONNECTIONS CONNECTION_FAILURES DROPS " +
			"DROPS_BY_REASON POLICY_DENIES TCP_RESETS DNS_ERRORS HEALTH"},
		{[]string{"analyze", "services", dir, "--format", "csv"}, "service,namespace,visibility,protocols,requests,rps,errors,error_rate,client_errors,no_response," +
			"p50_ms,p90_ms,p95_ms,p99_ms,max_ms,outbound_requests,outbound_errors,flows,connections,connection_failures,drops," +
			"drops_by_reason,policy_denies,tcp_resets,dns_errors,health"},
		{[]string{"analyze", "graph", dir}, "SOURCE DESTINATION PROTOCOLS RPS ERROR_RATE P99_MS CONNECTIONS DROPS HEALTH"},
	} {
		if got := header(tc.args...); got != tc.want {
			t.Errorf("flowtape %s: header\n %s\nwant\n %s", strings.Join(tc.args, " "), got, tc.want)
		}
	}
	if out, _, _ := runCmd(t, "analyze", "graph", dir); !strings.Contains(out, "bookinfo/productpage") {
		t.Errorf("graph table: no endpoint as namespace/name\n%s", out)
	}
	out, _, code := runCmd(t, "analyze", "graph", dir, "--format", "dot")
	if code != 0 || !strings.HasPrefix(out, "digraph flowtape {") || !strings.Contains(out, `"bookinfo/productpage" -> "bookinfo/reviews"`) {
		t.Errorf("dot: exit %d\n%s", code, out)
	}
	out, _, code = runCmd(t, "analyze", "graph", dir, "--format", "mermaid", "--level", "pod")
	if code != 0 || !strings.HasPrefix(out, "flowchart LR\n") || !strings.Contains(out, "productpage-v1-6b746f74dc-9rcxx") {
		t.Errorf("mermaid: exit %d\n%s", code, out)
	}
	out, _, code = runCmd(t, "analyze", "graph", dir, "--format", "json")
	var g struct {
		Nodes []map[string]any `json:"nodes"`
		Edges []map[string]any `json:"edges"`
	}
	if err := json.Unmarshal([]byte(out), &g); code != 0 || err != nil || len(g.Nodes) == 0 || len(g.Edges) == 0 || g.Edges[0]["source"] == nil {
		t.Errorf("graph json: exit %d, %v\n%s", code, err, out)
	}
	for _, args := range [][]string{
		{"analyze", "services", dir, "--format", "dot"},
		{"analyze", "graph", dir, "--level", "cluster"},
		{"analyze", "timeline", dir, "--bucket", "1500ms"},
	} {
		if _, _, code := runCmd(t, args...); code != 2 {
			t.Errorf("flowtape %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
}

// A window that holds none of the recording's flows (both ends given: one
// alone past the data is an error) gives an empty or zero result, exit 0,
// and a note saying where the flows are, or which gap of the recording the
// window falls in; a window that holds flows gives none, though an
// analysis may find nothing of its kind in them, but where it reaches past
// the flows and the analysis gives rates: they divide by the whole window.
func TestAnalyzeWindowWithoutFlowsSaysWhereTheyAre(t *testing.T) {
	dir := importSamples(t)
	// the samples' span, and the gap after the first sample's flows
	out, errOut, code := runCmd(t, "query", dir, `SELECT epoch_ns(min(time)) || ' ' || epoch_ns(max(time)) || ' ' ||
		epoch_ns(max(time) FILTER (time < TIMESTAMP '2021-08-01')) || ' ' || epoch_ns(min(time) FILTER (time > TIMESTAMP '2021-08-01')) AS span
		FROM flows`, "--format", "csv")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var first, last, before, after int64
	if _, err := fmt.Sscan(strings.TrimPrefix(out, "span\n"), &first, &last, &before, &after); err != nil {
		t.Fatalf("the samples' span %q: %v", out, err)
	}
	ts := func(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }
	t0, t1 := time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
	outside := "holds none of the recording's flows, which run from " + ts(first) + " to " + ts(last) + ": check --since and --until"
	gap := "holds no flows: it falls in a gap of the recording, between its flows of " + ts(before) + " and " + ts(after)
	// One end alone past the data: an error, in the user's terms.
	_, errOut, code = runCmd(t, "analyze", "services", dir, "--until", at(-time.Hour))
	want := "flowtape: services: the window is empty: it starts at " + t0.Format("2006-01-02T15:04:05.000000Z") + " (the first flow), after it ends at " +
		t0.Add(-time.Hour).Truncate(time.Second).Format("2006-01-02T15:04:05.000000Z") + " (--until)\n"
	if code != 1 || errOut != want {
		t.Errorf("--until before the first flow: exit %d, stderr %q; want exit 1 and %q", code, errOut, want)
	}
	for _, tc := range []struct {
		name         string
		since, until string
		note         string
	}{
		{"before the data", at(-2 * time.Hour), at(-time.Hour), "note: the window (" + at(-2*time.Hour) + " to " + at(-time.Hour) + ") " + outside},
		// (L3/L4 flows only there: no rates, no note on them)
		{"around the first flow", at(-time.Hour), at(time.Hour), ""},
		{"from the first flow", ts(first), at(time.Minute), ""},
		{"after the data", t1.Add(time.Hour).Format(time.RFC3339), t1.Add(2 * time.Hour).Format(time.RFC3339), outside},
		{"in a gap", "2021-08-01T00:00:00Z", "2021-08-01T00:03:00Z", "note: the window (2021-08-01T00:00:00Z to 2021-08-01T00:03:00Z) " + gap},
	} {
		for _, name := range []string{"services", "graph", "errors", "timeline"} {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				out, errOut, code := runCmd(t, "analyze", name, dir, "--since", tc.since, "--until", tc.until, "--format", "csv")
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errOut)
				}
				note := tc.note
				if strings.Contains(note, "rates") && (name == "errors" || name == "timeline") {
					note = "" // (no rates)
				}
				if note == "" && strings.Contains(errOut, "the window (") || note != "" && !strings.Contains(errOut, note) {
					t.Errorf("stderr:\n%s\nwant the note %q; stdout:\n%s", errOut, note, out)
				}
			})
		}
	}
}

// A namespace no flow has (a typo) gives empty tables, which would read as
// "no errors": a note lists the recording's namespaces; a namespace the
// recording has gets no note, even where nothing of it is found.
func TestAnalyzeUnknownNamespaceListsTheRecordings(t *testing.T) {
	dir := importSamples(t)
	for _, name := range []string{"errors", "services", "timeline"} {
		args := []string{"analyze", name, dir, "--format", "csv"}
		if name == "timeline" {
			// (the samples span months: a timeline of days)
			args = append(args, "--bucket", "24h")
		}
		_, errOut, code := runCmd(t, append(args, "-n", "defualt")...)
		prefix := `note: no flow of the recording is of namespace "defualt" (-n): its namespaces are `
		i := strings.Index(errOut, prefix)
		if code != 0 || i < 0 {
			t.Fatalf("analyze %s -n defualt: exit %d, stderr:\n%s", name, code, errOut)
		}
		namespaces := strings.Split(strings.TrimSpace(strings.SplitN(errOut[i+len(prefix):], "\n", 2)[0]), ", ")
		if len(namespaces) < 2 || !slices.IsSorted(namespaces) {
			t.Fatalf("namespaces %q: want the samples' several, sorted", namespaces)
		}
		_, errOut, code = runCmd(t, append(args, "-n", namespaces[0])...)
		if code != 0 || strings.Contains(errOut, "(-n)") {
			t.Errorf("analyze %s -n %s: exit %d, stderr:\n%s", name, namespaces[0], code, errOut)
		}
	}
}

// A recording given with a copy of it (cp -r, then both directories on the
// command line) is read once: every analysis gives what the recording
// alone gives (services and coverage counted its flows twice, timeline
// once), and a note says which files were read once.
func TestAnalyzeARecordingAndItsCopy(t *testing.T) {
	dir := importSamples(t)
	copied := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(copied, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"analyze", "services"}, {"analyze", "coverage"}, {"analyze", "graph"}, {"analyze", "errors"},
		{"analyze", "timeline", "--bucket", "24h"}, {"analyze", "drops"}, {"analyze", "dns"},
		{"query", "SELECT (SELECT count(*) FROM flows), (SELECT count(*) FROM requests), (SELECT count(*) FROM connections)"},
	} {
		withPaths := func(paths ...string) []string {
			if args[0] == "query" {
				return append(append([]string{"query"}, paths...), args[1:]...)
			}
			return append(append(slices.Clone(args[:2]), paths...), append(slices.Clone(args[2:]), "--format", "csv")...)
		}
		want, errOut, code := runCmd(t, withPaths(dir)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		got, errOut, code := runCmd(t, withPaths(dir, copied)...)
		if code != 0 {
			t.Fatalf("%v with its copy: exit %d: %s", args, code, errOut)
		}
		if got != want {
			t.Errorf("%v of the recording and its copy:\n%s\nwant what the recording alone gives:\n%s", args, got, want)
		}
		if !strings.Contains(errOut, "note: read once: ") || !strings.Contains(errOut, "copies of the same recording files, e.g. "+copied) {
			t.Errorf("%v with its copy: no note of the files read once; stderr:\n%s", args, errOut)
		}
	}
}

// The advice for a flow file that cannot be read is only for one that is
// there to read: not for a file gone meanwhile (a live file's piece its
// file replaced), nor for a derived file (whose message says to reindex).
func TestFlowFileAdvice(t *testing.T) {
	dir := t.TempDir()
	flows := filepath.Join(dir, "flows", "date=2026-11-25", "hour=13", "20261125T130000Z-0123abcd-000001.parquet")
	piece := strings.TrimSuffix(flows, ".parquet") + ".p000001.parquet"
	derived := filepath.Join(dir, "requests", "date=2026-11-25", "hour=13", filepath.Base(flows))
	for _, p := range []string{flows, piece, derived} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("PAR1"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		path, want string
	}{
		{flows, "copy it again"},
		{piece, "run flowtape recover " + dir},
		{derived, ""},
		{filepath.Join(filepath.Dir(flows), "20261125T130000Z-0123abcd-000002.parquet"), ""},
	} {
		got := flowFileAdvice(tc.path)
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("flowFileAdvice(%s) = %q, want %q", tc.path, got, tc.want)
		}
	}
	// DuckDB's errors that name a file: advice where a copy mends it
	quoted := filepath.Join(dir, `sam"ples: x`, "flows", "date=2026-11-25", "hour=13", filepath.Base(flows))
	if err := os.MkdirAll(filepath.Dir(quoted), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(quoted, []byte("PAR1"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		msg, want string
	}{
		{`query: Invalid Input Error: Failed to read file "` + flows + `": ZSTD Decompression failure`, "copy it again"},
		{`query: Invalid Input Error: Failed to read file "` + quoted + `": ZSTD Decompression failure`, "copy it again"},
		// files of different columns in one read_parquet: no copy mends that
		{`query: Invalid Input Error: Failed to read file "` + flows + `": schema mismatch in glob: column "attempt" was read from the original file "` +
			derived + `", but could not be found in file "` + flows + `"`, ""},
		{`query: Invalid Input Error: Failed to read file "` + derived + `": ZSTD Decompression failure`, ""},
	} {
		got := unreadableHint(errors.New(tc.msg))
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("unreadableHint(%s) = %q, want %q", tc.msg, got, tc.want)
		}
	}
}
