package tape

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/proto"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/schema"
)

// SinkOptions configure a writer of a recording directory. Zero values
// are the defaults of package defaults.
type SinkOptions struct {
	Dir string
	// RecordingID names this recorder's files; it must be unique per run.
	RecordingID string
	// Writer names the program in file metadata.
	Writer string
	// RotateInterval and RotateRows end a file after that much wall-clock
	// time or that many rows; a file also ends at an hour boundary of the
	// flows' time, so that it lies in one date=/hour= partition.
	RotateInterval time.Duration
	RotateRows     int64
	// RotateBytes ends a file once its Parquet data reaches this size.
	RotateBytes int64
	// RowGroupRows is the Parquet row group size.
	RowGroupRows int
	// NotLive leaves out the pieces (see live.go): rows become readable
	// only when their file ends, for a second Parquet encoding less.
	NotLive bool
	// NoDerived leaves out the derived files (see derived.go): the
	// analyses then need flowtape reindex first.
	NoDerived bool
	// MaxOpenBytes ends the files being written once they take this much
	// on disk, their write-ahead logs, pieces and derived files included:
	// the share of a disk bound (record --max-disk) that retention cannot
	// free. Zero: no bound.
	MaxOpenBytes int64
	// OpenLimit, when set, gives MaxOpenBytes at each flush instead: the
	// share of writers that come and go (record's per-node capture).
	OpenLimit func() int64
}

// Sink writes the files of one session into a recording directory (see
// the layout in layout.go), each file through a segment: crash-safe, with
// a write-ahead log, unless the sink is a staged session's (see Staged).
type Sink struct {
	flows  *partitioned[*flowpb.Flow]
	events *partitioned[*observerpb.GetFlowsResponse]
}

var _ Writer = (*Sink)(nil)

// NewSink prepares DIR for writing a live session, whose every row is in a
// write-ahead log until its file is complete. The caller holds the
// directory (OpenDir).
func NewSink(o SinkOptions) (*Sink, error) { return newSink(o, true) }

// newSink is NewSink, with or without write-ahead logs: a writer that can
// start again from its input after a crash (a staged session) needs none,
// which halves the work per row.
func newSink(o SinkOptions, wal bool) (*Sink, error) {
	o.RotateInterval = defaults.Positive(o.RotateInterval, defaults.RotateInterval)
	o.RotateRows = defaults.Positive(o.RotateRows, defaults.RotateRows)
	o.RotateBytes = defaults.Positive(o.RotateBytes, defaults.RotateBytes)
	o.RowGroupRows = defaults.Positive(o.RowGroupRows, defaults.RowGroupRows)
	if err := os.MkdirAll(o.Dir, dirMode); err != nil {
		return nil, fmt.Errorf("create recording directory: %w", err)
	}
	if err := os.Chmod(o.Dir, dirMode); err != nil {
		return nil, fmt.Errorf("recording directory: %w", err)
	}
	wo := WriterOptions{Writer: o.Writer, RowGroupRows: o.RowGroupRows,
		Metadata: map[string]string{MetaRecordingID: o.RecordingID}}
	var conns *schema.ConnState
	if !o.NoDerived {
		conns = schema.NewConnState()
	}
	return &Sink{
		flows: &partitioned[*flowpb.Flow]{conns: conns, t: schema.Flows, base: filepath.Join(o.Dir, schema.KindFlows), o: o, wo: wo, wal: wal, live: wal && !o.NotLive,
			timeOf: func(f *flowpb.Flow) time.Time { return f.GetTime().AsTime() }, open: map[string]*segment[*flowpb.Flow]{}},
		events: &partitioned[*observerpb.GetFlowsResponse]{t: schema.Events, base: filepath.Join(o.Dir, schema.KindEvents), o: o, wo: wo, wal: wal, live: wal && !o.NotLive,
			timeOf: func(r *observerpb.GetFlowsResponse) time.Time { return r.GetTime().AsTime() },
			open:   map[string]*segment[*observerpb.GetFlowsResponse]{}},
	}, nil
}

