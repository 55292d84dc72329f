package report

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/printer"
)

// Point is one bucket of the timeline analysis.
type Point struct {
	Start              time.Time
	Flows              int64
	Requests           int64
	Errors             int64
	ErrorRate          float64 // NaN without requests
	P99ms              float64 // NaN without requests
	Drops              int64
	PolicyDenies       int64
	ConnectionFailures int64
	LostEvents         int64
}

func points(t printer.Table) ([]Point, error) {
	var out []Point
	for _, row := range t.Records() {
		at, err := parseTime(row["bucket"])
		if err != nil {
			return nil, fmt.Errorf("timeline: %w", err)
		}
		out = append(out, Point{
			Start: at, Flows: analyze.IntCell(row["flows"]), Requests: analyze.IntCell(row["requests"]), Errors: analyze.IntCell(row["errors"]),
			ErrorRate: toFloat(row["error_rate"]), P99ms: toFloat(row["p99_ms"]), Drops: analyze.IntCell(row["drops"]),
			PolicyDenies: analyze.IntCell(row["policy_denies"]), ConnectionFailures: analyze.IntCell(row["connection_failures"]),
			LostEvents: analyze.IntCell(row["lost_events"]),
		})
	}
	return out, nil
}

// Incident is where the timeline departs from its baseline.
type Incident struct {
	Start  time.Time
	Bucket int    // index in the timeline of the first bucket that departed
	End    int    // of the last one
	Why    string // what departed, in words
}

// findIncident returns the first buckets whose error rate, or whose share
// of dropped flows, depart from the baseline: the baseline window's
// buckets when given (the buckets outside it are searched), else the
// buckets before the largest lasting shift in the timeline (a change
// point), if there is one. Buckets with fewer than minSample requests
// (flows, for drops) have no rate to depart with. A departure is more
// than four standard deviations above the baseline's mean and a margin
// that keeps a quiet baseline's noise from counting (one percentage point
// of errors, half a point of drops).
func findIncident(tl, baseline []Point) *Incident {
	// A share of a few requests or flows is noise, not a departure.
	errRate := func(p Point) float64 {
		if p.Requests < minSample || math.IsNaN(p.ErrorRate) {
			return math.NaN()
		}
		return p.ErrorRate
	}
	dropShare := func(p Point) float64 {
		if p.Flows < minSample {
			return math.NaN()
		}
		return float64(p.Drops) / float64(p.Flows)
	}
	type signal struct {
		name   string
		of     func(Point) float64
		margin float64
		// the signal's share over buckets: of all their requests (flows),
		// not a mean of the buckets' shares
		parts func(Point) (part, whole int64)
	}
	signals := []signal{
		{"error rate", errRate, 0.01, func(p Point) (int64, int64) { return p.Errors, p.Requests }},
		{"dropped flows", dropShare, 0.005, func(p Point) (int64, int64) { return p.Drops, p.Flows }},
	}

	// candidate says which buckets may depart: not the baseline's own.
	candidate := func(int) bool { return true }
	if baseline == nil {
		// Without a baseline, the earliest change point of either signal
		// splits the timeline into before (the baseline) and after.
		cut := -1
		for _, s := range signals {
			if k := changePoint(series(tl, s.of), s.margin); k > 0 && (cut < 0 || k < cut) {
				cut = k
			}
		}
		if cut < 0 {
			return nil
		}
		// The shift may have begun a bucket or two before the split:
		// those are searched, and left out of the baseline.
		baseline = tl[:max(cut-2, 1)]
	} else if len(baseline) > 0 {
		first, last := baseline[0].Start, baseline[len(baseline)-1].Start
		candidate = func(i int) bool { return tl[i].Start.Before(first) || tl[i].Start.After(last) }
	}
	best, end, firstEnd := -1, -1, -1
	var first signal
	for _, s := range signals {
		mean, sd, n := stats(series(baseline, s.of))
		if n < 2 {
			continue
		}
		limit := mean + math.Max(4*sd, s.margin)
		over := func(i int) (bool, bool) { // over the limit; known at all
			v := s.of(tl[i])
			return !math.IsNaN(v) && v > limit, !math.IsNaN(v)
		}
		for i := 0; i < len(tl); i++ {
			if o, _ := over(i); !o || !candidate(i) {
				continue
			}
			// One bucket over the limit is noise unless the next one
			// with a value is too (or there is none).
			next := true
			for j := i + 1; j < len(tl); j++ {
				if o, known := over(j); known {
					next = o
					break
				}
			}
			if !next {
				continue
			}
			// It lasts until two buckets with values in a row are back
			// under the limit.
			last, under := i, 0
			for j := i + 1; j < len(tl) && under < 2; j++ {
				switch o, known := over(j); {
				case o:
					last, under = j, 0
				case known:
					under++
				}
			}
			end = max(end, last)
			if best < 0 || i < best {
				best, first, firstEnd = i, s, last
			}
			break
		}
	}
	if best < 0 {
		return nil
	}
	// What departed first, as shares of all the requests (flows) of its
	// buckets over the limit and of the baseline's: the first bucket's
	// share alone reads as the incident's, and is not. (The incident may
	// last longer, for the other signal: its share is not diluted so.)
	share := func(ps []Point) float64 {
		var part, whole int64
		for _, p := range ps {
			a, b := first.parts(p)
			part, whole = part+a, whole+b
		}
		return float64(part) / float64(whole)
	}
	clock := func(i int) string { return tl[i].Start.UTC().Format("15:04:05") }
	why := fmt.Sprintf("%s %s in the bucket of %s; baseline %s", first.name, pct(first.of(tl[best])), clock(best), pct(share(baseline)))
	if firstEnd > best {
		why = fmt.Sprintf("%s %s in the buckets from %s to %s, %s in the first; baseline %s",
			first.name, pct(share(tl[best:firstEnd+1])), clock(best), clock(firstEnd), pct(first.of(tl[best])), pct(share(baseline)))
	}
	return &Incident{Start: tl[best].Start, Bucket: best, End: end, Why: why}
}

