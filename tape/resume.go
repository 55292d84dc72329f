package tape

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"

	"github.com/flowtape/flowtape/schema"
)

// A recorder restarted into its directory (a pod restarted, a process
// killed) resumes where its previous session stopped, as it does after a
// reconnect: from the newest flow recorded, less an overlap, with the flows
// of the overlap known so that none is written twice, and with each
// node's newest flow and where its last recorded gap ended, so that what
// the ring buffers overwrote meanwhile is counted as lost, once (record's
// gap detection). Guarded by record's
// TestRecorderRestartResumes.

// ResumePoint is where a previous session stopped.
type ResumePoint struct {
	Session string    // the recording id of the session of the newest flow
	First   time.Time // the stream's oldest flow here
	Last    time.Time // the stream's newest flow
	// Nodes is each node's newest flow (from the overlap's flows, and the
	// sessions' derived traffic files for nodes quiet in the overlap).
	Nodes map[string]time.Time
	// Flows are the flows within the overlap (key -> time, ns), by the
	// caller's key of a flow.
	Flows map[string]int64
	// Counted is, for each node, where the last gap the sessions recorded
	// ended past its newest flow (Session.RingGapsEnd): a recorder that
	// stopped while a gap was open recorded it up to the ring's oldest
	// flow (record's closeGaps); the next session's gap starts there, so
	// that the span is not counted twice. (Not from the lost events in
	// the files: Hubble's own carry the wall-clock time of its counter,
	// and in a bucket's spool the events files are gone.)
	Counted map[string]time.Time
}

// LastSession reads where the stopped sessions of dir that recorded from
// server with the same filters stopped; ok is false when there is none,
// or they recorded no flow. key names a flow in Flows.
func LastSession(ctx context.Context, dir, server, filters string, overlap time.Duration, key func(*flowpb.Flow) string) (ResumePoint, bool, error) {
	m, err := ReadManifest(dir)
	if errors.Is(err, os.ErrNotExist) {
		return ResumePoint{}, false, nil
	}
	if err != nil {
		return ResumePoint{}, false, err
	}
	// The stream's stopped sessions, all of them: a session killed before
	// its first flow resumed nothing, and the one before it is still where
	// the recording stopped; and a session that resumed may have written
	// flows older than its predecessor's last (a node's flows arrive late),
	// so the overlap's flows are those of every session, not the last's.
	cands := map[string]*Session{}
	for i := range m.Sessions {
		s := &m.Sessions[i]
		if s.Server.Address == server && s.Filters.Raw == filters && s.Source == nil && !liveSession(dir, s.RecordingID) {
			cands[s.RecordingID] = s
		}
	}
	if len(cands) == 0 {
		return ResumePoint{}, false, nil
	}
	files, err := FindFiles(dir)
	if err != nil {
		return ResumePoint{}, false, nil // nothing recorded
	}
	var prev *Session
	var mine Files
	var first, last int64
	his := map[string]int64{}
	for _, p := range files.Flows {
		s := cands[SessionOf(p)]
		if s == nil {
			continue
		}
		_, lo, hi := fileRows(p, schema.KindFlows)
		if _, err := os.Stat(p); hi == 0 && errors.Is(err, os.ErrNotExist) {
			continue // gone since the listing: a spool's uploaded file (upload.go keeps the overlap's)
		}
		mine.Flows = append(mine.Flows, p)
		his[p] = hi
		if hi > last {
			last, prev = hi, s
		}
		if lo > 0 && (first == 0 || lo < first) {
			first = lo
		}
	}
	if prev == nil {
		return ResumePoint{}, false, nil
	}
	rp := ResumePoint{Session: prev.RecordingID, First: time.Unix(0, first).UTC(), Last: time.Unix(0, last).UTC(),
		Nodes: map[string]time.Time{}, Flows: map[string]int64{}, Counted: map[string]time.Time{}}
	for _, s := range cands {
		for node, at := range s.RingGapsEnd {
			if at.After(rp.Counted[node]) {
				rp.Counted[node] = at.UTC()
			}
		}
	}
	// Only the files that reach into the overlap are read (a bucket's
	// spool removes the others as they go up, maybe while this reads).
	var overlapping Files
	for _, p := range mine.Flows {
		if his[p] == 0 || his[p] >= last-int64(overlap) {
			overlapping.Flows = append(overlapping.Flows, p)
		}
	}
	err = Scan(ctx, overlapping, Window{Since: rp.Last.Add(-overlap)}, func(r *observerpb.GetFlowsResponse) error {
		f := r.GetFlow()
		at := f.GetTime().AsTime()
		rp.Flows[key(f)] = at.UnixNano()
		if at.After(rp.Nodes[f.GetNodeName()]) {
			rp.Nodes[f.GetNodeName()] = at
		}
		return nil
	})
	if err != nil {
		return rp, false, fmt.Errorf("read where session %s stopped: %w", prev.RecordingID, err)
	}
	// Nodes quiet in the overlap have their newest flow in the derived
	// traffic files (counts by minute and node: small), so that their
	// gaps are looked for too.
	for _, p := range mine.Flows {
		if tp, ok := derivedOf(p, schema.KindTraffic); ok {
			_ = ReadColumns(ctx, tp, []string{"node_name", "last_time"}, func(rec arrow.RecordBatch) error {
				nodes, ok1 := rec.Column(0).(*array.Dictionary)
				times, ok2 := rec.Column(1).(*array.Timestamp)
				if !ok1 || !ok2 {
					return nil
				}
				names, ok := nodes.Dictionary().(*array.String)
				if !ok {
					return nil
				}
				for i := range int(rec.NumRows()) {
					if nodes.IsNull(i) || times.IsNull(i) {
						continue
					}
					node, at := names.Value(nodes.GetValueIndex(i)), time.Unix(0, int64(times.Value(i))).UTC()
					if at.After(rp.Nodes[node]) {
						rp.Nodes[node] = at
					}
				}
				return nil
			})
		}
	}
	return rp, true, nil
}

// Recording returns the live session of another writer of the directory
// that records from server with the same filters, if any: a second
// recorder of the same stream would write every flow twice.
func (d *Dir) Recording(server, filters string) (string, bool) {
	m, err := ReadManifest(d.path)
	if err != nil {
		return "", false
	}
	for _, s := range m.Sessions {
		if s.Status == "recording" && s.RecordingID != d.id && s.Server.Address == server && s.Filters.Raw == filters &&
			liveSession(d.path, s.RecordingID) {
			return s.RecordingID, true
		}
	}
	return "", false
}
