package replay

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"time"

	observerpb "github.com/cilium/cilium/api/v1/observer"
	"github.com/cilium/cilium/pkg/hubble/parser/fieldmask"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/internal/observer"
	"github.com/flowtape/flowtape/tape"
)

// GetFlows answers as hubble-relay does for the recorded nodes, each node
// answering as a Hubble agent whose ring buffer holds the whole recording:
//
//   - number N with first, or with since (since takes precedence, as in
//     Hubble): each node's first N matching flows from since on;
//   - number N otherwise (hubble observe --last N): each node's last N
//     matching flows up to until;
//   - number 0 or the maximum (--all): every matching flow;
//   - follow: every matching flow from since (or the start of the recording)
//     on, at the recorded pace times Options.Speed.
//
// Flows come in time order, merged across files and nodes. Recorded lost
// events and node status events pass the filters, as in Hubble, and come at
// their place in time.
func (s *Server) GetFlows(req *observerpb.GetFlowsRequest, stream grpc.ServerStreamingServer[observerpb.GetFlowsResponse]) error {
	ctx := stream.Context()
	q, err := s.newQuery(ctx, req)
	if err != nil {
		return err
	}
	out := newSender(stream.Send, q.mask, s.opts.Clock)
	q.out = out
	start := s.cat.First
	if !q.w.Since.IsZero() {
		start = q.w.Since
	}
	// Sent at once, as a relay does, whatever the scan takes to find the
	// first flow.
	if err = out.add(s.connected(start)); err == nil {
		err = out.flush()
	}
	switch {
	case err != nil:
	case req.GetFollow():
		err = s.follow(ctx, q)
	case q.limit == 0:
		err = s.scan(ctx, q, q.w, func(r *observerpb.GetFlowsResponse, _ bool) error { return out.add(r) })
	case req.GetFirst() || req.GetSince() != nil:
		err = s.first(ctx, q)
	default:
		err = s.last(ctx, q)
	}
	// What was scanned is sent before the request ends, an error too.
	if cerr := out.close(); err == nil || errors.Is(err, errDone) {
		if cerr != nil {
			err = cerr
		}
	}
	var ue *tape.UnreadableError
	switch {
	case errors.Is(err, errDone):
		return nil
	case errors.As(err, &ue) && !errors.Is(err, fs.ErrNotExist):
		// a damaged or cut-short file: the client is told which, as
		// gRPC's code for data that is lost or corrupt; the server serves
		// on (a file gone is no such loss: a live piece gives way to its
		// file between listing and reading)
		return status.Error(codes.DataLoss, err.Error())
	}
	return err
}

// query is a GetFlows request, checked and compiled.
type query struct {
	w       tape.Window
	filters observer.Filters
	limit   uint64 // flows per node; 0: no limit
	mask    fieldmask.FieldMask
	out     *sender // where the responses go
}

func (s *Server) newQuery(ctx context.Context, req *observerpb.GetFlowsRequest) (*query, error) {
	if req.GetFirst() && req.GetFollow() {
		return nil, status.Error(codes.InvalidArgument, "first cannot be specified with follow")
	}
	q := &query{limit: req.GetNumber()}
	if q.limit == math.MaxUint64 {
		q.limit = 0
	}
	var err error
	if q.filters, err = observer.NewFilters(ctx, req.GetWhitelist(), req.GetBlacklist()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if q.mask, err = fieldmask.New(req.GetFieldMask()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "field mask: %v", err)
	}
	for _, t := range []struct {
		ts  *timestamppb.Timestamp
		dst *time.Time
	}{{req.GetSince(), &q.w.Since}, {req.GetUntil(), &q.w.Until}} {
		if t.ts == nil {
			continue
		}
		if err := t.ts.CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "invalid time: %v", err)
		}
		*t.dst = t.ts.AsTime()
	}
	return q, nil
}

// errDone ends a scan early: the request is answered.
var errDone = errors.New("done")

// scan calls fn with the matching flows (isFlow) and the events a Hubble
// server passes whatever the filters (lost events, node status changes), in
// time order. Agent and debug events from exporter files are not GetFlows
// responses and are left out.
func (s *Server) scan(ctx context.Context, q *query, w tape.Window, fn func(r *observerpb.GetFlowsResponse, isFlow bool) error) error {
	// Listed for each request: a recording being made grows, and the
	// pieces of its live files give way to the files (tape/live.go).
	files, err := tape.FindFiles(s.paths...)
	if err != nil {
		return status.Errorf(codes.Unavailable, "%v", err)
	}
	return tape.Scan(ctx, files, w, func(r *observerpb.GetFlowsResponse) error {
		if err := q.out.tick(); err != nil {
			return err
		}
		switch r.GetResponseTypes().(type) {
		case *observerpb.GetFlowsResponse_Flow:
			if !q.filters.Match(r.GetFlow()) {
				return nil
			}
			return fn(r, true)
		case *observerpb.GetFlowsResponse_LostEvents, *observerpb.GetFlowsResponse_NodeStatus:
			return fn(r, false)
		}
		return nil
	})
}

