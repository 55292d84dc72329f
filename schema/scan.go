package schema

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/proto"
)

// Window selects rows by time, both ends inclusive as in Hubble's GetFlows;
// a zero end is open.
type Window struct {
	Since, Until time.Time
}

func (w Window) overlaps(lo, hi int64) bool {
	return (w.Since.IsZero() || hi >= w.Since.UnixNano()) && (w.Until.IsZero() || lo <= w.Until.UnixNano())
}

func (w Window) contains(ns int64) bool { return w.overlaps(ns, ns) }

// Scan calls fn with every flow and event of the files inside the window,
// as GetFlows responses in time order (ties in file order, flows before
// events), merging files the way a relay merges nodes. Files and row groups
// outside the window are not read (Hive partitions, then row group
// statistics). Only the files whose time range has begun are open at once,
// so memory stays bounded by the overlap of files, not their number.
//
// Each row group is a run, sorted by time when it is read (a row group of an
// import may be out of order), so the order is exact; memory holds the row
// groups whose time ranges overlap the current time, a few for recordings
// written in time order.
func Scan(ctx context.Context, files Files, w Window, fn func(*observerpb.GetFlowsResponse) error) error {
	var runs []*run
	for _, p := range files.Flows {
		r, err := planRuns(p, Flows, w, FlowResponse)
		if err != nil {
			return err
		}
		runs = append(runs, r...)
	}
	for _, p := range files.Events {
		r, err := planRuns(p, Events, w, func(e *observerpb.GetFlowsResponse) *observerpb.GetFlowsResponse { return e })
		if err != nil {
			return err
		}
		runs = append(runs, r...)
	}
	for i, r := range runs {
		r.order = i
	}
	// Stable: equal start times keep file order (flows first).
	slices.SortStableFunc(runs, func(a, b *run) int { return cmp.Compare(a.lo, b.lo) })
	m := &merger{}
	defer m.stop()
	next := 0
	for {
		// Open every run that starts before the earliest row at hand.
		for next < len(runs) && (m.Len() == 0 || runs[next].lo <= m.h[0].at) {
			r := runs[next]
			next++
			r.open(ctx)
			m.stopFns = append(m.stopFns, r.stop)
			if r.advance() {
				heap.Push(m, r)
			} else if r.err != nil {
				return r.err
			}
		}
		if m.Len() == 0 {
			return nil
		}
		r := m.h[0]
		if w.contains(r.at) {
			if err := fn(r.cur); err != nil {
				return err
			}
		}
		if r.advance() {
			heap.Fix(m, 0)
		} else {
			if r.err != nil {
				return r.err
			}
			heap.Pop(m)
		}
	}
}

// A run is one file's rows in the window, read lazily.
type run struct {
	path  string
	lo    int64 // earliest time in the run, from statistics
	order int
	read  func(ctx context.Context, yield func(*observerpb.GetFlowsResponse) bool) error
	next  func() (*observerpb.GetFlowsResponse, bool)
	stop  func()
	err   error
	cur   *observerpb.GetFlowsResponse
	at    int64
}

func (r *run) open(ctx context.Context) {
	seq := func(yield func(*observerpb.GetFlowsResponse) bool) {
		if err := r.read(ctx, yield); err != nil {
			r.err = err
		}
	}
	r.next, r.stop = iter.Pull(iter.Seq[*observerpb.GetFlowsResponse](seq))
}

func (r *run) advance() bool {
	m, ok := r.next()
	if !ok {
		return false
	}
	r.cur, r.at = m, timeNS(m)
	return true
}

// FlowResponse wraps a flow as the GetFlows response Hubble sends for it
// (the response's time and node are the flow's).
func FlowResponse(f *flowpb.Flow) *observerpb.GetFlowsResponse {
	return &observerpb.GetFlowsResponse{Time: f.GetTime(), NodeName: f.GetNodeName(),
		ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: f}}
}

func timeNS(m *observerpb.GetFlowsResponse) int64 {
	t := m.GetTime()
	return t.GetSeconds()*1e9 + int64(t.GetNanos())
}

