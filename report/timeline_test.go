package report

import (
	"testing"
	"time"
)

func steadyPoints(start time.Time, n int, requests int64, errRate float64) []Point {
	var out []Point
	for i := range n {
		out = append(out, Point{Start: start.Add(time.Duration(i) * 10 * time.Second), Flows: requests * 4, Requests: requests,
			Errors: int64(float64(requests) * errRate), ErrorRate: errRate})
	}
	return out
}

func TestFindIncident(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	steady := steadyPoints(t0, 30, 1000, 0.001)
	withTail := func(tail ...Point) []Point { return append(append([]Point{}, steady...), tail...) }
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 10 * time.Second) }
	bad := func(i int, rate float64) Point {
		return Point{Start: at(i), Flows: 4000, Requests: 1000, Errors: int64(1000 * rate), ErrorRate: rate}
	}
	dropping := func(i int, drops int64) Point {
		p := bad(i, 0.001)
		p.Drops = drops
		return p
	}
	for _, tc := range []struct {
		name     string
		tl       []Point
		baseline []Point
		want     int // bucket, -1: none
		end      int
		why      string
	}{
		{"steady", steady, nil, -1, 0, ""},
		{"a short last bucket is not an incident", withTail(Point{Start: at(30), Flows: 8, Requests: 3, Errors: 1, ErrorRate: 0.33}), steady[:20], -1, 0, ""},
		{"one noisy bucket is not an incident", withTail(bad(30, 0.2), bad(31, 0.001), bad(32, 0.001), bad(33, 0.001), bad(34, 0.001), bad(35, 0.001)), steady[:20], -1, 0, ""},
		{"errors from bucket 30, found from the data", withTail(bad(30, 0.2), bad(31, 0.25), bad(32, 0.22), bad(33, 0.3), bad(34, 0.2), bad(35, 0.2)), nil, 30, 35,
			"error rate 22.83% in the buckets from 13:05:00 to 13:05:50, 20.00% in the first; baseline 0.10%"},
		{"errors from bucket 30, against a baseline", withTail(bad(30, 0.2), bad(31, 0.25), bad(32, 0.22), bad(33, 0.001), bad(34, 0.001), bad(35, 0.001)), steady[:20], 30, 32,
			"error rate 22.33% in the buckets from 13:05:00 to 13:05:20, 20.00% in the first; baseline 0.10%"},
		// the drops' share is of their own buckets, not diluted by the
		// errors' that follow
		{"drops from bucket 30, errors from 33", withTail(dropping(30, 400), dropping(31, 400), bad(32, 0.001), bad(33, 0.3), bad(34, 0.3), bad(35, 0.3)), steady[:20], 30, 35,
			"dropped flows 10.00% in the buckets from 13:05:00 to 13:05:10, 10.00% in the first; baseline 0.00%"},
		{"a baseline after the incident", append([]Point{bad(-3, 0.3), bad(-2, 0.3), bad(-1, 0.3)}, steady...), steady[10:], 0, 2,
			"error rate 30.00% in the buckets from 12:59:30 to 12:59:50, 30.00% in the first; baseline 0.10%"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inc := findIncident(tc.tl, tc.baseline)
			switch {
			case tc.want < 0 && inc != nil:
				t.Errorf("incident at bucket %d (%s), want none", inc.Bucket, inc.Why)
			case tc.want >= 0 && inc == nil:
				t.Errorf("no incident, want one from bucket %d", tc.want)
			case tc.want >= 0 && (inc.Bucket != tc.want || inc.End != tc.end):
				t.Errorf("incident in buckets %d-%d, want %d-%d", inc.Bucket, inc.End, tc.want, tc.end)
			case tc.want >= 0 && inc.Why != tc.why:
				// the incident's share is of all its requests, not its
				// first bucket's
				t.Errorf("incident: %q, want %q", inc.Why, tc.why)
			}
		})
	}
}