// WriteFlow adds a flow.
func (s *Sink) WriteFlow(f *flowpb.Flow) error { return s.flows.write(f, nil) }

// WriteFlowEncoded adds a flow with its protobuf encoding (see Writer).
func (s *Sink) WriteFlowEncoded(f *flowpb.Flow, encoded []byte) error {
	return s.flows.write(f, encoded)
}

// WriteEvent adds a non-flow GetFlows response.
func (s *Sink) WriteEvent(r *observerpb.GetFlowsResponse) error { return s.events.write(r, nil) }

// Sync makes what was written survive a crash, and ends files that are due.
func (s *Sink) Sync() error {
	return errors.Join(s.flows.sync(), s.events.sync())
}

// Close finishes every open file.
func (s *Sink) Close() error {
	return errors.Join(s.flows.closeAll(), s.events.closeAll())
}

// discard drops every open file unfinished (staged sessions being
// aborted: their files are deleted next).
func (s *Sink) discard() {
	for _, p := range []interface{ discard() }{s.flows, s.events} {
		p.discard()
	}
}

// Stats are the files and bytes a writer has published.
type Stats struct {
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
	// DerivedRows are the rows of the derived files published, by kind.
	DerivedRows map[string]int64 `json:"derived_rows,omitempty"`
}

// Stats returns what was published so far.
func (s *Sink) Stats() Stats {
	a, b := s.flows.stats(), s.events.stats()
	return Stats{Files: a.Files + b.Files, Bytes: a.Bytes + b.Bytes, DerivedRows: a.DerivedRows}
}

// OnDisk is what the recording takes on disk now, files being written
// included. It must be called from the goroutine that writes.
func (s *Sink) OnDisk() int64 {
	return s.Stats().Bytes + s.flows.openBytes() + s.events.openBytes()
}

// partitioned writes rows of one table into hour partitions.
type partitioned[M proto.Message] struct {
	t      *schema.Table[M]
	base   string
	o      SinkOptions
	wo     WriterOptions
	wal    bool
	live   bool
	timeOf func(M) time.Time
	open   map[string]*segment[M]
	newest string
	seq    int
	// conns carries the session's connections from file to file (flows
	// with derived files only; see schema.ConnState).
	conns *schema.ConnState
	// queue derives the files' batches beside the writer, for a session
	// without write-ahead logs (import; see deriveQueue); nil otherwise.
	queue *deriveQueue
	// retired are the pieces of ended segments, kept a while for readers
	// (see live.go).
	retired []retired

	mu  sync.Mutex
	pub Stats
}

// write adds a row; encoded, when not nil, is its protobuf encoding.
func (p *partitioned[M]) write(m M, encoded []byte) error {
	at := p.timeOf(m)
	key := Partition(at)
	seg := p.open[key]
	if seg == nil {
		p.seq++
		var err error
		if p.queue == nil && p.conns != nil && !p.wal {
			p.queue = newDeriveQueue()
		}
		if seg, err = openSegment(p.t, filepath.Join(p.base, key, FileName(at, p.o.RecordingID, p.seq)), p.wo, p.wal, p.live, p.conns, p.queue); err != nil {
			return err
		}
		p.open[key] = seg
		if key > p.newest {
			p.newest = key
		}
	}
	if err := seg.write(m, encoded); err != nil {
		return err
	}
	if seg.rows >= p.o.RotateRows {
		return p.finish(key)
	}
	return nil
}