// planRuns reads a file's footer and returns a run for each of its row
// groups that overlap the window.
func planRuns[M proto.Message](path string, t *Table[M], w Window, wrap func(M) *observerpb.GetFlowsResponse) ([]*run, error) {
	if start, ok := partitionWindow(path); ok && !w.overlaps(start.UnixNano(), start.Add(time.Hour).UnixNano()-1) {
		return nil, nil
	}
	rdr, _, err := openFile(t, path)
	if err != nil {
		return nil, err
	}
	defer rdr.Close()
	var runs []*run
	timeCol := rdr.MetaData().Schema.ColumnIndexByName("time")
	for g := 0; g < rdr.NumRowGroups(); g++ {
		lo, hi, known := groupTimes(rdr.MetaData().RowGroup(g), timeCol)
		if known && !w.overlaps(lo, hi) {
			continue
		}
		r := &run{path: path, lo: lo}
		r.read = func(ctx context.Context, yield func(*observerpb.GetFlowsResponse) bool) error {
			rdr, _, err := openFile(t, path)
			if err != nil {
				return err
			}
			defer rdr.Close()
			return ignoreStop(readRows(ctx, t, rdr, path, []int{g}, true, func(m M) bool { return yield(wrap(m)) }))
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// timeOrder returns the row indices of a time column in stable time order
// (NULL times first).
func timeOrder(col arrow.Array) []int {
	ts := col.(*array.Timestamp)
	order := make([]int, ts.Len())
	sorted := true
	for i := range order {
		order[i] = i
		if i > 0 && ts.Value(i) < ts.Value(i-1) {
			sorted = false
		}
	}
	if sorted && ts.NullN() == 0 {
		return order
	}
	at := func(i int) int64 {
		if ts.IsNull(i) {
			return math.MinInt64
		}
		return int64(ts.Value(i))
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(at(a), at(b)) })
	return order
}

// groupTimes are a row group's time bounds from its statistics.
func groupTimes(rg *metadata.RowGroupMetaData, col int) (lo, hi int64, ok bool) {
	if col < 0 {
		return 0, 0, false
	}
	cc, err := rg.ColumnChunk(col)
	if err != nil {
		return 0, 0, false
	}
	st, err := cc.Statistics()
	if err != nil || st == nil {
		return 0, 0, false
	}
	s, isInt := st.(*metadata.Int64Statistics)
	if !isInt || !s.HasMinMax() {
		return 0, 0, false
	}
	return s.Min(), s.Max(), true
}

// openFile opens a recording file of t's kind, checking its version.
func openFile[M proto.Message](t *Table[M], path string) (*file.Reader, FileInfo, error) {
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, FileInfo{}, fmt.Errorf("%s: not a readable Parquet file: %w", path, err)
	}
	info, err := fileInfo(rdr)
	if err == nil && info.Kind != t.Kind {
		err = fmt.Errorf("holds %s rows, not %s", info.Kind, t.Kind)
	}
	if err != nil {
		rdr.Close()
		return nil, info, fmt.Errorf("%s: %w", path, err)
	}
	return rdr, info, nil
}

// readRows decodes the given row groups of a file (nil: all) until yield
// returns false: in file order, or with sorted, each row group in time
// order (stable), read as one batch for that.
func readRows[M proto.Message](ctx context.Context, t *Table[M], rdr *file.Reader, path string, groups []int, sorted bool, yield func(M) bool) error {
	batch := int64(8192)
	if sorted {
		for _, g := range groups {
			batch = max(batch, rdr.MetaData().RowGroup(g).NumRows())
		}
	}
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: batch}, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	rr, err := fr.GetRecordReader(ctx, nil, groups)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer rr.Release()
	for rr.Next() {
		rec, err := t.ColumnsFor(rr.RecordBatch(), nil)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		err = yieldRows(ctx, t, rec, path, sorted, yield)
		rec.Release()
		if err != nil {
			return err
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// errStop ends a read early without an error.
var errStop = errors.New("stop")

func yieldRows[M proto.Message](ctx context.Context, t *Table[M], rec arrow.RecordBatch, path string, sorted bool, yield func(M) bool) error {
	n := int(rec.NumRows())
	var order []int
	if sorted {
		order = timeOrder(rec.Column(t.ColumnIndex("time")))
	}
	for k := 0; k < n; k++ {
		if k%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		i := k
		if order != nil {
			i = order[k]
		}
		m, err := t.Decode(rec, i)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if !yield(m) {
			return errStop
		}
	}
	return nil
}

func ignoreStop(err error) error {
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

type merger struct {
	h       []*run
	stopFns []func()
}

func (m *merger) stop() {
	for _, f := range m.stopFns {
		f()
	}
}

func (m *merger) Len() int { return len(m.h) }
func (m *merger) Less(i, j int) bool {
	if m.h[i].at != m.h[j].at {
		return m.h[i].at < m.h[j].at
	}
	return m.h[i].order < m.h[j].order
}
func (m *merger) Swap(i, j int) { m.h[i], m.h[j] = m.h[j], m.h[i] }
func (m *merger) Push(x any)    { m.h = append(m.h, x.(*run)) }
func (m *merger) Pop() any {
	x := m.h[len(m.h)-1]
	m.h = m.h[:len(m.h)-1]
	return x
}
