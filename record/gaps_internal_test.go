package record

import (
	"io"
	"log/slog"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/tape"
)

// eventsOnly is a tape.Writer that keeps the events written.
type eventsOnly struct {
	events []*observerpb.GetFlowsResponse
}

func (w *eventsOnly) WriteFlow(*flowpb.Flow) error { return nil }
func (w *eventsOnly) WriteEvent(ev *observerpb.GetFlowsResponse) error {
	w.events = append(w.events, ev)
	return nil
}
func (w *eventsOnly) Sync() error       { return nil }
func (w *eventsOnly) Stats() tape.Stats { return tape.Stats{} }
func (w *eventsOnly) OnDisk() int64     { return 0 }

// A gap found at a reconnect (the ring's oldest flow, asked after the new
// stream started, is newer than the node's last recorded one) ends at
// the first flow of the node the new stream delivers, where that comes
// before the ring's oldest; it is no gap where that flow is one recorded
// before it; and without such a flow it ends at the ring's oldest, from
// where a later reconnect looks for the next.
func TestGapEndsAtTheFirstFlowAfterIt(t *testing.T) {
	const node = "n1"
	base := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	at := func(s float64) int64 { return base.Add(time.Duration(s * float64(time.Second))).UnixNano() }
	cases := []struct {
		name      string
		first     float64 // the node's first flow on the new stream (s); <0: none before the stream ends
		wantEnd   float64 // the lost event's last (s); <0: no lost event
		wantLost  uint64
		wantCount float64 // where a later reconnect looks from (s)
	}{
		{"the stream reached back to the last recorded flow", 9.5, -1, 0, 0},
		{"the stream's first flow is at the last recorded one", 10, -1, 0, 0},
		{"the ring moved past flows the stream received", 14, 14, 400, 0},
		{"the first flow comes after the ring's oldest", 30, 20, 1000, 0},
		{"no flow of the node before the stream ends", -1, 20, 1000, 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := &eventsOnly{}
			r := &recorder{o: Options{ResumeOverlap: time.Second}, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
				out: w, seen: map[flowID]int64{}, nodes: map[string]*nodeTrack{}, totals: tape.Totals{LostEvents: map[string]uint64{}}}
			// 100 flows a second recorded up to 10 s; the ring held flows
			// from 20 s on when asked.
			r.nodes[node] = &nodeTrack{last: at(10), rate: 100}
			tr := r.nodes[node]
			tr.gap = &openGap{from: at(10), oldest: at(20), flows: 3000, secs: 30}
			r.openGaps = 1
			if tc.first >= 0 {
				f := &flowpb.Flow{Uuid: "5d4f0c8e-3a2b-4c1d-9e8f-7a6b5c4d3e2f", NodeName: node, Time: timestamppb.New(time.Unix(0, at(tc.first)))}
				if _, err := r.handle(&observerpb.GetFlowsResponse{NodeName: node, ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: f}}); err != nil {
					t.Fatal(err)
				}
			}
			r.closeGaps()
			if tr.gap != nil || r.openGaps != 0 {
				t.Fatalf("the gap is still open (%d open)", r.openGaps)
			}
			if tc.wantEnd < 0 {
				if len(w.events) != 0 || len(r.totals.LostEvents) != 0 {
					t.Fatalf("recorded %v, %v: want no gap", w.events, r.totals.LostEvents)
				}
				return
			}
			if len(w.events) != 1 {
				t.Fatalf("recorded %d events, want one lost event", len(w.events))
			}
			l := w.events[0].GetLostEvents()
			if l.GetSource() != flowpb.LostEventSource_HUBBLE_RING_BUFFER || l.GetFirst().AsTime().UnixNano() != at(10) ||
				l.GetLast().AsTime().UnixNano() != at(tc.wantEnd) || l.GetNumEventsLost() != tc.wantLost {
				t.Errorf("lost event %v, want %d lost from 10 s to %v s", l, tc.wantLost, tc.wantEnd)
			}
			if got := r.totals.LostEvents["HUBBLE_RING_BUFFER"]; got != tc.wantLost {
				t.Errorf("counted %d lost, want %d", got, tc.wantLost)
			}
			if tc.wantCount > 0 && tr.counted != at(tc.wantCount) {
				t.Errorf("a later reconnect looks for a gap from %v, want %v s", time.Unix(0, tr.counted).UTC(), tc.wantCount)
			}
		})
	}
}
