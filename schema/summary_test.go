package schema

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// Every latency is within SketchRelativeError of the value of its bucket,
// across the range of latencies proxies report (1 µs to an hour).
func TestSketchRelativeError(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		ns := uint64(math.Exp(r.Float64()*math.Log(3.6e12/1e3))) * 1000
		if ns == 0 {
			continue
		}
		v := SketchValue(SketchBucket(ns))
		if e := math.Abs(v-float64(ns)) / float64(ns); e > SketchRelativeError*(1+1e-9) {
			t.Fatalf("%d ns: bucket value %f, %.4f%% off", ns, v, e*100)
		}
	}
	// order-preserving: a larger latency never falls in a smaller bucket
	for ns := uint64(1); ns < 1e12; ns = ns*3/2 + 1 {
		if SketchBucket(ns) > SketchBucket(ns+1) {
			t.Fatalf("bucket of %d > bucket of %d", ns, ns+1)
		}
	}
}

// A file's hour rows are the sums of its minute rows (counts and sketch),
// and AddRows merges minute rows of equal keys: what readers of either
// grain, and of merged summaries, rely on.
func TestSummaryHoursAddUp(t *testing.T) {
	const minute = int64(60e9)
	hour := int64(1_800_000) * minute / 30 * 30 // a whole hour
	var set SummarySet
	var rows []Summary
	for m := range int64(3) {
		rows = append(rows, Summary{Bucket: hour + m*minute, Grain: GrainMinute, Part: PartRequests, Reporter: "server",
			SeenByServer: True, Protocol: "http", Source: "a", Destination: "b", Requests: 10 + m, Errors: m,
			LatencyBuckets: []int32{100, 101 + int32(m)}, LatencyCounts: []uint64{4, 6 + uint64(m)}, MaxLatencyNs: uint64(1000 + m),
			FirstTime: hour + m*minute + 1, LastTime: hour + m*minute + 2})
		if m > 0 {
			r := &rows[len(rows)-1]
			r.FailureStatuses, r.FailureCounts = []int32{-1, 503}, []uint64{1, uint64(m) - 1}
			r.FirstFailure, r.LastFailure, r.HasFailure = hour+m*minute+5, hour+m*minute+7, true
		}
	}
	set.AddRows(rows)
	set.AddRows(rows[:1]) // the same minute again: added up
	out := set.Rows()
	if len(out) != 4 || out[0].Grain != GrainHour {
		t.Fatalf("%d rows (first %s), want the hour row first, then 3 minute rows", len(out), out[0].Grain)
	}
	h := out[0]
	if h.Bucket != hour || h.Requests != 10+10+11+12 || h.Errors != 0+1+2 || h.MaxLatencyNs != 1002 ||
		h.FirstTime != hour+1 || h.LastTime != hour+2*minute+2 {
		t.Errorf("hour row %+v", h)
	}
	want := map[int32]uint64{100: 16, 101: 12, 102: 7, 103: 8}
	for i, b := range h.LatencyBuckets {
		if h.LatencyCounts[i] != want[b] {
			t.Errorf("bucket %d: %d, want %d", b, h.LatencyCounts[i], want[b])
		}
	}
	if len(h.LatencyBuckets) != len(want) {
		t.Errorf("buckets %v, want %v", h.LatencyBuckets, want)
	}
	if !slices.Equal(h.FailureStatuses, []int32{-1, 503}) || !slices.Equal(h.FailureCounts, []uint64{2, 1}) ||
		!h.HasFailure || h.FirstFailure != hour+minute+5 || h.LastFailure != hour+2*minute+7 {
		t.Errorf("hour row's failures: %v %v from %d to %d (%v)", h.FailureStatuses, h.FailureCounts, h.FirstFailure, h.LastFailure, h.HasFailure)
	}
	if out[1].HasFailure || out[1].FailureStatuses != nil {
		t.Errorf("first minute has failures: %+v", out[1])
	}
	if out[1].Requests != 20 {
		t.Errorf("first minute: %d requests, want 20 (added twice)", out[1].Requests)
	}
}
