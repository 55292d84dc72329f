package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// The demo records the simulator's incident and shows what a first look
// needs: the services, the graph, coverage, and the one destination
// outside the cluster that began talking with the incident.
func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rec")
	out, errOut, code := runCmd(t, "demo", "-o", dir, "--duration", "150s", "--rate", "200",
		"--start", "2026-11-25T13:00:00Z")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"== Services", "default/paymentservice",
		"== Dependency graph", "default/currencyservice",
		"== Coverage", "(all)",
		"== Traffic leaving the cluster that began with the incident (flowtape analyze egress --new-since 2026-11-25T13:02:00Z)",
		"flowtape analyze egress " + dir,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out)
		}
	}
	_, egress, _ := strings.Cut(out, "== Traffic leaving")
	egress, _, _ = strings.Cut(egress, "The recording is in")
	if lines := strings.Split(strings.TrimSpace(egress), "\n"); len(lines) != 3 ||
		!strings.Contains(lines[2], "default/currencyservice") || !strings.Contains(lines[2], "203.0.113.66") {
		t.Errorf("new egress since the incident: %q, want the header and currencyservice -> 203.0.113.66 alone", lines)
	}
}
