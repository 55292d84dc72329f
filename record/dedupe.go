package record

import (
	"hash/fnv"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/protobuf/proto"

	"github.com/flowtape/flowtape/schema"
)

// duplicate reports whether a flow was recorded already (a resumed stream
// starts ResumeOverlap before the last recorded flow), and remembers it.
func (r *recorder) duplicate(f *flowpb.Flow, at int64) bool {
	return r.seen.add(flowKey(f), at, r.last)
}

// seenFlows is what the recorder remembers to drop the flows a resumed
// stream sends again: the keys of the flows of the last two resume
// overlaps of flow time (20 s: 400k flows at 20k flows/s), and less than
// two spans (a quarter overlap each) more.
//
// What: one set of keys per span of flow time (a generation), the flow
// looked up in the set of its own time's span only, and forgetting is
// dropping, whenever a new set is made, the sets whose span ended before
// the newest flow's time less two overlaps. A flow older than that is not
// remembered at all (a resumed stream starts one overlap before the
// newest): a flow from far in the future, which holds the newest there,
// leaves no set growing.
//
// Why: a flow sent again is the same event, with the same time (to the
// nanosecond, in the files a resumed session reads as well), so it is in
// that span's set. One map of key -> time, whose survivors were copied to
// a new map every quarter window, held 24 bytes a slot and, while
// copying, both maps: 11-28 MB in heap profiles at 20k flows/s (record
// --max-flows 600000 from flowtape sim --rate 20000 --speed max), and each
// flow was copied about four times; these sets held 9 MB.
//
// The trade-off: a flow sent again with another time (no Hubble does) is
// not known as one. Guarded by TestDuplicateFlows,
// TestDuplicateForgetsOldFlows, TestDuplicateKeepsResumedAndLateFlows and
// the resume tests (TestRecordResumesAfterServerRestart,
// TestRecorderRestartResumes).
type seenFlows struct {
	keep, span int64 // ns
	gens       map[int64]map[flowID]struct{}
}

// seenSpans is how many spans an overlap has.
const seenSpans = 4

func newSeenFlows(overlap time.Duration) *seenFlows {
	span := max(int64(overlap)/seenSpans, 1)
	return &seenFlows{keep: 2 * int64(overlap), span: span, gens: map[int64]map[flowID]struct{}{}}
}

// add reports whether the flow key of time at was seen, and remembers it;
// last is the time of the newest flow recorded (0 before the first).
func (s *seenFlows) add(key flowID, at, last int64) bool {
	g := floorDiv(at, s.span)
	set := s.gens[g]
	if _, ok := set[key]; ok {
		return true
	}
	horizon := last - s.keep
	if (g+1)*s.span <= horizon {
		return false // older than what is kept
	}
	if set == nil {
		// the only time the sets grow in number: forget the old ones
		for old := range s.gens {
			if (old+1)*s.span <= horizon {
				delete(s.gens, old)
			}
		}
		set = map[flowID]struct{}{}
		s.gens[g] = set
	}
	set[key] = struct{}{}
	return false
}

// len is how many flows it remembers.
func (s *seenFlows) len() int {
	n := 0
	for _, set := range s.gens {
		n += len(set)
	}
	return n
}

// floorDiv is a / b rounded down (b > 0): the span of a time before 1970
// too.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// flowID is a flow's key for deduplication: the 16 bytes of its uuid, or
// a hash. Not its uuid's text: a 36-byte string key cost about 80 bytes a
// flow with its map slot, and a pointer for the collector to follow; an
// array key about 20 with its slot (9 MB for 400-450k flows), in slots
// that hold no pointer.
type flowID [16]byte

// flowKey names a flow for deduplication: its uuid, else a hash of it (of
// a uuid that is not one, or of the whole flow).
func flowKey(f *flowpb.Flow) flowID {
	key := f.GetUuid()
	if id, ok := schema.UUIDBytes(key); ok {
		return id
	}
	var b []byte
	if key != "" {
		b = []byte(key)
	} else {
		b, _ = proto.MarshalOptions{Deterministic: true}.Marshal(f)
	}
	h := fnv.New128a()
	h.Write(b)
	return flowID(h.Sum(nil))
}
