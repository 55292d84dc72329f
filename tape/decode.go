package tape

import (
	"context"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"google.golang.org/protobuf/proto"

	"github.com/flowtape/flowtape/schema"
)

// Rows are read from a file by one goroutine and decoded into messages by
// several, a chunk of rows each; the consumer takes them in order, on its
// own goroutine. Decoding costs about as much as reading, so this keeps the
// cores busy while the consumer (a merge, a gRPC stream) stays sequential.

const (
	// batchRows is the size of the batches read from a file (but for a row
	// group that must be sorted): small batches start decoding sooner, and
	// let the Parquet decoders reuse their buffers instead of clearing new
	// ones.
	batchRows = 2048
	// chunkRows is how many rows a goroutine decodes at a time: enough that
	// handing them over is cheap, few enough that little is decoded ahead.
	chunkRows = 512
	// chunksAhead is how many decoded chunks a stream holds for its
	// consumer: with the batch being read, what bounds its memory.
	//
	// What a stream holds is most of what replay's collector works for:
	// under its memory limit (defaults.ReplayMemoryLimit) the collector
	// runs more often the more is live. Against 4096, 1024 and 4 (a live
	// heap of about 80 MB for a stream, 45 MB now), these sizes cut
	// replay's CPU per flow by about 8% and its peak memory by about 25 MB
	// over 1M flows (a drain client, paired runs) at Go's default GOGC;
	// replay now spends that memory on collecting less often
	// (defaults.ReplayGCPercent).
	chunksAhead = 2
)

// readMem allocates the Arrow arrays that rows are decoded from. Decoded
// strings share the arrays' memory instead of being copied, which is only
// safe while Go's collector owns that memory: a C allocator (arrow-go's
// mallocator build tag for memory.DefaultAllocator) frees it on Release.
var readMem memory.Allocator = memory.NewGoAllocator()

// decodeSlots bounds the goroutines decoding at once across the streams of
// one read (a Scan merges several).
type decodeSlots chan struct{}

func newDecodeSlots() decodeSlots { return make(decodeSlots, runtime.GOMAXPROCS(0)) }

// opener opens a file for a stream, which calls close when done with it.
type opener func() (rdr *file.Reader, close func() error, err error)

// rowStream hands out the decoded rows of a file's row groups, in order.
type rowStream[M proto.Message] struct {
	ctx    context.Context
	cancel context.CancelFunc
	chunks chan *rowChunk[M]
	done   chan struct{} // closed when the reading goroutine has returned
	err    error         // why reading ended early; set before chunks is closed

	cur  []M
	pos  int
	cerr error // what ended the current chunk, after its rows
	fail error // what ended the stream, once it has (io.EOF: the end)
}

// rowChunk is a run of consecutive rows (in the stream's order), decoded
// once ready is closed; err is what stopped the decoding after rows.
type rowChunk[M proto.Message] struct {
	rows  []M
	err   error
	ready chan struct{}
}

// streamRows starts reading the given row groups (nil: all) of the file
// open returns. Rows come in file order, or with sorted each row group in
// time order (stable). The caller must call stop.
func streamRows[M proto.Message](ctx context.Context, t *schema.Table[M], path string, open opener, groups []int, sorted bool, slots decodeSlots) *rowStream[M] {
	ctx, cancel := context.WithCancel(ctx)
	s := &rowStream[M]{ctx: ctx, cancel: cancel, chunks: make(chan *rowChunk[M], chunksAhead), done: make(chan struct{})}
	r := &rowReader[M]{t: t, path: path, out: s.chunks, slots: slots}
	go func() {
		defer close(s.done)
		err := r.read(ctx, open, groups, sorted)
		// Nothing runs on after stop: wait for the decoders.
		r.decoding.Wait()
		s.err = err
		close(s.chunks)
	}()
	return s
}

// next returns the next row; false at the end, or when reading failed or
// the context ended (Err says which).
func (s *rowStream[M]) next() (M, bool) {
	var zero M
	for s.pos == len(s.cur) {
		s.cur = nil
		switch {
		case s.fail != nil:
			return zero, false
		case s.cerr != nil:
			s.fail = s.cerr
			return zero, false
		}
		// As often as a row-by-row read would check it.
		if err := s.ctx.Err(); err != nil {
			s.fail = err
			return zero, false
		}
		c, ok := <-s.chunks
		if !ok {
			s.fail = s.err
			if s.fail == nil {
				s.fail = io.EOF
			}
			return zero, false
		}
		<-c.ready
		s.cur, s.pos, s.cerr = c.rows, 0, c.err
	}
	m := s.cur[s.pos]
	s.pos++
	return m, true
}

// Err is why next returned false: nil at the end of the rows.
func (s *rowStream[M]) Err() error {
	if s.fail == io.EOF {
		return nil
	}
	return s.fail
}

// stop ends reading and waits for the stream's goroutines to return.
func (s *rowStream[M]) stop() {
	s.cancel()
	<-s.done
}

// rowReader is the reading side of a stream.
type rowReader[M proto.Message] struct {
	t        *schema.Table[M]
	path     string
	out      chan<- *rowChunk[M]
	slots    decodeSlots
	decoding sync.WaitGroup
	fr       *pqarrow.FileReader
	leaves   []int
}

