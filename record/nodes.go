package record

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	peerpb "github.com/cilium/cilium/api/v1/peer"
	"google.golang.org/grpc"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/tape"
)

// Per-node capture: hubble-relay merges every node's stream into one and
// is CPU-bound near 70k flows/s (cilium#23111). RunPerNode reads the
// agents directly instead, found as hubble-relay finds them: the Peer
// service (hubble-peer, or any agent's own) announces each node's name and
// the address of its Hubble server, and whether to dial it with TLS (then
// with the server name it announces, and the client certificate and CAs
// the flags give, as the relay's peer client does).
//
// Each node is recorded by a Run of its own, in parallel, as a session of
// its own in the one directory (its own recording id, files, totals, lost
// events, reconnects): one node's outage never stops the others, and its
// gaps are its own in coverage. A node the Peer service removes has its
// session ended; one it adds later gets one. Retention runs once for the
// directory, not once per node. Guarded by TestPerNodeCapture (three
// simulated agents) and, with three processes into one directory, by
// TestRecordersShareADirectory.

// PeerDialer dials the Peer service (Dialer) and the agents it announces.
type PeerDialer interface {
	Dialer
	// ForPeer dials the agent at address; TLS with the server name when it
	// is not empty.
	ForPeer(address, tlsServerName string) Dialer
}

// NodeResult is one node's recording.
type NodeResult struct {
	Node string
	Result
	Err error
}

// RunPerNode records every node the Peer service at o.Dialer announces
// (of nodes, when not empty: a DaemonSet's pod records its own node),
// each from its own agent, until ctx ends. o applies to every node; the
// sessions' results come back by node.
func RunPerNode(ctx context.Context, o Options, pd PeerDialer, nodes ...string) ([]NodeResult, error) {
	o.MinBackoff = defaults.Positive(o.MinBackoff, defaults.MinBackoff)
	o.MaxBackoff = defaults.Positive(o.MaxBackoff, defaults.MaxBackoff)
	o.FlushInterval = defaults.Positive(o.FlushInterval, defaults.FlushInterval)
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Sink.Writer == "" {
		o.Sink.Writer = "flowtape"
	}
	// The directory is held for the whole capture: retention runs here.
	dir, err := tape.OpenSession(o.Sink.Dir, "nodes-"+tape.NewRecordingID())
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	conn, err := pd.Dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoServer, err)
	}
	defer conn.Close()

	p := &perNode{o: o, pd: pd, nodes: map[string]*nodeRun{}, only: nodes}
	var wg sync.WaitGroup
	defer func() {
		p.mu.Lock()
		for _, n := range p.nodes {
			n.cancel()
		}
		p.mu.Unlock()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.retention(ctx, dir)
	}()

	client := peerpb.NewPeerClient(conn)
	backoff := o.MinBackoff
	first := true
	for ctx.Err() == nil {
		err := p.follow(ctx, client, &wg, first)
		if ctx.Err() != nil {
			break
		}
		if first && errors.Is(err, ErrNoServer) {
			return p.results(), err
		}
		first = false
		o.Log.Warn("peer service stream broke; the nodes' recordings go on, reconnecting", "server", pd.Server(), "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, o.MaxBackoff)
	}
	p.mu.Lock()
	for _, n := range p.nodes {
		n.cancel()
	}
	p.mu.Unlock()
	wg.Wait()
	return p.results(), nil
}

type perNode struct {
	o  Options
	pd PeerDialer

	only []string // the nodes to record; all when empty

	mu    sync.Mutex
	nodes map[string]*nodeRun
	done  []NodeResult
	// running counts the nodes' recordings: under a disk bound, their
	// open files share one eighth of it (openShare), whatever their number.
	running atomic.Int64
}

type nodeRun struct {
	address, tlsName string
	cancel           context.CancelFunc
}

// openLimit is a node's share of the open files' part of a disk bound.
func (p *perNode) openLimit() int64 {
	return p.o.Retention.MaxBytes / openShare / max(p.running.Load(), 1)
}

// follow reads the Peer service's notifications, starting and stopping
// the nodes' recordings, until the stream ends.
func (p *perNode) follow(ctx context.Context, client peerpb.PeerClient, wg *sync.WaitGroup, first bool) error {
	startCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The first notifications come at once: a service that cannot be
	// reached, or stays silent, for the dial timeout has no node to offer.
	wait := max(p.pd.Timeout(), 5*time.Second)
	if first {
		timer := time.AfterFunc(wait, func() {
			p.mu.Lock()
			empty := len(p.nodes) == 0
			p.mu.Unlock()
			if empty {
				cancel()
			}
		})
		defer timer.Stop()
	}
	noPeers := func(err error) error {
		if first && ctx.Err() == nil && startCtx.Err() != nil {
			return fmt.Errorf("%w: the peer service at %s announced no node within %s", ErrNoServer, p.pd.Server(), wait)
		}
		return err
	}
	stream, err := client.Notify(startCtx, &peerpb.NotifyRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return noPeers(err)
	}
	for {
		cn, err := stream.Recv()
		if err != nil {
			return noPeers(err)
		}
		switch cn.GetType() {
		case peerpb.ChangeNotificationType_PEER_ADDED, peerpb.ChangeNotificationType_PEER_UPDATED:
			p.start(ctx, wg, cn.GetName(), cn.GetAddress(), cn.GetTls().GetServerName())
		case peerpb.ChangeNotificationType_PEER_DELETED:
			p.stop(cn.GetName(), "the peer service removed it")
		}
	}
}

