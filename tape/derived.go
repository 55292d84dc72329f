package tape

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/protobuf/proto"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/schema"
)

// Every flow file has its derived files (schema/derived.go): one per
// derived kind, under the same name in the kind's directory of the same
// partition, its rows derived from that flow file's rows alone:
//
//	DIR/flows/date=2026-11-25/hour=13/NAME.parquet
//	DIR/requests/date=2026-11-25/hour=13/NAME.parquet   (and connections/, traffic/, pods/)
//
// They are written with the flow file, from the batches its writer encodes
// (so rows are derived once, from Arrow columns, not from protobuf again),
// and published before it: a reader that sees a flow file finds its
// derived files. A live segment's pieces have theirs too (NAME.p000001.parquet
// in each kind), published before the flow piece. Recovery and compaction
// derive them anew from the flow file they write; `flowtape reindex`
// (Reindex) for recordings written before them.

// derivedOf returns where the derived file of a kind of a recording file
// (a flow file, a piece, or the hidden name of one) is, and ok false for a
// file outside a recording's layout (DIR/flows/date=.../hour=.../NAME).
func derivedOf(flowPath, kind string) (string, bool) {
	dir, ok := derivedDir(filepath.Dir(flowPath), kind)
	if !ok {
		return "", false
	}
	return filepath.Join(dir, filepath.Base(flowPath)), true
}

// derivedDir is the partition directory of a derived kind beside a flow
// partition directory.
func derivedDir(flowPart, kind string) (string, bool) {
	dir, k, ok := RecordingDir(filepath.Join(flowPart, "f"))
	if !ok || k != schema.KindFlows {
		return "", false
	}
	return filepath.Join(dir, kind, filepath.Base(filepath.Dir(flowPart)), filepath.Base(flowPart)), true
}

// Derived lists the derived files of kind that belong to the flow files,
// in their order; flow files outside a recording's layout have none.
func (f Files) Derived(kind string) []string {
	var out []string
	for _, p := range f.Flows {
		if d, ok := derivedOf(p, kind); ok {
			out = append(out, d)
		}
	}
	return out
}

// derivedMeta is the footer metadata of derived files.
func derivedMeta(o WriterOptions) WriterOptions {
	meta := map[string]string{schema.MetaDerivedVersion: strconv.Itoa(schema.DerivedVersion)}
	for k, v := range o.Metadata {
		meta[k] = v
	}
	o.Metadata = meta
	return o
}

// derivedFile is one derived file being written, under a hidden name.
type derivedFile struct {
	tmp string
	f   *os.File
	bf  *batchFile
	// rows written (of a finished file: not counted for pieces)
	rows int64
}

func createDerived(tmp, kind string, sch *arrow.Schema, o WriterOptions) (*derivedFile, error) {
	if err := os.MkdirAll(filepath.Dir(tmp), dirMode); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(tmp), err)
	}
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, fileMode)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", tmp, err)
	}
	bf, err := newBatchFile(sch, kind, struct{ io.Writer }{f}, o)
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	return &derivedFile{tmp: tmp, f: f, bf: bf}, nil
}

// finish writes the footer and closes the file, synced when durable.
func (d *derivedFile) finish(durable bool) error {
	err := d.bf.close()
	if err == nil && durable {
		err = d.f.Sync()
	}
	if cerr := d.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(d.tmp)
		return fmt.Errorf("finish %s: %w", d.tmp, err)
	}
	return nil
}

func (d *derivedFile) discard() {
	d.f.Close()
	os.Remove(d.tmp)
}

func (d *derivedFile) size() int64 {
	if st, err := d.f.Stat(); err == nil {
		return st.Size()
	}
	return 0
}

