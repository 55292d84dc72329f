package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	relaypb "github.com/cilium/cilium/api/v1/relay"

	"github.com/flowtape/flowtape/internal/testutil"
)

// flowtape report writes the file its -o names, in the format of its
// extension (or --format), and nothing when it fails.
func TestReportWritesTheDocument(t *testing.T) {
	dir, _ := sampleRecording(t, "basic-sample-400-icmpv4-flows.json")
	out := t.TempDir()
	for _, tc := range []struct {
		args []string
		file string
		want string
	}{
		{[]string{"-o", filepath.Join(out, "r.html")}, "r.html", "<!DOCTYPE html>"},
		{[]string{"-o", filepath.Join(out, "r.md")}, "r.md", "# Postmortem: " + dir},
		{[]string{"-o", filepath.Join(out, "r.txt"), "--format", "markdown", "--title", "TCP <sample>"}, "r.txt", "# TCP &lt;sample&gt;"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var stderr strings.Builder
			if code := run(context.Background(), append([]string{"report", dir}, tc.args...), io.Discard, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			b, err := os.ReadFile(filepath.Join(out, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(b), tc.want) {
				t.Errorf("%s starts %q, want %q", tc.file, firstLine(string(b)), tc.want)
			}
			// An L3/L4-only capture still says something: connections.
			if !strings.Contains(string(b), "L3/L4 flows only") {
				t.Errorf("%s does not say the capture has no L7 data", tc.file)
			}
		})
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
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