// wanted reports whether a node is one to record: its name as the Peer
// service announces it (cluster/node in a cluster mesh), or the node's own.
func (p *perNode) wanted(name string) bool {
	if len(p.only) == 0 {
		return true
	}
	for _, n := range p.only {
		if name == n || strings.HasSuffix(name, "/"+n) {
			return true
		}
	}
	return false
}

// start records a node, unless it is recorded from that address already.
func (p *perNode) start(ctx context.Context, wg *sync.WaitGroup, name, address, tlsName string) {
	if !p.wanted(name) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := p.nodes[name]; n != nil {
		if n.address == address && n.tlsName == tlsName {
			return
		}
		n.cancel() // moved: a new session from the new address
		p.o.Log.Info("node moved; recording it from its new address", "node", name, "address", address)
	}
	if address == "" {
		p.o.Log.Warn("the peer service announced a node without an address; not recorded", "node", name)
		return
	}
	nctx, cancel := context.WithCancel(ctx)
	n := &nodeRun{address: address, tlsName: tlsName, cancel: cancel}
	sub := p.o
	sub.Dialer = p.pd.ForPeer(address, tlsName)
	sub.Node = name
	sub.Sink.RecordingID = "" // runNode names each session
	sub.Progress = nil
	// Retention runs once for the directory (retention); each node's open
	// files take their share of a disk bound.
	sub.Retention = tape.Retention{}
	sub.noDiskWalk = true
	if p.o.Retention.MaxBytes > 0 && sub.Sink.MaxOpenBytes == 0 {
		sub.Sink.OpenLimit = p.openLimit
	}
	p.nodes[name] = n
	p.o.Log.Info("recording node from its agent", "node", name, "address", address, "tls", tlsName != "")
	wg.Add(1)
	p.running.Add(1)
	go func() {
		defer wg.Done()
		defer p.running.Add(-1)
		res, err := p.runNode(nctx, sub)
		p.mu.Lock()
		if p.nodes[name] == n {
			delete(p.nodes, name)
		}
		if res.Session.RecordingID != "" || err != nil {
			p.done = append(p.done, NodeResult{Node: name, Result: res, Err: err})
		}
		p.mu.Unlock()
	}()
}

func (p *perNode) stop(name, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := p.nodes[name]; n != nil {
		p.o.Log.Info("node recording ends", "node", name, "reason", why)
		n.cancel()
		delete(p.nodes, name)
	}
}

// runNode records one node until ctx ends, waiting for an agent that
// cannot be reached yet rather than giving up on it.
func (p *perNode) runNode(ctx context.Context, o Options) (Result, error) {
	backoff := o.MinBackoff
	logged := false
	for {
		// a new session each time, the node in its files' names: per-node
		// recorders share a bucket
		o.Sink.RecordingID = tape.NodeRecordingID(o.Node)
		res, err := Run(ctx, o)
		if err == nil || ctx.Err() != nil {
			return res, err
		}
		switch {
		case !errors.Is(err, ErrNoServer):
			// The node's recording stopped (its files could not be
			// written): it starts again, as a new session, rather than the
			// node going unrecorded while the others go on.
			o.Log.Error("the node's recording stopped; starting it again", "node", o.Node, "error", err, "retry_in", backoff)
			p.mu.Lock()
			p.done = append(p.done, NodeResult{Node: o.Node, Result: res, Err: err})
			p.mu.Unlock()
		case !logged:
			logged = true
			o.Log.Warn("cannot reach the node's agent yet; retrying", "node", o.Node, "address", o.Dialer.Server(), "error", err)
		}
		select {
		case <-ctx.Done():
			return res, nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, o.MaxBackoff)
	}
}

// retention runs the directory's retention (and its size's metrics) at
// every flush interval, with room for every node's open files.
func (p *perNode) retention(ctx context.Context, dir *tape.Dir) {
	if !p.o.Retention.Enabled() && p.o.Metrics == nil {
		return
	}
	every := p.o.FlushInterval
	if p.o.Retention.MaxBytes == 0 {
		every = retentionEvery
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var run retentionRun
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// Room for every node's open files: their shares add up to one.
		run.run(dir, p.o, openReserve*p.o.Retention.MaxBytes/openShare)
	}
}

// results are the nodes' results, by node name.
func (p *perNode) results() []NodeResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := append([]NodeResult(nil), p.done...)
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}
