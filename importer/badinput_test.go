package importer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/tape"
)

func sampleLines(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(testutil.Testdata("samples", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Bad lines are reported with file and line and skipped; --strict stops.
func TestBadLines(t *testing.T) {
	lines := sampleLines(t, "basic-sample-10-flows.json")
	in := append([]string{}, lines[:3]...)
	in = append(in, `{"flow":{"time":"2021-06-16T16:52:13Z","verdict":7.5}}`, "", `{"flow": {"time": `, "garbage", "   ")
	in = append(in, lines[3:]...)
	path := writeFile(t, "mixed.json", []byte(strings.Join(in, "\n")))

	var logs bytes.Buffer
	dir, res := importFiles(t, Options{Log: slogTo(&logs)}, path)
	sf := res.Source.Files[0]
	if sf.BadLines != 3 || sf.Flows != 10 || res.Session.Totals.Flows != 10 {
		t.Fatalf("bad %d, flows %d; want 3 bad lines and 10 flows", sf.BadLines, sf.Flows)
	}
	for _, want := range []string{"line=4", "line=6", "line=7", "verdict"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, logs.String())
		}
	}
	if !strings.Contains(logs.String(), path) {
		t.Errorf("report does not name the file:\n%s", logs.String())
	}
	if got := exportLines(t, ExportOptions{Paths: []string{dir}}); len(got) != 10 {
		t.Errorf("exported %d flows, want 10", len(got))
	}

	out := filepath.Join(t.TempDir(), "strict")
	_, err := Import(context.Background(), Options{Inputs: []string{path}, Strict: true, Sink: tape.SinkOptions{Dir: out}})
	var le *LineError
	if !errors.As(err, &le) || le.Line != 4 || le.File != path {
		t.Fatalf("strict import: %v; want the error of line 4", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed import into a new directory left %s behind", out)
	}
}

// Empty and wrong files: one clear error, nothing written.
func TestUnusableInputs(t *testing.T) {
	parquet := filepath.Join(t.TempDir(), "x.parquet")
	if err := os.WriteFile(parquet, []byte("PAR1\x00\x00PAR1"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, content, want string
	}{
		{"empty.json", "", "the input is empty"},
		{"blank.json", "\n\n  \n", "the input is empty"},
		{"words.txt", "hello\nworld\n", `not Hubble JSON lines (line 1 starts with "hello")`},
		{"other.json", `{"foo": 1}` + "\n" + `{"time":"2026-01-01T00:00:00Z","process_exec":{}}`, "no Hubble flow or event in its 2 lines"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.name, []byte(tc.content))
			out := filepath.Join(t.TempDir(), "rec")
			_, err := Import(context.Background(), Options{Inputs: []string{path}, Sink: tape.SinkOptions{Dir: out}})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q; want one line naming %s with %q", err, path, tc.want)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s left behind", out)
			}
		})
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(t.TempDir(), "missing.json"), "no such file"},
		{t.TempDir(), "is a directory"},
		{parquet, "is a Parquet file"},
	} {
		_, err := Import(context.Background(), Options{Inputs: []string{tc.path}, Sink: tape.SinkOptions{Dir: filepath.Join(t.TempDir(), "rec")}})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("import %s: %v; want %q", tc.path, err, tc.want)
		}
	}
}

// A failed import into an existing recording leaves it as it was.
func TestFailedImportLeavesRecording(t *testing.T) {
	good := testutil.Testdata("samples", "basic-sample-10-flows.json")
	dir, _ := importFiles(t, Options{}, good)
	before := listTree(t, dir)
	bad := writeFile(t, "bad.json", []byte(strings.Join(sampleLines(t, "basic-sample-5-http-flows.json"), "\n")+"\nnot json\n"))
	if _, err := Import(context.Background(), Options{Inputs: []string{good, bad}, Strict: true, Sink: tape.SinkOptions{Dir: dir}}); err == nil {
		t.Fatal("strict import of a bad line succeeded")
	}
	if after := listTree(t, dir); after != before {
		t.Errorf("recording changed:\nbefore %s\nafter  %s", before, after)
	}
}