func series(tl []Point, of func(Point) float64) []float64 {
	out := make([]float64, len(tl))
	for i, p := range tl {
		out[i] = of(p)
	}
	return out
}

// changePoint returns the split k (1 <= k < len) that best separates the
// series into a lower mean before and a higher one after (a single-change
// likelihood ratio on the means), or -1 when the best shift is smaller
// than margin or not significant. NaNs (buckets without traffic) are
// skipped.
func changePoint(xs []float64, margin float64) int {
	var idx []int
	var vals []float64
	for i, x := range xs {
		if !math.IsNaN(x) {
			idx, vals = append(idx, i), append(vals, x)
		}
	}
	n := len(vals)
	if n < 6 {
		return -1
	}
	total := 0.0
	for _, v := range vals {
		total += v
	}
	best, bestScore := -1, 0.0
	left := 0.0
	for k := 1; k < n; k++ {
		left += vals[k-1]
		if k < 3 || n-k < 3 {
			continue
		}
		mb, ma := left/float64(k), (total-left)/float64(n-k)
		if ma-mb < margin {
			continue
		}
		score := (ma - mb) * math.Sqrt(float64(k*(n-k))/float64(n))
		if score > bestScore {
			best, bestScore = k, score
		}
	}
	if best < 0 {
		return -1
	}
	// Significant: the shift is large against the noise within the parts.
	_, sdb, _ := stats(vals[:best])
	_, sda, _ := stats(vals[best:])
	noise := math.Max(math.Max(sdb, sda), margin/4)
	if bestScore/noise < 4 {
		return -1
	}
	return idx[best]
}

// stats are the mean and standard deviation of the values that are not NaN.
func stats(xs []float64) (mean, sd float64, n int) {
	for _, x := range xs {
		if !math.IsNaN(x) {
			mean += x
			n++
		}
	}
	if n == 0 {
		return math.NaN(), math.NaN(), 0
	}
	mean /= float64(n)
	for _, x := range xs {
		if !math.IsNaN(x) {
			sd += (x - mean) * (x - mean)
		}
	}
	return mean, math.Sqrt(sd / float64(n)), n
}

func pct(f float64) string {
	if math.IsNaN(f) {
		return "-"
	}
	return strconv.FormatFloat(f*100, 'f', 2, 64) + "%"
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case float32:
		return float64(x)
	case nil:
		return math.NaN()
	}
	return float64(analyze.IntCell(v))
}

func toString(v any) string {
	if v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

func parseTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok || s == "" {
		return time.Time{}, fmt.Errorf("no time in %v", v)
	}
	return time.Parse(time.RFC3339Nano, s)
}
