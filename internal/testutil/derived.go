package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// derivedQueries read the derived tables through the views the analyses
// read, in a canonical order: two recordings of the same flows answer
// them alike however their derived files were cut (per flush, per file,
// per reindex batch).
var derivedQueries = []string{
	"SELECT * EXCLUDE (latency_bucket) FROM requests ORDER BY ALL",
	"SELECT * FROM connections ORDER BY ALL",
	`SELECT bucket, node_name, type, verdict, drop_reason_desc, drop_reason, l4_protocol, l7_protocol, l7_type, is_reply,
		source, source_namespace, source_pod, destination, destination_namespace, destination_pod, destination_service,
		destination_port, sum(flows), sum(tcp_resets), sum(dns_errors), min(first_time), max(last_time)
	 FROM traffic GROUP BY ALL ORDER BY ALL`,
	"SELECT * FROM pods ORDER BY ALL",
}

// DerivedViews is what the views over the derived tables of the recording
// in dir hold (flowtape query, as CSV).
func DerivedViews(t testing.TB, bin, dir string) string {
	t.Helper()
	// One query, one process: each row as JSON, in the queries' order.
	parts := make([]string, len(derivedQueries))
	for i, q := range derivedQueries {
		parts[i] = "SELECT " + strconv.Itoa(i) + " AS q, to_json(x)::VARCHAR AS row FROM (" + q + ") x"
	}
	q := "SELECT row FROM (" + strings.Join(parts, " UNION ALL ") + ") ORDER BY q, row"
	out, err := exec.Command(bin, "query", dir, q, "--format", "csv").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("flowtape query %s: %v\n%s", dir, err, stderr)
	}
	return string(out)
}

// DerivedAsReindexed fails the test unless the derived tables of the
// recording in dir say what those derived again from its flow files
// (flowtape reindex --force of a copy) say.
func DerivedAsReindexed(t testing.TB, bin, dir string) {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "reindexed")
	if err := os.CopyFS(cp, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "reindex", "--force", cp).CombinedOutput(); err != nil {
		t.Fatalf("flowtape reindex --force: %v\n%s", err, out)
	}
	got, want := DerivedViews(t, bin, dir), DerivedViews(t, bin, cp)
	if got != want {
		t.Fatalf("the derived tables of %s differ from those derived again from its flows:\n%s", dir, firstDiff(got, want))
	}
}

// firstDiff shows the first line where two texts differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n got  " + a + "\n want " + b
		}
	}
	return ""
}