func (p *partitioned[M]) finish(key string) error {
	// The other files' WALs first: a crash while this one is completed
	// must not leave an older hour's unflushed rows (late flows) behind
	// the newer rows this file's WAL holds by then (see segment.finish).
	for k, other := range p.open {
		if k != key && other.wal != nil {
			if err := other.flushWAL(); err != nil {
				return err
			}
		}
	}
	seg := p.open[key]
	delete(p.open, key)
	size, err := seg.finish()
	if err != nil {
		return err
	}
	if seg.live != nil && len(seg.live.paths) > 0 {
		r := retired{paths: seg.live.paths, bytes: seg.live.bytes, at: time.Now()}
		if seg.derived != nil {
			// Flow pieces first: a reader never takes a flow piece
			// without its derived pieces.
			r.paths = append(slices.Clone(r.paths), seg.derived.piecePaths...)
			r.bytes += seg.derived.pieceBytes
		}
		p.retired = append(p.retired, r)
	}
	p.mu.Lock()
	p.pub.Files++
	p.pub.Bytes += size
	if seg.derived != nil {
		if p.pub.DerivedRows == nil {
			p.pub.DerivedRows = map[string]int64{}
		}
		for kind, n := range seg.derived.rows() {
			p.pub.DerivedRows[kind] += n
		}
	}
	p.mu.Unlock()
	return nil
}

// sync flushes the WALs and finishes files that are old enough, or whose
// hour is over (no flow of it came while a later hour was written to).
func (p *partitioned[M]) sync() error {
	var errs []error
	var open int64
	limit := p.o.MaxOpenBytes
	if p.o.OpenLimit != nil {
		limit = p.o.OpenLimit()
	}
	if limit > 0 {
		for _, seg := range p.open {
			open += segmentBytes(seg)
		}
	}
	full := limit > 0 && open >= limit
	for _, key := range slices.Sorted(maps.Keys(p.open)) {
		seg := p.open[key]
		// The WAL may hold at most 8x the file's size before it ends too.
		if time.Since(seg.opened) >= p.o.RotateInterval || key < p.newest || seg.size() >= p.o.RotateBytes ||
			seg.walSize() >= 8*p.o.RotateBytes || full {
			errs = append(errs, p.finish(key))
			continue
		}
		errs = append(errs, seg.sync())
	}
	cutoff := time.Now().Add(-defaults.LiveGrace)
	if limit > 0 {
		// Under a disk bound, the pieces of ended segments take no more
		// than half the open files' share: the oldest go before their
		// grace is over (a reader that listed them lists again).
		var retired int64
		for _, r := range p.retired {
			retired += r.bytes
		}
		for _, r := range p.retired {
			if retired <= limit/2 {
				break
			}
			cutoff = later(cutoff, r.at)
			retired -= r.bytes
		}
	}
	var err error
	p.retired, err = removeRetired(p.retired, cutoff)
	return errors.Join(append(errs, err)...)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func (p *partitioned[M]) closeAll() error {
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(p.open)) {
		errs = append(errs, p.finish(key))
	}
	// No reader can tell the pieces apart from the published files any
	// more; a reader that listed them a moment ago finds them gone and
	// lists again (see FindFiles).
	p.stopQueue()
	var err error
	p.retired, err = removeRetired(p.retired, time.Time{})
	return errors.Join(append(errs, err)...)
}

// stopQueue ends the derivation queue once every open file has ended
// (a later write starts another).
func (p *partitioned[M]) stopQueue() {
	if p.queue != nil {
		p.queue.close()
		p.queue = nil
	}
}

func (p *partitioned[M]) discard() {
	for key, seg := range p.open {
		seg.file.Close()
		seg.closeWAL()
		if seg.live != nil {
			seg.live.discard()
		}
		seg.derived.discard()
		delete(p.open, key)
	}
	p.stopQueue()
}

func (p *partitioned[M]) openBytes() int64 {
	var n int64
	for _, r := range p.retired {
		n += r.bytes
	}
	for _, seg := range p.open {
		n += segmentBytes(seg)
	}
	return n
}

// segmentBytes is what an open segment takes on disk: its file, WAL,
// pieces and derived files.
func segmentBytes[M proto.Message](seg *segment[M]) int64 {
	var n int64
	if seg.live != nil {
		n += seg.live.openBytes()
	}
	if seg.derived != nil {
		n += seg.derived.openBytes()
	}
	for _, f := range []*os.File{seg.file, seg.wal} {
		if f == nil {
			continue
		}
		if st, err := f.Stat(); err == nil {
			n += st.Size()
		}
	}
	return n
}

func (p *partitioned[M]) stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.pub
	out.DerivedRows = maps.Clone(p.pub.DerivedRows)
	return out
}
