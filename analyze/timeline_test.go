package analyze_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/sim"
)

// An --until on a bucket's start ends the timeline with the bucket before
// it: the bucket that starts there would hold only the window's last
// instant, an empty row that reads as traffic stopping. Every flow of the
// window is still in a listed bucket.
func TestTimelineEndsWithTheWindow(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	testutil.WriteRecording(t, dir, "steady", testutil.SimResponses(sim.Scenarios["steady"], 3, 20, start, start.Add(5*time.Minute)))
	for _, tc := range []struct {
		name    string
		until   time.Time
		buckets []string
	}{
		{"until on a bucket's start", start.Add(3 * time.Minute), []string{"13:01", "13:02"}},
		{"until inside a bucket", start.Add(3*time.Minute + 30*time.Second), []string{"13:01", "13:02", "13:03"}},
	} {
		for _, summaries := range []string{analyze.SummariesNever, analyze.SummariesAlways} {
			t.Run(tc.name+"/"+summaries, func(t *testing.T) {
				p := analyze.Params{Since: start.Add(time.Minute), Until: tc.until, Bucket: time.Minute, Summaries: summaries}
				got, err := open(t, dir).Run(ctx, "timeline", p)
				if err != nil {
					t.Fatal(err)
				}
				var buckets []string
				var flows int64
				for _, r := range got.Rows {
					buckets = append(buckets, fmt.Sprint(r[0])[11:16]) // RFC 3339, UTC
					flows += analyze.IntCell(r[1])
				}
				if fmt.Sprint(buckets) != fmt.Sprint(tc.buckets) {
					t.Errorf("buckets %v, want %v", buckets, tc.buckets)
				}
				want := count(t, open(t, dir), fmt.Sprintf("SELECT count(*) FROM flows WHERE time BETWEEN TIMESTAMP_NS '%s' AND TIMESTAMP_NS '%s'",
					p.Since.Format("2006-01-02 15:04:05.999999999"), p.Until.Format("2006-01-02 15:04:05.999999999")))
				// (the summaries count whole minutes: a window inside one
				// is widened to it)
				if (flows != want || flows == 0) && (summaries == analyze.SummariesNever || tc.until.Second() == 0) {
					t.Errorf("the buckets hold %d flows, the window %d", flows, want)
				}
			})
		}
	}
}
