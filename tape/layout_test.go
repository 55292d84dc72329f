package tape

import (
	"strings"
	"testing"
	"time"
)

// A per-node recorder's files carry its node: two nodes' recorders never
// name a file alike, and the names parse back to their session.
func TestNodeRecordingID(t *testing.T) {
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	seen := map[string]string{}
	for _, node := range []string{"gke-prod-pool-1-5f7c9d-abcd", "ip-10-0-1-17.eu-west-1.compute.internal", "kind-worker",
		"kind-worker2", strings.Repeat("a-very-long-node-name-", 10)} {
		id := NodeRecordingID(node)
		name := FileName(at, id, 1)
		if got, ok := parseFileName("flows/date=2026-12-04/hour=10/" + name); !ok || got != id {
			t.Errorf("%s: %s parses to %q, %v; want %q", node, name, got, ok, id)
		}
		if got, ok := parseFileName(pieceName(name, 3)); !ok || got != id {
			t.Errorf("%s: its piece parses to %q, %v", node, got, ok)
		}
		if len(name) > 120 {
			t.Errorf("%s: a name of %d bytes", node, len(name))
		}
		_, tail, _ := strings.Cut(id, "_")
		if other, dup := seen[tail]; dup {
			t.Errorf("%s and %s: the same node part %q", node, other, tail)
		}
		seen[tail] = node
	}
	if !strings.Contains(NodeRecordingID("kind-worker"), "_kind_worker") {
		t.Errorf("%s: the node's name is not in it", NodeRecordingID("kind-worker"))
	}
}
