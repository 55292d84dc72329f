package sim

import (
	"context"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/internal/observer"
)

// cursorSet is one reader's position in each node's ring.
type cursorSet struct {
	nodes []int // the nodes this reader serves
	pos   []uint64
}

func (cs *cursorSet) serves(n int) bool {
	for _, m := range cs.nodes {
		if m == n {
			return true
		}
	}
	return false
}

// matcher applies a GetFlows request's filters the way Hubble does: with
// Cilium's own filter implementation.
type matcher struct {
	filters      observer.Filters
	since, until int64 // 0: unset
	hasUntil     bool
}

func newMatcher(ctx context.Context, req *observerpb.GetFlowsRequest) (*matcher, error) {
	f, err := observer.NewFilters(ctx, req.GetWhitelist(), req.GetBlacklist())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	m := &matcher{filters: f}
	if s := req.GetSince(); s != nil {
		m.since = s.AsTime().UnixNano()
	}
	if u := req.GetUntil(); u != nil {
		m.until, m.hasUntil = u.AsTime().UnixNano(), true
	}
	return m, nil
}

func (m *matcher) match(e entry) bool {
	if e.at < m.since {
		return false
	}
	return m.filters.Match(e.flow)
}

// streamFlows answers a GetFlows request from the rings of the given nodes,
// merged in time order (as hubble-relay does for several nodes).
func (c *Cluster) streamFlows(ctx context.Context, req *observerpb.GetFlowsRequest, nodes []int, send func(*observerpb.GetFlowsResponse) error) error {
	if req.GetFirst() && req.GetFollow() {
		return status.Errorf(codes.InvalidArgument, "first cannot be specified with follow")
	}
	m, err := newMatcher(ctx, req)
	if err != nil {
		return err
	}
	cs := &cursorSet{nodes: nodes, pos: make([]uint64, len(c.rings))}
	var stop []uint64 // heads at the start, where a non-following request ends
	limit := req.GetNumber()
	var last []*observerpb.GetFlowsResponse
	tail := false // a "last N" request

	c.mu.Lock()
	for _, n := range nodes {
		cs.pos[n] = c.rings[n].oldest()
	}
	if !req.GetFollow() {
		stop = make([]uint64, len(c.rings))
		for _, n := range nodes {
			stop[n] = c.rings[n].head
		}
	}
	// Where to start, as Hubble's ring reader decides: since takes
	// precedence over number; following without either starts now.
	switch {
	case req.GetSince() != nil || req.GetFirst():
	case req.GetFollow() && limit == 0:
		for _, n := range nodes {
			cs.pos[n] = c.rings[n].head
		}
	case limit > 0:
		// The last N matching flows, then (with follow) what comes next.
		tail = true
		last = c.lastLocked(cs, m, limit)
		for _, n := range nodes {
			cs.pos[n] = c.rings[n].head
		}
		limit = 0
	}
	if req.GetFollow() {
		c.followers[cs] = struct{}{}
		defer func() {
			c.mu.Lock()
			delete(c.followers, cs)
			for _, n := range nodes {
				c.idleFloor[n] = max(c.idleFloor[n], cs.pos[n])
			}
			c.signalConsumedLocked()
			c.mu.Unlock()
		}()
	}
	c.mu.Unlock()

	for _, r := range last {
		if err := send(r); err != nil {
			return err
		}
	}
	if tail && !req.GetFollow() {
		return nil
	}
	var sent uint64
	batch := make([]*observerpb.GetFlowsResponse, 0, 256)
	for {
		c.mu.Lock()
		batch = batch[:0]
		exhausted, ended := false, false
		for len(batch) < cap(batch) {
			r, ok, end := c.nextLocked(cs, stop, m)
			if end {
				ended = true
				break
			}
			if !ok {
				exhausted = true
				break
			}
			if r != nil {
				batch = append(batch, r)
			}
		}
		wait := c.changed
		done := c.done
		if req.GetFollow() {
			c.signalConsumedLocked()
		}
		c.mu.Unlock()
		for _, r := range batch {
			if err := send(r); err != nil {
				return err
			}
			if r.GetFlow() != nil {
				sent++
				if limit > 0 && sent >= limit {
					return nil
				}
			}
		}
		if ended {
			return nil
		}
		if exhausted {
			if stop != nil || done {
				return nil
			}
			select {
			case <-wait:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// nextLocked takes the earliest unread entry across the reader's nodes. It
// returns a response (nil when the entry did not match), ok=false when
// nothing is available yet, and end=true when the request's until is passed.
func (c *Cluster) nextLocked(cs *cursorSet, stop []uint64, m *matcher) (*observerpb.GetFlowsResponse, bool, bool) {
	best := -1
	var bestAt int64
	for _, n := range cs.nodes {
		r := c.rings[n]
		if old := r.oldest(); cs.pos[n] < old {
			// This reader was lapped: the flows in between are gone.
			lost := old - cs.pos[n]
			cs.pos[n] = old
			return &observerpb.GetFlowsResponse{
				Time:     timestamppb.New(timeOf(r.at(old).at)),
				NodeName: c.topo.Nodes[n].FullName(),
				ResponseTypes: &observerpb.GetFlowsResponse_LostEvents{LostEvents: &flowpb.LostEvent{
					Source: flowpb.LostEventSource_HUBBLE_RING_BUFFER, NumEventsLost: lost}},
			}, true, false
		}
		end := r.head
		if stop != nil {
			end = min(end, stop[n])
		}
		if cs.pos[n] >= end {
			continue
		}
		if at := r.at(cs.pos[n]).at; best < 0 || at < bestAt {
			best, bestAt = n, at
		}
	}
	if best < 0 {
		return nil, false, false
	}
	e := c.rings[best].at(cs.pos[best])
	if m.hasUntil && e.at > m.until {
		return nil, false, true
	}
	cs.pos[best]++
	if !m.match(e) {
		return nil, true, false
	}
	return observer.FlowResponse(e.flow), true, false
}

// lastLocked returns the last n matching flows currently in the rings.
func (c *Cluster) lastLocked(cs *cursorSet, m *matcher, n uint64) []*observerpb.GetFlowsResponse {
	var all []*observerpb.GetFlowsResponse
	tmp := &cursorSet{nodes: cs.nodes, pos: append([]uint64(nil), cs.pos...)}
	stop := make([]uint64, len(c.rings))
	for _, i := range cs.nodes {
		stop[i] = c.rings[i].head
	}
	for {
		r, ok, end := c.nextLocked(tmp, stop, m)
		if !ok || end {
			break
		}
		if r != nil && r.GetFlow() != nil {
			all = append(all, r)
		}
	}
	if uint64(len(all)) > n {
		all = all[uint64(len(all))-n:]
	}
	return all
}
