package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowtape/flowtape/internal/testutil"
)

func importSamples(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "samples")
	args := []string{"import", "-o", dir}
	for _, name := range testutil.SampleFiles {
		args = append(args, testutil.Testdata("samples", name))
	}
	if out, errOut, code := runCmd(t, args...); code != 0 || !strings.Contains(out, "imported 768 flows") {
		t.Fatalf("flowtape import: exit %d\n%s%s", code, out, errOut)
	}
	return dir
}

// The real hubble CLI reads what export writes: the same flows, and its
// own filters select the same flows as export's.
func TestExportReadByHubbleCLI(t *testing.T) {
	dir := importSamples(t)
	file := filepath.Join(t.TempDir(), "flows.json")
	if out, errOut, code := runCmd(t, "export", dir, "-o", file); code != 0 {
		t.Fatalf("flowtape export: exit %d\n%s%s", code, out, errOut)
	}
	exported, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ours := jsonpbFlows(t, exported)
	theirs := jsonpbFlows(t, hubble(t, "observe", "--input-file", file, "--all", "-o", "jsonpb"))
	if len(ours) != 768 || len(theirs) != len(ours) {
		t.Fatalf("export wrote %d flows, hubble observe --input-file printed %d; want 768", len(ours), len(theirs))
	}
	testutil.SameMessages(t, "export against hubble's reading of it", ours, theirs)
	for _, filter := range [][]string{
		{"--namespace", "kube-system"},
		{"--not", "--namespace", "kube-system"},
		{"--verdict", "FORWARDED", "--protocol", "tcp", "--to-port", "9080"},
		{"--type", "l7", "--http-method", "GET"},
		{"--since", "2021-10-04T14:00:00Z", "--until", "2021-10-04T15:00:00Z"},
	} {
		out, errOut, code := runCmd(t, append([]string{"export", dir}, filter...)...)
		if code != 0 {
			t.Fatalf("export %v: exit %d: %s", filter, code, errOut)
		}
		want := jsonpbFlows(t, hubble(t, append([]string{"observe", "--input-file", file, "--all", "-o", "jsonpb"}, filter...)...))
		got := jsonpbFlows(t, []byte(out))
		if len(want) == 0 || len(got) != len(want) {
			t.Errorf("export %v: %d flows; hubble observe --input-file with the same filters: %d", filter, len(got), len(want))
		}
	}
}

// The binary, as users run it: stdin, progress and summary, and one-line
// errors with the documented exit codes.
func TestImportCommand(t *testing.T) {
	bin := testutil.FlowtapeBinary(t)
	sample, err := os.ReadFile(testutil.Testdata("samples", "basic-sample-400-tcp-flows.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "rec")
	cmd := exec.Command(bin, "import", "-", "-o", dir)
	cmd.Stdin = bytes.NewReader(sample)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "imported 400 flows and 0 events from 400 lines of 1 file(s)") {
		t.Fatalf("import from stdin: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"import", "missing.json", "-o", filepath.Join(t.TempDir(), "x")}, 1, "missing.json: no such file or directory"},
		{[]string{"import", testutil.Testdata("samples", "basic-sample-10-flows.json")}, 2, "-o DIR is required"},
		{[]string{"import", "-o", "x"}, 2, "requires at least 1 arg"},
		{[]string{"export", filepath.Join(t.TempDir(), "nothing")}, 1, "no such file or directory"},
		{[]string{"export", dir, "--format", "csv"}, 2, "only jsonpb"},
		{[]string{"export", dir, "--since", "yesterday-ish"}, 2, "invalid --since"},
		{[]string{"export", t.TempDir()}, 1, "not a flowtape recording"},
	} {
		stderr, code := runProcess(t, bin, tc.args...)
		msg := strings.TrimSpace(stderr)
		if code != tc.code || !strings.Contains(msg, tc.want) || strings.Count(msg, "\n") > 0 {
			t.Errorf("flowtape %s: exit %d, stderr %q; want exit %d and one line with %q", strings.Join(tc.args, " "), code, msg, tc.code, tc.want)
		}
	}
}

// Ctrl-C while reading a quiet pipe: the import stops at once and leaves
// nothing behind.
func TestImportInterruptedOnQuietPipe(t *testing.T) {
	bin := testutil.FlowtapeBinary(t)
	dir := filepath.Join(t.TempDir(), "rec")
	cmd := exec.Command(bin, "import", "-", "-o", dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sample, _ := os.ReadFile(testutil.Testdata("samples", "basic-sample-10-flows.json"))
	if _, err := stdin.Write(sample); err != nil {
		t.Fatal(err)
	}
	// Interrupted once it has read the start of its input and made the
	// recording directory to import into.
	testutil.Eventually(t, 20*time.Second, "import starts", func() bool {
		_, err := os.Stat(dir)
		return err == nil
	})
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("interrupted import exited 0: %s", stderr.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("import did not stop on SIGINT while its input pipe was quiet")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("interrupted import left %s", dir)
	}
}
