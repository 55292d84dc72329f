package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowtape/flowtape/internal/testutil"
)

// The binary runs without libchdb.so: DuckDB analyses as ever, and
// --engine chdb says in one line what to install.
func TestRunsWithoutCHDB(t *testing.T) {
	bin := testutil.FlowtapeBinary(t)
	dir := filepath.Join(t.TempDir(), "rec")
	if _, stderr, code := runCmd(t, "import", testutil.Testdata("samples", "basic-sample-10-flows.json"), "-o", dir); code != 0 {
		t.Fatalf("import: exit %d: %s", code, stderr)
	}
	env := append(os.Environ(), "CHDB_LIB_PATH=", "HOME="+t.TempDir(), "XDG_CACHE_HOME="+t.TempDir())
	cmd := exec.Command(bin, "analyze", "services", dir)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "SERVICE") {
		t.Fatalf("analyze on DuckDB without libchdb.so: %v\n%s", err, out)
	}
	cmd = exec.Command(bin, "analyze", "services", dir, "--engine", "chdb")
	cmd.Env = env
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	msg := strings.TrimSpace(string(out))
	if err == nil || !strings.Contains(msg, "libchdb.so not found") || !strings.Contains(msg, "npm install @chdb/lib-linux-x64-gnu") ||
		strings.Contains(msg, "\n") {
		t.Errorf("--engine chdb without libchdb.so: %v: %s", err, msg)
	}
}

