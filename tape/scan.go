package tape

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/proto"

	"github.com/flowtape/flowtape/internal/observer"
	"github.com/flowtape/flowtape/schema"
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
		r, err := planRuns(p, schema.Flows, w, observer.FlowResponse)
		if err != nil {
			return err
		}
		runs = append(runs, r...)
	}
	for _, p := range files.Events {
		r, err := planRuns(p, schema.Events, w, func(e *observerpb.GetFlowsResponse) *observerpb.GetFlowsResponse { return e })
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
	slots := newDecodeSlots()
	m := &merger{}
	defer func() {
		for _, r := range runs {
			r.stop()
		}
	}()
	next, started := 0, 0
	for {
		// Start reading the run after the ones at hand, so that it is read
		// and decoded while they are consumed, not when they end.
		for started < len(runs) && started <= next {
			runs[started].start(ctx, slots)
			started++
		}
		// Merge every run that starts before the earliest row at hand.
		if next < len(runs) && (m.Len() == 0 || runs[next].lo <= m.h[0].at) {
			r := runs[next]
			next++
			if r.advance() {
				heap.Push(m, r)
			} else if r.err != nil {
				return r.err
			}
			continue
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

// A run is the rows of one row group in the window, read ahead.
type run struct {
	lo    int64 // earliest time in the run, from statistics
	order int
	read  func(ctx context.Context, slots decodeSlots) (next func() (*observerpb.GetFlowsResponse, bool), err func() error, stop func())
	next  func() (*observerpb.GetFlowsResponse, bool)
	rerr  func() error
	halt  func()
	err   error
	cur   *observerpb.GetFlowsResponse
	at    int64
}

func (r *run) start(ctx context.Context, slots decodeSlots) {
	r.next, r.rerr, r.halt = r.read(ctx, slots)
}

func (r *run) advance() bool {
	m, ok := r.next()
	if !ok {
		// Done with the run: let its rows and batch go.
		r.err = r.rerr()
		r.stop()
		r.cur, r.next, r.rerr = nil, nil, nil
		return false
	}
	r.cur, r.at = m, timeNS(m)
	return true
}

func (r *run) stop() {
	if r.halt != nil {
		r.halt()
		r.halt = nil
	}
}

func timeNS(m *observerpb.GetFlowsResponse) int64 {
	t := m.GetTime()
	return t.GetSeconds()*1e9 + int64(t.GetNanos())
}

// planRuns reads a file's footer and returns a run for each of its row
// groups that overlap the window.
func planRuns[M proto.Message](path string, t *schema.Table[M], w Window, wrap func(M) *observerpb.GetFlowsResponse) ([]*run, error) {
	if start, ok := partitionWindow(path); ok && !w.overlaps(start.UnixNano(), start.Add(time.Hour).UnixNano()-1) {
		return nil, nil
	}
	rdr, _, err := openFile(t, path)
	if err != nil {
		return nil, err
	}
	defer rdr.Close()
	var runs []*run
	ft := &footer{path: path}
	timeCol := rdr.MetaData().Schema.ColumnIndexByName("time")
	for g := 0; g < rdr.NumRowGroups(); g++ {
		lo, hi, known := groupTimes(rdr.MetaData().RowGroup(g), timeCol)
		if known && !w.overlaps(lo, hi) {
			continue
		}
		r := &run{lo: lo}
		r.read = func(ctx context.Context, slots decodeSlots) (func() (*observerpb.GetFlowsResponse, bool), func() error, func()) {
			s := streamRows(ctx, t, path, func() (*file.Reader, func() error, error) {
				rdr, err := ft.open(t.Kind)
				if err != nil {
					return nil, nil, err
				}
				return rdr, rdr.Close, nil
			}, []int{g}, true, slots)
			next := func() (*observerpb.GetFlowsResponse, bool) {
				m, ok := s.next()
				if !ok {
					return nil, false
				}
				return wrap(m), true
			}
			return next, s.Err, s.stop
		}
		runs = append(runs, r)
		ft.left++
	}
	return runs, nil
}

// footer shares a file's parsed footer between the runs of its row groups:
// parsing it takes about as long as reading a row group. It is parsed again
// when the first run opens the file rather than kept from planRuns, and
// dropped when the last one has, so that only the footers of the files
// being read are held, not those of a whole recording.
type footer struct {
	path string
	mu   sync.Mutex
	md   *metadata.FileMetaData
	left int // runs yet to open the file
}

func (f *footer) open(kind string) (*file.Reader, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var opts []file.ReadOption
	if f.md != nil {
		opts = append(opts, file.WithMetadata(f.md))
	}
	rdr, _, err := openFileKind(kind, f.path, opts...)
	if err != nil {
		return nil, err
	}
	if f.left--; f.left > 0 {
		f.md = rdr.MetaData()
	} else {
		f.md = nil
	}
	return rdr, nil
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
func openFile[M proto.Message](t *schema.Table[M], path string, opts ...file.ReadOption) (*file.Reader, FileInfo, error) {
	return openFileKind(t.Kind, path, opts...)
}

func openFileKind(kind, path string, opts ...file.ReadOption) (*file.Reader, FileInfo, error) {
	rdr, err := openParquet(path, opts...)
	if err != nil {
		return nil, FileInfo{}, err
	}
	info, err := fileInfo(rdr)
	if err == nil && info.Kind != kind {
		err = fmt.Errorf("holds %s rows, not %s", info.Kind, kind)
	}
	if err != nil {
		rdr.Close()
		return nil, info, fmt.Errorf("%s: %w", path, err)
	}
	return rdr, info, nil
}

// readRows decodes the given row groups of a file (nil: all) until yield
// returns false (then it returns errStop): in file order, or with sorted,
// each row group in time order (stable).
func readRows[M proto.Message](ctx context.Context, t *schema.Table[M], rdr *file.Reader, path string, groups []int, sorted bool, yield func(M) bool) error {
	s := streamRows(ctx, t, path, func() (*file.Reader, func() error, error) {
		return rdr, func() error { return nil }, nil
	}, groups, sorted, newDecodeSlots())
	defer s.stop()
	for {
		m, ok := s.next()
		if !ok {
			return s.Err()
		}
		if !yield(m) {
			return errStop
		}
	}
}

// errStop ends a read early without an error.
var errStop = errors.New("stop")

func ignoreStop(err error) error {
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

type merger struct {
	h []*run
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