func (r *rowReader[M]) read(ctx context.Context, open opener, groups []int, sorted bool) error {
	rdr, closeFile, err := open()
	if err != nil {
		return err
	}
	defer closeFile()
	props := pqarrow.ArrowReadProperties{BatchSize: batchRows}
	r.leaves = readLeaves(r.t, rdr, &props)
	if r.fr, err = pqarrow.NewFileReader(rdr, props, readMem); err != nil {
		return fmt.Errorf("%s: %w", r.path, err)
	}
	if !sorted {
		first := int64(0)
		if len(groups) > 0 {
			first = firstRow(rdr, groups[0])
		}
		return r.readBatches(ctx, groups, first, false)
	}
	for _, g := range groups {
		inOrder, err := r.groupInOrder(ctx, g)
		if err != nil {
			return err
		}
		if inOrder {
			err = r.readBatches(ctx, []int{g}, firstRow(rdr, g), false)
		} else {
			// Sorting needs the whole row group in one batch.
			r.fr.Props.BatchSize = max(batchRows, rdr.MetaData().RowGroup(g).NumRows())
			err = r.readBatches(ctx, []int{g}, firstRow(rdr, g), true)
			r.fr.Props.BatchSize = batchRows
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readLeaves returns the Parquet leaf columns that decoding needs (not the
// derived columns, nor those this build does not know), and asks for their
// strings as dictionaries, as Parquet stores them: decoding then shares
// each distinct value instead of copying every row's into a new buffer.
func readLeaves[M proto.Message](t *schema.Table[M], rdr *file.Reader, props *pqarrow.ArrowReadProperties) []int {
	sch := rdr.MetaData().Schema
	var leaves []int
	for i := 0; i < sch.NumColumns(); i++ {
		col := sch.Column(i)
		j := t.ColumnIndex(col.ColumnPath()[0])
		if j < 0 || t.Columns[j].Derived {
			continue
		}
		leaves = append(leaves, i)
		if col.PhysicalType() == parquet.Types.ByteArray {
			props.SetReadDict(i, true)
		}
	}
	return leaves
}

// firstRow is the position in the file of row group g's first row.
func firstRow(rdr *file.Reader, g int) int64 {
	var n int64
	for i := 0; i < g; i++ {
		n += rdr.MetaData().RowGroup(i).NumRows()
	}
	return n
}

// groupInOrder reads the time column of a row group to tell whether its
// rows are in time order already, as a recorder writes them.
func (r *rowReader[M]) groupInOrder(ctx context.Context, g int) (bool, error) {
	col := r.fr.ParquetReader().MetaData().Schema.ColumnIndexByName("time")
	if col < 0 {
		return true, nil // all NULL: the stable order is the file's
	}
	rr, err := r.fr.GetRecordReader(ctx, []int{col}, []int{g})
	if err != nil {
		return false, fmt.Errorf("%s: %w", r.path, err)
	}
	defer rr.Release()
	last, inOrder := int64(math.MinInt64), true
	err = eachBatch(rr, r.path, func(rec arrow.RecordBatch) error {
		ts, ok := rec.Column(0).(*array.Timestamp)
		if !ok || ts.NullN() > 0 {
			inOrder = false
			return errStopReading
		}
		for _, v := range ts.TimestampValues() {
			if int64(v) < last {
				inOrder = false
				return errStopReading
			}
			last = int64(v)
		}
		return nil
	})
	return inOrder && err == nil, err
}

// readBatches reads consecutive row groups, whose first row is row first
// of the file, and queues their rows; with sort, in time order, which
// needs them in one batch.
func (r *rowReader[M]) readBatches(ctx context.Context, groups []int, first int64, sort bool) error {
	rr, err := r.fr.GetRecordReader(ctx, r.leaves, groups)
	if err != nil {
		return fmt.Errorf("%s: %w", r.path, err)
	}
	defer rr.Release()
	return eachBatch(rr, r.path, func(rec arrow.RecordBatch) error {
		if err := r.queueBatch(ctx, rec, first, sort); err != nil {
			return err
		}
		first += rec.NumRows()
		return nil
	})
}

// queueBatch hands the rows of rec out to decoders, a chunk each, and
// queues the chunks in order. Rows are numbered from first in errors.
func (r *rowReader[M]) queueBatch(ctx context.Context, rec arrow.RecordBatch, first int64, sort bool) error {
	dec, err := r.t.NewRowDecoder(rec, first)
	if err != nil {
		return fmt.Errorf("%s: %w", r.path, err)
	}
	var order []int
	if tc := rec.Schema().FieldIndices("time"); sort && len(tc) > 0 {
		order = timeOrder(rec.Column(tc[0]))
	}
	n := int(rec.NumRows())
	for lo := 0; lo < n; lo += chunkRows {
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case r.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		c := &rowChunk[M]{ready: make(chan struct{})}
		rec.Retain()
		r.decoding.Add(1)
		go func(lo, hi int) {
			defer r.decoding.Done()
			c.rows, c.err = decodeRange(dec, order, lo, hi)
			if c.err != nil {
				c.err = fmt.Errorf("%s: %w", r.path, c.err)
			}
			rec.Release()
			<-r.slots
			close(c.ready)
		}(lo, min(lo+chunkRows, n))
		select {
		case r.out <- c:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// decodeRange decodes rows lo to hi (of order, when given) until one fails.
func decodeRange[M proto.Message](dec *schema.RowDecoder[M], order []int, lo, hi int) ([]M, error) {
	rows := make([]M, 0, hi-lo)
	for k := lo; k < hi; k++ {
		i := k
		if order != nil {
			i = order[k]
		}
		m, err := dec.Decode(i)
		if err != nil {
			return rows, err
		}
		rows = append(rows, m)
	}
	return rows, nil
}