// The analyses on chDB through the binary: over a directory (file()) and
// over the same recording in an S3 bucket, read by ClickHouse's own s3()
// from the real S3 server, the output is byte-identical to DuckDB's.
func TestAnalyzeOnCHDB(t *testing.T) {
	testutil.NeedCHDB(t)
	if testing.Short() {
		t.Skip("runs an S3 server")
	}
	srv, _ := testutil.StartS3Bucket(t, "flows")
	sample := testutil.Testdata("samples", "basic-sample-400-tcp-flows.json")
	dir := filepath.Join(t.TempDir(), "rec")
	url := srv.URL("flows", "imported")
	if _, stderr, code := runCmd(t, "import", sample, "-o", dir); code != 0 {
		t.Fatalf("import -o %s: exit %d: %s", dir, code, stderr)
	}
	if out, stderr, code := runCmd(t, "import", sample, "-o", url, "--spool", filepath.Join(t.TempDir(), "spool")); code != 0 {
		t.Fatalf("import -o URL: exit %d:\n%s%s", code, out, stderr)
	}
	for _, name := range []string{"services", "graph", "errors", "coverage", "timeline"} {
		want, stderr, code := runCmd(t, "analyze", name, dir, "--format", "csv")
		if code != 0 {
			t.Fatalf("analyze %s DIR: exit %d: %s", name, code, stderr)
		}
		for _, rec := range []string{dir, url} {
			got, stderr, code := runCmd(t, "analyze", name, rec, "--format", "csv", "--engine", "chdb")
			if code != 0 {
				t.Fatalf("analyze %s %s --engine chdb: exit %d: %s", name, rec, code, stderr)
			}
			if got != want {
				t.Errorf("analyze %s %s --engine chdb:\n%s\nDuckDB:\n%s", name, rec, got, want)
			}
		}
	}
	// A namespace no flow has: the same list of the recording's.
	_, duckNote, _ := runCmd(t, "analyze", "errors", dir, "-n", "defualt")
	_, chNote, _ := runCmd(t, "analyze", "errors", dir, "-n", "defualt", "--engine", "chdb")
	if chNote != duckNote || !strings.Contains(duckNote, `namespace "defualt" (-n): its namespaces are `) {
		t.Errorf("-n defualt on chDB:\n%s\nDuckDB:\n%s", chNote, duckNote)
	}
	// A window without flows, and one that reaches past them: the same
	// notes on both engines.
	for _, w := range []struct{ since, until, note string }{
		{"2001-01-01T00:00:00Z", "2001-01-01T01:00:00Z", "holds none of the recording's flows"},
		{"2021-11-10T10:40:00Z", "2021-11-10T11:40:00Z", "reaches past the recording's flows"},
	} {
		args := []string{"analyze", "services", dir, "--since", w.since, "--until", w.until, "--format", "csv"}
		_, duckNote, duckCode := runCmd(t, args...)
		_, chNote, chCode := runCmd(t, append(args, "--engine", "chdb")...)
		if duckCode != 0 || chCode != 0 || chNote != duckNote || !strings.Contains(duckNote, w.note) {
			t.Errorf("window %s to %s: exit %d on chDB, %d on DuckDB:\n%s\nDuckDB:\n%s", w.since, w.until, chCode, duckCode, chNote, duckNote)
		}
	}
	// A report on chDB says what DuckDB's says; its appendix names the
	// engine and shows ClickHouse's SQL.
	body := func(md string) string { before, _, _ := strings.Cut(md, "## 7. Appendix"); return before }
	want, stderr, code := runCmd(t, "report", dir, "--format", "markdown", "-o", "-")
	if code != 0 {
		t.Fatalf("report DIR: exit %d: %s", code, stderr)
	}
	got, stderr, code := runCmd(t, "report", url, "--format", "markdown", "-o", "-", "--engine", "chdb")
	if code != 0 {
		t.Fatalf("report URL --engine chdb: exit %d: %s", code, stderr)
	}
	if body(strings.ReplaceAll(got, "s3://flows/imported", dir)) != body(want) || !strings.Contains(got, "--engine chdb") ||
		!strings.Contains(got, "countIf(") {
		t.Errorf("report --engine chdb:\n%s\nDuckDB:\n%s", got, want)
	}
	// query runs ClickHouse's SQL over the same views.
	out, stderr, code := runCmd(t, "query", url, "SELECT uniqExact(uuid) AS flows, countIf(verdict = 'FORWARDED') AS forwarded FROM flows",
		"--engine", "chdb", "--format", "csv")
	duck, _, _ := runCmd(t, "query", dir, "SELECT count(DISTINCT uuid) AS flows, count(*) FILTER (verdict = 'FORWARDED') AS forwarded FROM flows", "--format", "csv")
	if code != 0 || out != duck {
		t.Errorf("query --engine chdb: exit %d: %s%s; DuckDB: %s", code, out, stderr, duck)
	}
	// --sql prints the whole query, its parameters filled in, and no secret.
	out, _, code = runCmd(t, "analyze", "services", url, "--engine", "chdb", "--sql")
	if code != 0 || !strings.Contains(out, "s3('http") || !strings.HasPrefix(out, "WITH") || strings.Contains(out, srv.Secret) ||
		!strings.Contains(out, "<AWS_SECRET_ACCESS_KEY>") {
		t.Errorf("--sql with --engine chdb: exit %d:\n%.400s", code, out)
	}
	_, stderr, code = runCmd(t, "analyze", "services", dir, "--engine", "clickhouse", "--clickhouse", "clickhouse://default:secret@127.0.0.1:1/default")
	if code == 0 || strings.Contains(stderr, "secret") || !strings.Contains(stderr, "object storage") {
		t.Errorf("a directory for a ClickHouse server: exit %d: %s", code, stderr)
	}
	// A server that does not answer: one line naming it, without its password.
	_, stderr, code = runCmd(t, "analyze", "services", url, "--engine", "clickhouse", "--clickhouse", "clickhouse://default:secret@127.0.0.1:1/default")
	if code == 0 || strings.Contains(stderr, "secret") || !strings.Contains(stderr, "--clickhouse clickhouse://default:***@127.0.0.1:1") ||
		strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
		t.Errorf("a ClickHouse server that does not answer: exit %d: %s", code, stderr)
	}
}
