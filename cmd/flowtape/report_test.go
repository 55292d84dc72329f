package main

import (
	"bytes"
	"encoding/csv"
	"errors"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	relaypb "github.com/cilium/cilium/api/v1/relay"

	"github.com/flowtape/flowtape/internal/testutil"
)

// reportSections are what a user finds in every report, HTML and Markdown:
// timeline charts, the graph, the services table, what changed against the
// baseline, errors, drops and DNS, and the SQL of each of the 7 analyses.
var reportSections = map[string][]string{
	"html": {`<h2 id="summary">`, `<h2 id="timeline">`, `class="chart"`, `aria-label="Requests per bucket"`,
		`aria-label="Error rate"`, `aria-label="p99 latency (ms)"`, `aria-label="Dropped flows per bucket"`,
		`<h2 id="graph">`, `class="graph"`,
		`<h2 id="services">`, `<h2 id="changes">`, "<h3>Edges</h3>", `<h2 id="errors">`, "<h3>Errors</h3>",
		"<h3>Drops and policy denies</h3>", "<h3>DNS failures</h3>", `<h2 id="appendix">`, "</html>\n"},
	"markdown": {"## 1. Summary", "## 2. Timeline", "| drops | policy denies |", "## 3. Dependency graph\n\n```mermaid\n", "## 4. Services",
		"## 5. What changed", "### Edges", "## 6. Top errors, drops and DNS failures", "### Errors",
		"### Drops and policy denies", "### DNS failures", "## 7. Appendix"},
}

// flowtape report writes the document its flags ask for: in the format of
// -o's extension (or --format), to standard output for -o -, with every
// section, and with the numbers flowtape analyze prints for the same
// recording.
func TestReportWritesTheDocument(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteRecording(t, dir, "drops", testutil.LoadResponses(t, testutil.Testdata("fixtures", "drops.json")))
	// The report's tables hold what flowtape analyze prints for the same
	// recording.
	type table struct {
		name, html, md string // the analysis, what precedes its table
		csv            [][]string
		markdown       string
	}
	tables := []table{{name: "services", html: `<h2 id="services">`, md: "## 4. Services\n\n"},
		{name: "drops", html: "<h3>Drops and policy denies</h3>", md: "### Drops and policy denies\n\n"}}
	for i, tb := range tables {
		analysis := func(format string) string {
			out, stderr, code := runCmd(t, "analyze", tb.name, dir, "--format", format)
			if code != 0 {
				t.Fatalf("flowtape analyze %s: exit %d: %s", tb.name, code, stderr)
			}
			return out
		}
		var err error
		if tables[i].csv, err = csv.NewReader(strings.NewReader(analysis("csv"))).ReadAll(); err != nil {
			t.Fatal(err)
		}
		tables[i].markdown = analysis("markdown") + "\n"
		if len(tables[i].csv) < 3 {
			t.Fatalf("flowtape analyze %s: %q: too few rows to compare", tb.name, tables[i].csv)
		}
	}
	out := t.TempDir()
	baseline := []string{"--baseline", "2026-03-14T09:31:00Z..2026-03-14T09:31:01Z"}
	for _, tc := range []struct {
		args         []string
		file, format string // file "" is standard output
		starts       string
	}{
		{[]string{"-o", filepath.Join(out, "r.html")}, "r.html", "html", "<!DOCTYPE html>"},
		{[]string{"-o", filepath.Join(out, "r.htm")}, "r.htm", "html", "<!DOCTYPE html>"},
		{[]string{"-o", filepath.Join(out, "r.md")}, "r.md", "markdown", "# Postmortem: " + dir},
		{[]string{"-o", filepath.Join(out, "r.markdown")}, "r.markdown", "markdown", "# Postmortem: " + dir},
		{[]string{"-o", filepath.Join(out, "r.txt"), "--format", "markdown", "--title", "TCP <sample>"}, "r.txt", "markdown", "# TCP &lt;sample&gt;"},
		{[]string{"-o", filepath.Join(out, "r.md.html"), "--format", "html"}, "r.md.html", "html", "<!DOCTYPE html>"},
		{[]string{"-o", "-", "--format", "markdown"}, "", "markdown", "# Postmortem: " + dir},
	} {
		name := tc.file
		if name == "" {
			name = "stdout"
		}
		t.Run(name, func(t *testing.T) {
			stdout, stderr, code := runCmd(t, append(append([]string{"report", dir}, tc.args...), baseline...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			doc := stdout
			if tc.file != "" {
				b, err := os.ReadFile(filepath.Join(out, tc.file))
				if err != nil {
					t.Fatal(err)
				}
				if doc = string(b); stdout != "" {
					t.Errorf("with -o %s, standard output got %q", tc.file, stdout)
				}
				// Like the recording it comes from, for its owner only.
				if fi, err := os.Stat(filepath.Join(out, tc.file)); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: %v, %v; want mode 0600", tc.file, fi, err)
				}
			}
			if !strings.HasPrefix(doc, tc.starts) {
				t.Errorf("starts %q, want %q", firstLine(doc), tc.starts)
			}
			for _, want := range reportSections[tc.format] {
				if !strings.Contains(doc, want) {
					t.Errorf("no %q: a section is missing", want)
				}
			}
			if n := strings.Count(doc, "<details><summary>"); n != 7 {
				t.Errorf("the appendix holds the SQL of %d analyses, want 7", n)
			}
			// An L3/L4-only capture still says something: connections.
			if !strings.Contains(doc, "L3/L4 flows only") {
				t.Error("the report does not say the capture has no L7 data")
			}
			for _, tb := range tables {
				if tc.format == "markdown" {
					if !strings.Contains(doc, tb.md+tb.markdown) {
						t.Errorf("the %s table differs from flowtape analyze %s --format markdown:\n%s", tb.name, tb.name, tb.markdown)
					}
				} else if got := htmlTableAfter(doc, tb.html); !slices.EqualFunc(got, tb.csv, slices.Equal) {
					t.Errorf("the %s table differs from flowtape analyze %s --format csv:\n got %q\nwant %q", tb.name, tb.name, got, tb.csv)
				}
			}
		})
	}
	// Nothing but the documents is left beside them.
	entries, _ := os.ReadDir(out)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"r.htm", "r.html", "r.markdown", "r.md", "r.md.html", "r.txt"}; !slices.Equal(names, want) {
		t.Errorf("the output directory holds %v, want %v", names, want)
	}
}