// derivation writes the derived files of one flow file from the batches
// of its rows (add; schema.Deriver pairs what the file holds): responses
// as they come, in row groups of two kinds (client rows a server row of
// the file counts, apart, so that readers of the server's view skip
// them), and the rest at the end (finish). With pieces, each flow piece
// gets derived pieces of the rows of its batches (publishPieces): their
// own responses, open requests, connections, traffic and pods.
type derivation struct {
	flowPart string // the flow file's partition directory
	o        WriterOptions
	// tmp names the hidden file of a kind (in its directory).
	tmp     func(kind string) string
	files   map[string]*derivedFile
	deriver schema.Deriver
	// requests not yet written, by kind of row group: rows the file did
	// not settle (open, or seen_by_server unknown: the summary path reads
	// only those, and skips the row groups of the others), the other
	// client rows a server row of the file counts, and the rest
	counted, unsettled, others *schema.RowBuilder[schema.Request]

	live  bool
	name  string     // the flow file's name, for the pieces' hidden names
	piece *pieceRows // of the flow piece being written
	// the summary metadata of the piece being written, added up
	pieceMeta map[string]int64
	// published pieces, and what they take on disk
	piecePaths []string
	pieceBytes int64
	// bytes the finished files take
	bytes int64

	// queue, when set, derives the batches on a goroutine beside the
	// writer (see deriveQueue); else add derives them at once. Every
	// method but add waits for the batches handed over (wait) before it
	// touches the files (publish and releaseRequests run after finish,
	// which waits), so the queue's goroutine has them alone while it
	// runs.
	queue *deriveQueue
	errMu sync.Mutex
	err   error // the first error of a batch derived by the queue
}

// deriveQueue derives the batches of a session's flow files on a
// goroutine of its own, one at a time in the order the writer hands them
// over: the files being written share the session's connections
// (schema.ConnState), whose attempts follow that order. The writer hands
// a batch over and encodes the next while this one is derived, which
// makes import of 200k flows 5-10% faster on two cores, for one more
// batch held. A recorder, which must keep its memory small and whose CPU
// it would not lower, derives without one.
type deriveQueue struct {
	jobs    chan deriveJob
	stopped chan struct{}
	pending sync.WaitGroup
}

type deriveJob struct {
	d   *derivation
	rec arrow.RecordBatch
}

func newDeriveQueue() *deriveQueue {
	q := &deriveQueue{jobs: make(chan deriveJob), stopped: make(chan struct{})}
	go q.work()
	return q
}

// work derives the batches handed over, until close; a batch of a
// derivation that failed is only released.
func (q *deriveQueue) work() {
	defer close(q.stopped)
	for j := range q.jobs {
		if j.d.queueErr() == nil {
			if err := j.d.derive(j.rec); err != nil {
				j.d.errMu.Lock()
				j.d.err = err
				j.d.errMu.Unlock()
			}
		}
		j.rec.Release()
		q.pending.Done()
	}
}

// close ends the goroutine, once it has derived what it was handed.
func (q *deriveQueue) close() {
	q.pending.Wait()
	close(q.jobs)
	<-q.stopped
}

// newDerivation starts the derived files of a flow file in the partition
// directory flowPart; tmp names each kind's hidden file. It returns nil
// for a partition outside a recording's layout.
func newDerivation(flowPart string, o WriterOptions, live bool, conns *schema.ConnState, tmp func(kind string) string) (*derivation, error) {
	if _, ok := derivedDir(flowPart, schema.KindRequests); !ok {
		return nil, nil
	}
	d := &derivation{flowPart: flowPart, o: derivedMeta(o), tmp: tmp, files: map[string]*derivedFile{}, live: live,
		counted: schema.Requests.NewBuilder(), unsettled: schema.Requests.NewBuilder(), others: schema.Requests.NewBuilder()}
	d.deriver.Conns = conns
	d.o.RowGroupRows = defaults.Positive(d.o.RowGroupRows, defaults.RowGroupRows)
	for _, kind := range schema.DerivedKinds {
		f, err := createDerived(tmp(kind), kind, derivedSchema(kind), d.o)
		if err != nil {
			d.discard()
			return nil, err
		}
		d.files[kind] = f
	}
	return d, nil
}

// derivedFor is newDerivation for a flow file whose final name is known:
// each derived file is written under the hidden .tmp name of its own.
func derivedFor(final string, o WriterOptions, live bool, conns *schema.ConnState) (*derivation, error) {
	d, err := newDerivation(filepath.Dir(final), o, live, conns, func(kind string) string {
		p, _ := derivedOf(final, kind)
		return hiddenPath(p, tmpSuffix)
	})
	if d != nil {
		d.name = filepath.Base(final)
	}
	return d, err
}

// derivationOf is derivedFor for a file of table t: nil but for flows.
func derivationOf[M proto.Message](t *schema.Table[M], final string, o WriterOptions) (*derivation, error) {
	if t.Kind != schema.KindFlows {
		return nil, nil
	}
	return derivedFor(final, o, false, nil)
}

