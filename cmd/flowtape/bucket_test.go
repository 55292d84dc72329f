package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowtape/flowtape/internal/testutil"
)

// Every reader takes a bucket URL as it takes a directory, and answers
// alike: a sample imported into a real S3 server (versitygw, tools/s3) with
// import -o URL and into a directory; analyze, query, export and report of
// each print the same, and replay serves the same flows.
func TestCommandsReadBucketURLs(t *testing.T) {
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
	out, stderr, code := runCmd(t, "import", sample, "-o", url, "--spool", filepath.Join(t.TempDir(), "spool"))
	if code != 0 || !strings.Contains(out+stderr, "is drained") {
		t.Fatalf("import -o URL: exit %d, the spool not drained:\n%s%s", code, out, stderr)
	}
	cache := filepath.Join(t.TempDir(), "cache")
	// REC stands for the recording: the directory, then the URL.
	for _, args := range [][]string{
		{"analyze", "services", "REC", "--format", "csv"},
		{"analyze", "coverage", "REC", "--format", "csv"},
		{"query", "REC", "SELECT count(*) AS flows, count(DISTINCT uuid) AS uuids, min(time) AS first, max(time) AS last FROM flows", "--format", "csv"},
		{"export", "REC"},
		{"report", "REC", "--format", "markdown", "-o", "-"},
	} {
		name := strings.Join(args[:2], " ")
		with := func(rec string, extra ...string) []string {
			out := make([]string, 0, len(args)+len(extra))
			for _, a := range args {
				if a == "REC" {
					a = rec
				}
				out = append(out, a)
			}
			return append(out, extra...)
		}
		t.Run(name, func(t *testing.T) {
			local, stderr, code := runCmd(t, with(dir)...)
			if code != 0 {
				t.Fatalf("%s DIR: exit %d: %s", name, code, stderr)
			}
			remote, stderr, code := runCmd(t, with(url, "--cache-dir", cache)...)
			if code != 0 {
				t.Fatalf("%s URL: exit %d: %s", name, code, stderr)
			}
			// A report names what it read.
			remote = strings.ReplaceAll(remote, "s3://flows/imported", dir)
			if remote != local || local == "" {
				t.Errorf("%s of the bucket differs from the directory's:\n--- bucket\n%s\n--- directory\n%s", name, remote, local)
			}
		})
	}
	_, localBanner := startReplay(t, dir)
	_, remoteBanner := startReplay(t, url, "--cache-dir", cache)
	servingOf := func(banner string) string {
		for _, line := range strings.Split(banner, "\n") {
			if strings.Contains(line, "serving") {
				serving, _, _ := strings.Cut(line[strings.Index(line, "serving"):], " on ")
				return serving
			}
		}
		return ""
	}
	if l, r := servingOf(localBanner), servingOf(remoteBanner); l == "" || l != r {
		t.Errorf("replay of the bucket: %q, of the directory: %q", r, l)
	}
}