// listTree describes a directory by its entries and the content of its
// files.
func listTree(t *testing.T, dir string) string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		name := strings.TrimPrefix(p, dir)
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			name += fmt.Sprintf(":%x", sha256.Sum256(b))
		}
		names = append(names, name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(names, " ")
}

// Lines far beyond bufio.Scanner's 64 KiB limit, legacy flow-only lines,
// and members and enum names this build does not know.
func TestLongUnknownAndLegacyLines(t *testing.T) {
	lines := sampleLines(t, "basic-sample-5-http-flows.json")
	long := strings.Replace(lines[0], `"k8s:app=`, `"k8s:big=`+strings.Repeat("x", 300<<10)+`","k8s:app=`, 1)
	unknown := strings.Replace(lines[1], `"verdict":"FORWARDED"`,
		`"verdict":"FORWARDED","future_field":{"a":[1,2]},"drop_reason_desc":"FUTURE_DROP_REASON"`, 1)
	unknown = strings.Replace(unknown, `"http":{`, `"http":{"future_header":"v",`, 1)
	unknown = strings.Replace(unknown, `"node_name":`, `"future_top":true,"node_name":`, 1)
	// hubble observe -o json prints the bare flow.
	legacy := strings.TrimPrefix(lines[2], `{"flow":`)
	legacy = legacy[:strings.LastIndex(legacy, `,"node_name":`)]
	path := writeFile(t, "odd.json", []byte(strings.Join([]string{long, unknown, legacy}, "\n")))

	dir, res := importFiles(t, Options{Strict: true}, path)
	if res.Unknown != 4 || res.Source.Files[0].Format != "mixed" {
		t.Errorf("unknown %d, format %q; want 4 kept members and mixed", res.Unknown, res.Source.Files[0].Format)
	}
	var out bytes.Buffer
	if _, err := Export(context.Background(), ExportOptions{Paths: []string{dir}}, &out); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(got) != 3 {
		t.Fatalf("exported %d lines, want 3", len(got))
	}
	if len(got[0]) < 300<<10 {
		t.Errorf("long line came back %d bytes long", len(got[0]))
	}
	for _, want := range []string{`"future_field":{"a":[1,2]}`, `"future_header":"v"`, `"future_top":true`, `"drop_reason_desc":"FUTURE_DROP_REASON"`} {
		if !strings.Contains(got[1], want) {
			t.Errorf("kept member %s not exported:\n%s", want, got[1])
		}
	}
	if !jsonEqual(t, got[1], unknown) {
		t.Errorf("line with unknown members changed:\nin  %s\nout %s", unknown, got[1])
	}
	if !jsonEqual(t, got[2], lines[2]) {
		t.Errorf("legacy line not exported as its jsonpb form:\nwant %s\ngot  %s", lines[2], got[2])
	}
}

// A failure while moving an import into the recording moves back what was
// moved: the recording is as before.
func TestFailedPublishMovesBack(t *testing.T) {
	a := testutil.Testdata("samples", "basic-sample-10-flows.json")     // 2021-06-16
	b := testutil.Testdata("samples", "basic-sample-5-http-flows.json") // 2021-10-04
	dir, _ := importFiles(t, Options{}, a)
	// A file where the import's second partition must go.
	if err := os.WriteFile(filepath.Join(dir, "flows", "date=2021-10-04"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	before := listTree(t, dir)
	_, err := Import(context.Background(), Options{Inputs: []string{a, b}, Sink: tape.SinkOptions{Dir: dir}})
	if err == nil || errors.Is(err, tape.ErrPartial) {
		t.Fatalf("import: %v; want a failure that left nothing behind", err)
	}
	if after := listTree(t, dir); after != before {
		t.Errorf("recording changed:\nbefore %s\nafter  %s", before, after)
	}
	m, err := tape.ReadManifest(dir)
	if err != nil || len(m.Sessions) != 1 || m.Totals.Flows != 10 {
		t.Errorf("manifest after the failed import: %+v, %v", m, err)
	}
}
