package record

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/grpc"
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

// ringClient serves, for any GetFlows, the oldest flows of its ring of the
// node the request's first filter names (req.Number of them).
type ringClient struct {
	observerpb.ObserverClient
	ring []*flowpb.Flow
}

func (c ringClient) GetFlows(_ context.Context, req *observerpb.GetFlowsRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[observerpb.GetFlowsResponse], error) {
	s := &ringStream{}
	for _, f := range c.ring {
		if uint64(len(s.resps)) < req.GetNumber() && slices.Contains(req.GetWhitelist()[0].GetNodeName(), f.GetNodeName()) {
			s.resps = append(s.resps, &observerpb.GetFlowsResponse{ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: f}})
		}
	}
	return s, nil
}

type ringStream struct {
	grpc.ClientStream
	resps []*observerpb.GetFlowsResponse
}

func (s *ringStream) Recv() (*observerpb.GetFlowsResponse, error) {
	if len(s.resps) == 0 {
		return nil, io.EOF
	}
	r := s.resps[0]
	s.resps = s.resps[1:]
	return r, nil
}

// A gap starts no earlier than where the resumed stream starts: the
// stream that broke delivered every flow before that, so a node whose
// last recorded flow is older (its flows rarely match the recording's
// filters) lost nothing between; a node whose ring still reaches back to
// there has no gap.
func TestGapStartsWhereTheResumedStreamStarts(t *testing.T) {
	base := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return base.Add(time.Duration(s * float64(time.Second))) }
	var ring []*flowpb.Flow
	for i := range 100 {
		for node, oldest := range map[string]float64{"sparse": 55, "busy": 62, "held": 48} {
			ring = append(ring, &flowpb.Flow{NodeName: node, Time: timestamppb.New(at(oldest + float64(i)/10))})
		}
	}
	r := &recorder{log: slog.New(slog.NewTextHandler(io.Discard, nil)), nodes: map[string]*nodeTrack{
		"sparse": {last: at(1).UnixNano()},    // its last matching flow, long before the break
		"busy":   {last: at(59.5).UnixNano()}, // the newest flow recorded
		"held":   {last: at(30).UnixNano()},
	}}
	since := at(49.5) // the newest flow less the resume overlap
	got := r.detectGaps(t.Context(), ringClient{ring: ring}, since)
	if want := []string{"busy", "sparse"}; !slices.Equal(got, want) {
		t.Fatalf("gaps in %v, want %v", got, want)
	}
	for node, want := range map[string][2]time.Time{"sparse": {since, at(55)}, "busy": {at(59.5), at(62)}} {
		if g := r.nodes[node].gap; g == nil || g.from != want[0].UnixNano() || g.oldest != want[1].UnixNano() {
			t.Errorf("%s: gap %+v, want from %v to %v", node, g, want[0], want[1])
		}
	}
	if r.openGaps != 2 {
		t.Errorf("%d open gaps, want 2", r.openGaps)
	}
}