func derivedSchema(kind string) *arrow.Schema {
	switch kind {
	case schema.KindRequests:
		return schema.Requests.ArrowSchema()
	case schema.KindConnections:
		return schema.Connections.ArrowSchema()
	case schema.KindTraffic:
		return schema.Traffic.ArrowSchema()
	case schema.KindSummary:
		return schema.SummaryTable.ArrowSchema()
	}
	return schema.Pods.ArrowSchema()
}

// add derives the rows of a batch of the flow file's rows, or hands it to
// the queue; an error the queue met is returned by a later call.
func (d *derivation) add(rec arrow.RecordBatch) error {
	if d.queue == nil {
		return d.derive(rec)
	}
	if err := d.queueErr(); err != nil {
		return err
	}
	rec.Retain()
	d.queue.pending.Add(1)
	d.queue.jobs <- deriveJob{d, rec}
	return nil
}

func (d *derivation) queueErr() error {
	d.errMu.Lock()
	defer d.errMu.Unlock()
	return d.err
}

// wait returns once every batch handed to the queue is derived, with the
// first error of this derivation's.
func (d *derivation) wait() error {
	if d.queue != nil {
		d.queue.pending.Wait()
	}
	return d.queueErr()
}

// derive derives the rows of a batch of the flow file's rows.
func (d *derivation) derive(rec arrow.RecordBatch) error {
	b, err := d.deriver.Add(rec, d.live)
	if err != nil {
		return fmt.Errorf("derive %s: %w", d.files[schema.KindRequests].tmp, err)
	}
	if err := d.addRequests(b.Requests, false); err != nil {
		return err
	}
	if !d.live {
		return nil
	}
	// The piece's rows wait in memory for publishPieces, which writes
	// them as one row group per kind: not a row group per kind and batch
	// of flows, each of whose column chunks starts its encoders and pages
	// anew.
	if d.piece == nil {
		d.piece = newPieceRows()
		d.pieceMeta = map[string]int64{}
	}
	d.piece.add(b.Piece)
	for k, v := range b.Piece.SummaryMeta {
		n, _ := strconv.ParseInt(v, 10, 64)
		d.pieceMeta[k] += n
	}
	return nil
}

// pieceRows are the derived rows of the flow piece being written, by kind.
type pieceRows struct {
	requests    *schema.RowBuilder[schema.Request]
	connections *schema.RowBuilder[schema.Connection]
	traffic     *schema.RowBuilder[schema.TrafficCount]
	pods        *schema.RowBuilder[schema.Pod]
	summary     *schema.RowBuilder[schema.Summary]
}

func newPieceRows() *pieceRows {
	return &pieceRows{requests: schema.Requests.NewBuilder(), connections: schema.Connections.NewBuilder(),
		traffic: schema.Traffic.NewBuilder(), pods: schema.Pods.NewBuilder(), summary: schema.SummaryTable.NewBuilder()}
}

// add copies the rows of a batch (whose strings may be the batch's).
func (p *pieceRows) add(r schema.Derived) {
	p.requests.Append(r.Requests...)
	p.connections.Append(r.Connections...)
	p.traffic.Append(r.Traffic...)
	p.pods.Append(r.Pods...)
	p.summary.Append(r.Summary...)
}

// records returns the rows so far by kind; the caller releases them.
func (p *pieceRows) records() map[string]arrow.RecordBatch {
	return map[string]arrow.RecordBatch{
		schema.KindRequests:    p.requests.NewRecord(),
		schema.KindConnections: p.connections.NewRecord(),
		schema.KindTraffic:     p.traffic.NewRecord(),
		schema.KindPods:        p.pods.NewRecord(),
		schema.KindSummary:     p.summary.NewRecord(),
	}
}

func (p *pieceRows) release() {
	p.requests.Release()
	p.connections.Release()
	p.traffic.Release()
	p.pods.Release()
	p.summary.Release()
}