// first sends each node's first q.limit matching flows in the window.
func (s *Server) first(ctx context.Context, q *query) error {
	sent := map[string]uint64{}
	full := 0
	return s.scan(ctx, q, q.w, func(r *observerpb.GetFlowsResponse, isFlow bool) error {
		if !isFlow {
			return q.out.add(r)
		}
		node := r.GetNodeName()
		if sent[node] >= q.limit {
			return nil
		}
		if err := q.out.add(r); err != nil {
			return err
		}
		if sent[node]++; sent[node] == q.limit {
			if full++; full >= len(s.cat.Nodes) {
				return errDone
			}
		}
		return nil
	})
}

// last sends each node's last q.limit matching flows up to the window's
// end. It finds them without holding them: it counts the matching flows per
// node in a tail of the window, widened until it holds enough of every
// node's flows, then sends that tail without each node's surplus. Flows
// and events before the first flow sent are left out.
func (s *Server) last(ctx context.Context, q *query) error {
	end := s.cat.Last
	if !q.w.Until.IsZero() && q.w.Until.Before(end) {
		end = q.w.Until
	}
	begin := s.cat.First
	if !q.w.Since.IsZero() && q.w.Since.After(begin) {
		begin = q.w.Since
	}
	// The first guess holds about twice the flows asked for, if flows are
	// spread evenly over time.
	want := 2 * float64(q.limit) * float64(max(1, len(s.cat.Nodes)))
	span := time.Duration(float64(s.cat.Last.Sub(s.cat.First)) * min(1, want/float64(max(1, s.cat.Flows))))
	span = max(span, time.Second)
	for {
		tail := tape.Window{Since: end.Add(-span), Until: q.w.Until}
		whole := !tail.Since.After(begin)
		if whole {
			tail.Since = q.w.Since
		}
		counts := map[string]uint64{}
		err := s.scan(ctx, q, tail, func(r *observerpb.GetFlowsResponse, isFlow bool) error {
			if isFlow {
				counts[r.GetNodeName()]++
			}
			return nil
		})
		if err != nil {
			return err
		}
		if whole || s.enough(counts, q.limit, tail.Since) {
			return s.sendTail(ctx, q, tail, counts)
		}
		span *= 4
	}
}

// enough says whether a tail starting at since holds the last n flows of
// every node: n of them, or all the node's flows.
func (s *Server) enough(counts map[string]uint64, n uint64, since time.Time) bool {
	for _, node := range s.cat.Nodes {
		if counts[node.Name] < n && node.First.Before(since) {
			return false
		}
	}
	return true
}

func (s *Server) sendTail(ctx context.Context, q *query, tail tape.Window, counts map[string]uint64) error {
	skip := map[string]uint64{}
	for node, c := range counts {
		if c > q.limit {
			skip[node] = c - q.limit
		}
	}
	started := false
	return s.scan(ctx, q, tail, func(r *observerpb.GetFlowsResponse, isFlow bool) error {
		if !isFlow {
			if started {
				return q.out.add(r)
			}
			return nil
		}
		node := r.GetNodeName()
		if skip[node] > 0 {
			skip[node]--
			return nil
		}
		started = true
		return q.out.add(r)
	})
}

// follow sends every matching flow from the window's start on, paced.
func (s *Server) follow(ctx context.Context, q *query) error {
	from := s.cat.First
	if q.w.Since.After(from) {
		from = q.w.Since
	}
	p := newPacer(s.opts.Clock, s.opts.Speed, from)
	return s.scan(ctx, q, q.w, func(r *observerpb.GetFlowsResponse, _ bool) error {
		if err := p.wait(ctx, r.GetTime().AsTime(), q.out.flush); err != nil {
			return err
		}
		if s.opts.ShiftToNow {
			now := timestamppb.New(s.opts.Clock.Now())
			r.Time = now
			if f := r.GetFlow(); f != nil {
				f.Time = now
			}
		}
		return q.out.add(r)
	})
}