var (
	htmlRow  = regexp.MustCompile(`(?s)<tr[^>]*>(.*?)</tr>`)
	htmlCell = regexp.MustCompile(`(?s)<t[hd][^>]*>(.*?)</t[hd]>`)
)

// htmlTableAfter returns the header and rows of the first table after
// marker in an HTML report, as text.
func htmlTableAfter(doc, marker string) [][]string {
	_, rest, _ := strings.Cut(doc, marker)
	table, _, _ := strings.Cut(rest, "</table>")
	var out [][]string
	for _, row := range htmlRow.FindAllStringSubmatch(table, -1) {
		var cells []string
		for _, c := range htmlCell.FindAllStringSubmatch(row[1], -1) {
			cells = append(cells, html.UnescapeString(c[1]))
		}
		out = append(out, cells)
	}
	return out
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// A report that fails while being written leaves the file -o names as it
// was: absent, or the previous report whole. The disk here fills up (a
// file size limit, set by prlimit on the flowtape process alone: the test
// process's own files must not hit it) after the first 4 KiB of the
// document.
func TestReportIsWrittenOnlyWhenComplete(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("no prlimit (util-linux) to limit the file size")
	}
	bin := testutil.FlowtapeBinary(t)
	dir, _ := sampleRecording(t, "basic-sample-400-icmpv4-flows.json")
	out := t.TempDir()
	for _, name := range []string{"r.html", "r.md"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(out, name)
			report := func(limited bool) (string, int) {
				args := []string{bin, "report", dir, "-o", path}
				if limited {
					args = append([]string{"--fsize=4096"}, args...)
				} else {
					args = append([]string{"--fsize=unlimited"}, args...)
				}
				var stderr bytes.Buffer
				cmd := exec.Command(prlimit, args...)
				cmd.Stderr = &stderr
				err := cmd.Run()
				var exit *exec.ExitError
				if err != nil && !errors.As(err, &exit) {
					t.Fatal(err)
				}
				return stderr.String(), cmd.ProcessState.ExitCode()
			}
			stderr, code := report(true)
			if code == 0 || !strings.Contains(stderr, "file too large") {
				t.Fatalf("a report bigger than the disk allows: exit %d, %q", code, stderr)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Fatalf("a failed report left %s: %v", name, err)
			}
			// A previous report stays whole when the next one fails.
			if _, code := report(false); code != 0 {
				t.Fatal("report failed")
			}
			before, _ := os.ReadFile(path)
			_, code = report(true)
			if after, _ := os.ReadFile(path); code == 0 || !bytes.Equal(after, before) {
				t.Errorf("exit %d, and %s went from %d to %d bytes: a failed report touched the previous one", code, name, len(before), len(after))
			}
		})
	}
	if entries, _ := os.ReadDir(out); len(entries) != 2 {
		t.Errorf("the failed reports left files behind: %v", entries)
	}
}

func TestReportBadInput(t *testing.T) {
	dir, _ := sampleRecording(t, "basic-sample-10-flows.json")
	eventsOnly := t.TempDir()
	testutil.WriteRecording(t, eventsOnly, "ev", []*observerpb.GetFlowsResponse{{
		NodeName: "n1", ResponseTypes: &observerpb.GetFlowsResponse_LostEvents{LostEvents: &flowpb.LostEvent{Source: flowpb.LostEventSource_HUBBLE_RING_BUFFER, NumEventsLost: 3}},
	}, {
		NodeName: "n1", ResponseTypes: &observerpb.GetFlowsResponse_NodeStatus{NodeStatus: &relaypb.NodeStatusEvent{StateChange: relaypb.NodeState_NODE_CONNECTED}},
	}})
	out := t.TempDir()
	html := filepath.Join(out, "r.html")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no output", []string{"report", dir}, exitUsage, "missing -o/--output"},
		{"unknown extension", []string{"report", dir, "-o", filepath.Join(out, "r.pdf")}, exitUsage, "name the file .html or .md"},
		{"bad format", []string{"report", dir, "-o", html, "--format", "pdf"}, exitUsage, `--format "pdf"`},
		{"bad baseline", []string{"report", dir, "-o", html, "--baseline", "yesterday"}, exitUsage, "give SINCE..UNTIL"},
		{"baseline backwards", []string{"report", dir, "-o", html, "--baseline", "2026-11-25T13:00:00Z..2026-11-25T12:00:00Z"}, exitUsage, "SINCE before UNTIL"},
		{"bad bucket", []string{"report", dir, "-o", html, "--bucket", "1500ms"}, exitUsage, "--bucket 1.5s"},
		{"no flows", []string{"report", eventsOnly, "-o", html}, exitError, "holds no flows"},
		{"missing directory", []string{"report", filepath.Join(out, "nope"), "-o", html}, exitError, "no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantOneLineError(t, tc.args, tc.code, tc.want)
			if entries, _ := os.ReadDir(out); len(entries) > 0 {
				t.Errorf("a failed report left %s behind", entries[0].Name())
			}
		})
	}
}