// addRequests writes request rows to the requests file, in full row
// groups of one kind (all: the rest too, at the end). A group is written
// the moment its builder is full: a builder let past RowGroupRows by a
// batch was split by the Parquet writer into a full group and a
// remainder of a few hundred rows (the 1M-flow benchmark's 449k requests
// in 53 groups rather than 30, each with its column chunks and page
// headers to read). Guarded by TestUnsettledRequestsInRowGroupsOfTheirOwn.
func (d *derivation) addRequests(rows []schema.Request, all bool) error {
	for i := range rows {
		b := d.others
		switch r := &rows[i]; {
		case r.Unsettled():
			// (an open client row the server proxy saw is counted too:
			// its counted_by_server skips it where the group is read)
			b = d.unsettled
		case r.CountedByServer():
			b = d.counted
		}
		b.AppendRow(&rows[i])
		if b.Len() >= d.o.RowGroupRows {
			if err := d.writeRequests(b); err != nil {
				return err
			}
		}
	}
	if !all {
		return nil
	}
	for _, b := range []*schema.RowBuilder[schema.Request]{d.others, d.counted, d.unsettled} {
		if b.Len() > 0 {
			if err := d.writeRequests(b); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeRequests writes a builder's rows as a row group.
func (d *derivation) writeRequests(b *schema.RowBuilder[schema.Request]) error {
	f := d.files[schema.KindRequests]
	rec := b.NewRecord()
	err := f.bf.write(rec)
	f.rows += rec.NumRows()
	rec.Release()
	if err != nil {
		return fmt.Errorf("write %s: %w", f.tmp, err)
	}
	return nil
}

// publishPieces publishes the derived pieces of the rows added since the
// last time, as the pieces of flowPiece (the flow piece about to be
// published). Like flow pieces they are not synced (see live.go).
func (d *derivation) publishPieces(flowPiece string) error {
	if err := d.wait(); err != nil {
		return err
	}
	if d.piece == nil {
		return nil
	}
	records := d.piece.records()
	d.piece.release()
	d.piece = nil
	defer func() {
		for _, r := range records {
			r.Release()
		}
	}()
	pieces := map[string]*derivedFile{}
	for _, kind := range schema.DerivedKinds {
		p, err := d.createPiece(kind)
		if err == nil {
			pieces[kind] = p
			if err = p.bf.write(records[kind]); err != nil {
				err = fmt.Errorf("write %s: %w", p.tmp, err)
			}
		}
		if err != nil {
			for _, p := range pieces {
				p.discard()
			}
			return err
		}
	}
	meta := map[string]string{}
	for k, v := range d.pieceMeta {
		meta[k] = strconv.FormatInt(v, 10)
	}
	var errs []error
	if err := pieces[schema.KindSummary].bf.setMeta(meta); err != nil {
		errs = append(errs, fmt.Errorf("write %s: %w", pieces[schema.KindSummary].tmp, err))
	}
	for _, kind := range schema.DerivedKinds {
		errs = append(errs, pieces[kind].finish(false))
	}
	if err := errors.Join(errs...); err != nil {
		for _, p := range pieces {
			os.Remove(p.tmp)
		}
		return err
	}
	// All kinds or none: a reader must not find some of a flush's rows.
	var published []string
	var size int64
	for _, kind := range schema.DerivedKinds {
		p := pieces[kind]
		name, _ := derivedOf(flowPiece, kind)
		if st, err := os.Stat(p.tmp); err == nil {
			size += st.Size()
		}
		if err := os.Rename(p.tmp, name); err != nil {
			for _, q := range pieces {
				os.Remove(q.tmp)
			}
			for _, q := range published {
				os.Remove(q)
			}
			return fmt.Errorf("publish %s: %w", name, err)
		}
		published = append(published, name)
	}
	d.piecePaths = append(d.piecePaths, published...)
	d.pieceBytes += size
	return nil
}

// createPiece starts the hidden file of a derived piece of a kind.
func (d *derivation) createPiece(kind string) (*derivedFile, error) {
	dir, _ := derivedDir(d.flowPart, kind)
	// Named after its flow file, so that recovery can tell whose it is
	// (see sessionOfHidden) and leave a live session's alone.
	f, err := os.CreateTemp(dir, "."+d.name+".piece-*"+tmpSuffix)
	if err != nil {
		return nil, fmt.Errorf("create piece in %s: %w", dir, err)
	}
	f.Close()
	p, err := createDerived(f.Name(), kind, derivedSchema(kind), d.o)
	if err != nil {
		os.Remove(f.Name())
	}
	return p, err
}

// end stops the pieces: the flow file, about to be published, holds the
// rows of the one being written and of those still to come.
func (d *derivation) end() {
	_ = d.wait() // an error stays for finish
	d.live = false
	if d.piece != nil {
		d.piece.release()
		d.piece = nil
	}
}

// finish completes the derived files, synced, still under their hidden
// names; publish renames them.
func (d *derivation) finish() error {
	if err := d.wait(); err != nil {
		d.discard()
		return err
	}
	d.end()
	f := d.deriver.Finish()
	if err := d.addRequests(f.Requests, true); err != nil {
		d.discard()
		return err
	}
	for kind, encode := range map[string]func() arrow.RecordBatch{
		schema.KindConnections: func() arrow.RecordBatch { return schema.Connections.Encode(f.Connections) },
		schema.KindTraffic:     func() arrow.RecordBatch { return schema.Traffic.Encode(f.Traffic) },
		schema.KindPods:        func() arrow.RecordBatch { return schema.Pods.Encode(f.Pods) },
		schema.KindSummary:     func() arrow.RecordBatch { return schema.SummaryTable.Encode(f.Summary) },
	} {
		rows := encode()
		err := d.files[kind].bf.write(rows)
		d.files[kind].rows += rows.NumRows()
		rows.Release()
		if err != nil {
			d.discard()
			return fmt.Errorf("write %s: %w", d.files[kind].tmp, err)
		}
	}
	d.releaseRequests()
	var errs []error
	if err := d.files[schema.KindSummary].bf.setMeta(f.SummaryMeta); err != nil {
		errs = append(errs, fmt.Errorf("write %s: %w", d.files[schema.KindSummary].tmp, err))
	}
	for _, kind := range schema.DerivedKinds {
		f := d.files[kind]
		errs = append(errs, f.finish(true))
		if st, err := os.Stat(f.tmp); err == nil {
			d.bytes += st.Size()
		}
	}
	if err := errors.Join(errs...); err != nil {
		d.discard()
		return err
	}
	return nil
}

// publish renames the finished derived files to those of the flow file
// final, and makes the names durable: before the flow file is published.
func (d *derivation) publish(final string) error {
	if d == nil {
		return nil
	}
	var names []string
	for _, kind := range schema.DerivedKinds {
		name, ok := derivedOf(final, kind)
		if !ok {
			return fmt.Errorf("publish derived files of %s: not in a recording's layout", final)
		}
		if err := os.Rename(d.files[kind].tmp, name); err != nil {
			return fmt.Errorf("publish %s: %w", name, err)
		}
		names = append(names, name)
	}
	return syncDirsOf(names)
}

// discard drops every derived file and piece being written.
func (d *derivation) discard() {
	if d == nil {
		return
	}
	_ = d.wait() // what is discarded had an error, or no use

	for _, f := range d.files {
		f.discard()
	}
	d.end()
	d.releaseRequests()
}

func (d *derivation) releaseRequests() {
	if d.counted != nil {
		d.counted.Release()
		d.unsettled.Release()
		d.others.Release()
		d.counted, d.unsettled, d.others = nil, nil, nil
	}
}

// rows are the rows of each kind written to the derived files.
func (d *derivation) rows() map[string]int64 {
	out := map[string]int64{}
	if d != nil {
		_ = d.wait()
		for kind, f := range d.files {
			out[kind] = f.rows
		}
	}
	return out
}

// openBytes is what the derived files take on disk, published pieces and
// files being written (a piece's rows are in memory until published).
func (d *derivation) openBytes() int64 {
	_ = d.wait()
	n := d.pieceBytes
	for _, f := range d.files {
		n += f.size()
	}
	return n
}

// WriteSummaryOf replaces the summary file of the flow file flowPath with
// rows, atomically: for data generated without flows (benchmarks of a
// cluster's day, too large to simulate), which readers take as written.
func WriteSummaryOf(flowPath string, rows []schema.Summary, meta map[string]string) error {
	final, ok := derivedOf(flowPath, schema.KindSummary)
	if !ok {
		return fmt.Errorf("%s: not in a recording's layout", flowPath)
	}
	d, err := createDerived(hiddenPath(final, tmpSuffix), schema.KindSummary, derivedSchema(schema.KindSummary),
		derivedMeta(WriterOptions{RowGroupRows: defaults.RowGroupRows}))
	if err != nil {
		return err
	}
	rec := schema.SummaryTable.Encode(rows)
	defer rec.Release()
	if err := d.bf.write(rec); err != nil {
		d.discard()
		return fmt.Errorf("write %s: %w", d.tmp, err)
	}
	if err := d.bf.setMeta(meta); err != nil {
		d.discard()
		return fmt.Errorf("write %s: %w", d.tmp, err)
	}
	if err := d.finish(true); err != nil {
		return err
	}
	if err := os.Rename(d.tmp, final); err != nil {
		return fmt.Errorf("publish %s: %w", final, err)
	}
	return nil
}
