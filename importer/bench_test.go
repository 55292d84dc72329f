package importer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/flowtape/flowtape/internal/observer"
	"github.com/flowtape/flowtape/internal/testutil"
)

// BenchmarkImport compares, in one run and on the same large jsonpb file,
// `flowtape import` with `hubble observe --input-file F -o jsonpb >
// /dev/null`, both as processes. FLOWTAPE_BENCH_IMPORT_FLOWS sets the
// file's size in flows (default 50k, about 110 MB).
func BenchmarkImport(b *testing.B) {
	n := 50_000
	if v, err := strconv.Atoi(os.Getenv("FLOWTAPE_BENCH_IMPORT_FLOWS")); err == nil && v > 0 {
		n = v
	}
	file := filepath.Join(b.TempDir(), "flows.json")
	writeJSONPB(b, file, n)
	fi, err := os.Stat(file)
	if err != nil {
		b.Fatal(err)
	}
	mb := float64(fi.Size()) / 1e6
	flowtape, hubble := testutil.FlowtapeBinary(b), testutil.Tool(b, "hubble")

	var ftSec, noDerivedSec, hbSec float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out := filepath.Join(b.TempDir(), "rec")
		ftSec += timeCmd(b, exec.Command(flowtape, "import", file, "-o", out))
		hbSec += timeCmd(b, exec.Command(hubble, "observe", "--input-file", file, "--all", "-o", "jsonpb"))
		out = filepath.Join(b.TempDir(), "rec")
		noDerivedSec += timeCmd(b, exec.Command(flowtape, "import", file, "-o", out, "--derived=false"))
	}
	ftSec, noDerivedSec, hbSec = ftSec/float64(b.N), noDerivedSec/float64(b.N), hbSec/float64(b.N)
	b.ReportMetric(float64(n)/noDerivedSec, "import-no-derived-flows/s")
	b.ReportMetric(ftSec/noDerivedSec, "derived-time-ratio")
	b.ReportMetric(mb/ftSec, "import-MB/s")
	b.ReportMetric(float64(n)/ftSec, "import-flows/s")
	b.ReportMetric(mb/hbSec, "hubble-MB/s")
	b.ReportMetric(float64(n)/hbSec, "hubble-flows/s")
	b.ReportMetric(hbSec/ftSec, "import/hubble")
}

func timeCmd(b *testing.B, c *exec.Cmd) float64 {
	b.Helper()
	var stderr bytes.Buffer
	c.Stdout, c.Stderr = nil, &stderr // stdout: /dev/null
	start := time.Now()
	if err := c.Run(); err != nil {
		b.Fatalf("%s: %v\n%s", c, err, stderr.String())
	}
	return time.Since(start).Seconds()
}

// writeJSONPB writes n simulated flows as hubble observe -o jsonpb does.
func writeJSONPB(b *testing.B, path string, n int) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	enc := json.NewEncoder(w)
	for _, fl := range incidentFlows(n) {
		if err := enc.Encode(observer.FlowResponse(fl)); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}
