package importer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// importFiles imports inputs into a new recording under t's temp dir.
func importFiles(t *testing.T, o Options, inputs ...string) (string, Result) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rec")
	o.Inputs, o.Sink = inputs, tape.SinkOptions{Dir: dir, Writer: "flowtape test"}
	res, err := Import(context.Background(), o)
	if err != nil {
		t.Fatalf("import %v: %v", inputs, err)
	}
	return dir, res
}

// exportLines exports a recording and parses every line as Hubble does.
func exportLines(t *testing.T, o ExportOptions) []*observerpb.GetFlowsResponse {
	t.Helper()
	var out bytes.Buffer
	if _, err := Export(context.Background(), o, &out); err != nil {
		t.Fatalf("export %v: %v", o.Paths, err)
	}
	var rs []*observerpb.GetFlowsResponse
	for _, line := range bytes.Split(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		r := &observerpb.GetFlowsResponse{}
		if err := protojson.Unmarshal(line, r); err != nil {
			t.Fatalf("exported line does not parse: %v\n%s", err, line)
		}
		rs = append(rs, r)
	}
	return rs
}

// byTime is the order export promises: time, then input order.
func byTime(rs []*observerpb.GetFlowsResponse) []*observerpb.GetFlowsResponse {
	rs = slices.Clone(rs)
	slices.SortStableFunc(rs, func(a, b *observerpb.GetFlowsResponse) int {
		return a.GetTime().AsTime().Compare(b.GetTime().AsTime())
	})
	return rs
}

func kinds(rs []*observerpb.GetFlowsResponse) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		m[schema.EventKind(r)]++
	}
	return m
}

// Every real sample survives import and export line for line.
func TestSamplesRoundTrip(t *testing.T) {
	for _, name := range testutil.SampleFiles {
		t.Run(name, func(t *testing.T) {
			path := testutil.Testdata("samples", name)
			want := testutil.LoadResponses(t, path)
			dir, res := importFiles(t, Options{Strict: true}, path)
			got := exportLines(t, ExportOptions{Paths: []string{dir}})
			testutil.SameMessages(t, "responses after import and export", got, byTime(want))
			if res.Session.Totals.Flows != uint64(len(want)) {
				t.Errorf("manifest says %d flows, the file has %d", res.Session.Totals.Flows, len(want))
			}
			if k := kinds(got); k["flow"] != len(want) {
				t.Errorf("kinds %v, want %d flows", k, len(want))
			}
			sf := res.Source.Files[0]
			if sf.Format != string(FormatJSONPB) || sf.Lines != int64(len(want)) || sf.BadLines != 0 || len(sf.SHA256) != 64 {
				t.Errorf("source file %+v", sf)
			}
			m, err := tape.ReadManifest(dir)
			if err != nil || len(m.Sessions) != 1 || m.Sessions[0].Status != "complete" || m.Totals.Flows != uint64(len(want)) {
				t.Fatalf("manifest %+v, %v", m, err)
			}
		})
	}
}

// All samples at once, through stdin, gzip'd: one recording, time order
// across the files.
func TestSamplesTogetherFromStdin(t *testing.T) {
	var all []*observerpb.GetFlowsResponse
	var raw []byte
	for _, name := range testutil.SampleFiles {
		path := testutil.Testdata("samples", name)
		all = append(all, testutil.LoadResponses(t, path)...)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, b...)
	}
	dir, res := importFiles(t, Options{Stdin: bytes.NewReader(gzipBytes(t, raw)), Strict: true}, "-")
	if sf := res.Source.Files[0]; sf.Path != "-" || sf.Compression != "gzip" || sf.Flows != int64(len(all)) {
		t.Errorf("source %+v", sf)
	}
	testutil.SameMessages(t, "responses after import and export", exportLines(t, ExportOptions{Paths: []string{dir}}), byTime(all))
}

// A second import adds to an existing recording; both sessions show.
func TestImportAddsToRecording(t *testing.T) {
	a := testutil.Testdata("samples", "basic-sample-10-flows.json")
	b := testutil.Testdata("samples", "basic-sample-5-http-flows.json")
	dir, _ := importFiles(t, Options{}, a)
	if _, err := Import(context.Background(), Options{Inputs: []string{b}, Sink: tape.SinkOptions{Dir: dir}}); err != nil {
		t.Fatal(err)
	}
	m, err := tape.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Sessions) != 2 || m.Totals.Flows != 15 {
		t.Fatalf("sessions %d, flows %d; want 2 and 15", len(m.Sessions), m.Totals.Flows)
	}
	want := byTime(append(testutil.LoadResponses(t, a), testutil.LoadResponses(t, b)...))
	testutil.SameMessages(t, "responses after import and export", exportLines(t, ExportOptions{Paths: []string{dir}}), want)
	if entries, _ := os.ReadDir(dir); slices.ContainsFunc(entries, func(e os.DirEntry) bool { return strings.HasPrefix(e.Name(), ".staging") }) {
		t.Error("staging directory left behind")
	}
}
