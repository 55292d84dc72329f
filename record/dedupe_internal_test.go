package record

import (
	"fmt"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
)

// A resumed stream's flows are dropped when recorded already: by uuid, by
// the uuid's text where it is not a canonical one, and by content where a
// flow has none.
func TestDuplicateFlows(t *testing.T) {
	const id = "5d4f0c8e-3a2b-4c1d-9e8f-7a6b5c4d3e2f"
	cases := []struct {
		name        string
		first, then *flowpb.Flow
		dup         bool
	}{
		{"same uuid", &flowpb.Flow{Uuid: id, NodeName: "a"}, &flowpb.Flow{Uuid: id, NodeName: "b"}, true},
		{"other uuid", &flowpb.Flow{Uuid: id}, &flowpb.Flow{Uuid: "5d4f0c8e-3a2b-4c1d-9e8f-7a6b5c4d3e20"}, false},
		{"same text, not a canonical uuid", &flowpb.Flow{Uuid: "ABC-1"}, &flowpb.Flow{Uuid: "ABC-1", NodeName: "b"}, true},
		{"uppercase of a uuid is other text", &flowpb.Flow{Uuid: id}, &flowpb.Flow{Uuid: "5D4F0C8E-3A2B-4C1D-9E8F-7A6B5C4D3E2F"}, false},
		{"no uuid, same flow", &flowpb.Flow{NodeName: "a", Summary: "x"}, &flowpb.Flow{NodeName: "a", Summary: "x"}, true},
		{"no uuid, other flow", &flowpb.Flow{NodeName: "a", Summary: "x"}, &flowpb.Flow{NodeName: "a", Summary: "y"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{o: Options{ResumeOverlap: time.Second}, seen: newSeenFlows(time.Second)}
			if r.duplicate(tc.first, 1) {
				t.Fatal("the first flow is a duplicate")
			}
			if got := r.duplicate(tc.then, 2); got != tc.dup {
				t.Errorf("duplicate = %v, want %v", got, tc.dup)
			}
		})
	}
}

// The recorder remembers the flows of the last two resume overlaps, not
// every flow: at most a span (a quarter overlap) more than those.
func TestDuplicateForgetsOldFlows(t *testing.T) {
	r := &recorder{o: Options{ResumeOverlap: time.Second}, seen: newSeenFlows(time.Second)}
	const perSecond = 20_000
	window := 2*perSecond + 1 // flows within 2 x ResumeOverlap, both ends
	most := 0
	for i := 0; i < 30*perSecond; i++ {
		at := int64(i) * int64(time.Second) / perSecond
		r.last = at
		if r.duplicate(&flowpb.Flow{Uuid: fmt.Sprintf("00000000-0000-4000-8000-%012x", i)}, at) {
			t.Fatalf("flow %d is a duplicate", i)
		}
		most = max(most, r.seen.len())
	}
	if bound := window + perSecond/seenSpans; most > bound {
		t.Errorf("it remembered up to %d flows, want at most %d (those of two overlaps, and a span more)", most, bound)
	}
	// the flows of the last two overlaps are still known, the oldest too
	last := 30*perSecond - 1
	for _, i := range []int{last, last - perSecond, last - 2*perSecond} {
		at := int64(i) * int64(time.Second) / perSecond
		if !r.duplicate(&flowpb.Flow{Uuid: fmt.Sprintf("00000000-0000-4000-8000-%012x", i)}, at) {
			t.Errorf("flow %d, %s before the last, was forgotten", i, time.Duration(r.last-at))
		}
	}
}

// What a resumed stream sends again is known: the flows a previous
// session's files hold, a late flow (older than the newest, within two
// overlaps), flows of time 0 and before 1970; and a flow from far in the
// future, which holds the newest there, leaves nothing growing.
func TestDuplicateKeepsResumedAndLateFlows(t *testing.T) {
	sec := int64(time.Second)
	flow := func(i int) *flowpb.Flow { return &flowpb.Flow{Uuid: fmt.Sprintf("00000000-0000-4000-8000-%012x", i)} }
	newRecorder := func() *recorder {
		return &recorder{o: Options{ResumeOverlap: time.Second}, seen: newSeenFlows(time.Second)}
	}
	// record handles a flow as the recorder does: the newest moves on
	// once a flow is written
	record := func(r *recorder, i int, at int64) bool {
		dup := r.duplicate(flow(i), at)
		if !dup && at > r.last {
			r.last = at
		}
		return dup
	}

	r := newRecorder()
	// a previous session's last second of flows (resumeFrom), then the
	// resumed stream's new flows, then what it sends again
	for i := range 10 {
		r.seen.add(flowKey(flow(i)), 100*sec-int64(i)*sec/10, 0)
	}
	for i, at := range []int64{100*sec + sec/2, 101*sec + sec/5} {
		if record(r, 100+i, at) {
			t.Fatalf("new flow %d is a duplicate", 100+i)
		}
	}
	for i := range 10 {
		if !record(r, i, 100*sec-int64(i)*sec/10) {
			t.Errorf("flow %d of the previous session, sent again, is not a duplicate", i)
		}
	}
	// a late flow, 1.5 s older than the newest, and it again
	if late := r.last - 3*sec/2; record(r, 200, late) || !record(r, 200, late) {
		t.Error("a late flow is not known as new, then as sent again")
	}

	r = newRecorder()
	for _, at := range []int64{0, -1, -sec} {
		if record(r, int(-at), at) || !record(r, int(-at), at) {
			t.Errorf("a flow at %d ns is not known as new, then as sent again", at)
		}
	}

	r = newRecorder()
	record(r, 0, 1_000_000*sec) // far in the future
	for i := 1; i <= 50_000; i++ {
		if record(r, i, 100*sec+int64(i)*sec/20_000) {
			t.Fatalf("flow %d is a duplicate", i)
		}
	}
	if n := r.seen.len(); n > 1 {
		t.Errorf("behind a flow from the future, %d flows are remembered, want only it", n)
	}
}
