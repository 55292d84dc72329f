// Package testutil holds helpers shared by flowtape's tests: locating the
// repository's testdata and loading Hubble JSON samples.
package testutil

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/encoding/protojson"
)

// Root is the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Testdata returns a path under the repository's testdata directory.
func Testdata(elem ...string) string {
	return filepath.Join(append([]string{Root(), "testdata"}, elem...)...)
}

// SampleFiles are the real Hubble captures copied from shared/samples.
var SampleFiles = []string{
	"basic-sample-10-flows.json",
	"basic-sample-5-http-flows.json",
	"basic-sample-5-dns-flows.json",
	"basic-sample-330-dns-flows.json",
	"basic-sample-400-tcp-flows.json",
	"basic-sample-400-icmpv4-flows.json",
}

// LoadResponses parses a file of GetFlowsResponse JSON lines.
func LoadResponses(t testing.TB, path string) []*observerpb.GetFlowsResponse {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []*observerpb.GetFlowsResponse
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		r := &observerpb.GetFlowsResponse{}
		if err := protojson.Unmarshal(sc.Bytes(), r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// SampleResponses are all the real captures' responses, file after file.
func SampleResponses(t testing.TB) []*observerpb.GetFlowsResponse {
	t.Helper()
	var out []*observerpb.GetFlowsResponse
	for _, name := range SampleFiles {
		out = append(out, LoadResponses(t, Testdata("samples", name))...)
	}
	return out
}

// Golden compares got with the golden file at path, or with update
// rewrites the file. rerun is the command that rewrites it, for the
// message.
func Golden(t testing.TB, path string, got []byte, update bool, rerun string) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (%s writes it)", err, rerun)
	}
	if !bytes.Equal(got, want) {
		out := filepath.Join(t.TempDir(), filepath.Base(path))
		_ = os.WriteFile(out, got, 0o644)
		t.Errorf("%s differs from what the test got, written to %s (%s rewrites it)", path, out, rerun)
	}
}
