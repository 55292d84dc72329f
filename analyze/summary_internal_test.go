package analyze

import (
	"math"
	"testing"
	"time"

	"github.com/flowtape/flowtape/tape"
)

// The flow files' hour partitions bound an analysis's window (a flow lies
// in its own hour's): a recording of one hour is analysed exactly without
// reading the summaries to measure its span; a file outside the layout
// bounds nothing.
func TestPartitionSpan(t *testing.T) {
	h13 := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	file := func(h time.Time) string {
		return "rec/flows/" + tape.Partition(h) + "/" + tape.FileName(h, "abc", 1)
	}
	for _, tc := range []struct {
		name  string
		files []string
		p     Params
		want  time.Duration
	}{
		{"one hour", []string{file(h13), file(h13.Add(20 * time.Minute))}, Params{}, time.Hour},
		{"two hours", []string{file(h13.Add(time.Hour)), file(h13)}, Params{}, 2 * time.Hour},
		{"since within", []string{file(h13)}, Params{Since: h13.Add(45 * time.Minute)}, 15 * time.Minute},
		{"until within", []string{file(h13), file(h13.Add(time.Hour))}, Params{Until: h13.Add(30 * time.Minute)}, 30 * time.Minute},
		{"since before", []string{file(h13)}, Params{Since: h13.Add(-time.Hour)}, 2 * time.Hour},
		{"outside the layout", []string{file(h13), "elsewhere/x.parquet"}, Params{}, math.MaxInt64},
		{"no files", nil, Params{}, math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Engine{files: tape.Files{Flows: tc.files}}
			if got := e.partitionSpan(tc.p); got != tc.want {
				t.Errorf("partitionSpan = %v, want %v", got, tc.want)
			}
		})
	}
}
