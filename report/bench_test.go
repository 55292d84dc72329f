package report_test

import (
	"io"
	"testing"
	"time"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/benchdata"
	"github.com/flowtape/flowtape/report"
)

// BenchmarkReport10M writes the HTML report of a simulated incident
// recording (10M flows; FLOWTAPE_BENCH_REPORT_FLOWS overrides the count),
// from opening the recording to the last byte: the target is <= 10 s.
func BenchmarkReport10M(b *testing.B) {
	n := benchdata.FlowCount(b, "FLOWTAPE_BENCH_REPORT_FLOWS", 10_000_000)
	rec, _ := benchdata.Recording(b, n, false)
	var sec, peak float64
	measured := true
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := benchdata.ResetPeakRSS(); err != nil {
			// An unreset VmHWM is the generator's peak, not the report's.
			b.Logf("peak RSS not measured: %v", err)
			measured = false
		}
		b.StartTimer()
		start := time.Now()
		eng, err := analyze.Open(b.Context(), []string{rec}, analyze.Options{})
		if err != nil {
			b.Fatal(err)
		}
		r, err := report.Build(b.Context(), eng, []string{rec}, report.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := report.WriteHTML(io.Discard, r); err != nil {
			b.Fatal(err)
		}
		eng.Close()
		sec += time.Since(start).Seconds()
		if hwm, err := benchdata.ProcStatusMB("VmHWM"); err == nil {
			peak = max(peak, hwm)
		} else {
			measured = false
		}
	}
	b.ReportMetric(float64(n), "flows")
	b.ReportMetric(sec/float64(b.N), "report-s")
	if measured {
		b.ReportMetric(peak, "peak-RSS-MB")
	}
}
