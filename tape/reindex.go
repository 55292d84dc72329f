package tape

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	flowpb "github.com/cilium/cilium/api/v1/flow"

	"github.com/flowtape/flowtape/schema"
)

// ReindexOptions tune Reindex.
type ReindexOptions struct {
	// Writer names the program in the derived files' metadata.
	Writer string
	// Force derives again the files whose derived files are there and
	// current.
	Force bool
	// Progress, when set, is called after each flow file with the files
	// done and to do, from any goroutine.
	Progress func(done, total int)
}

// ReindexStats say what Reindex did.
type ReindexStats struct {
	Files   int   `json:"files"`   // flow files whose derived files were written
	Skipped int   `json:"skipped"` // flow files whose derived files were current
	Rows    int64 `json:"rows"`    // flows read
}

// Reindex writes the derived files (see derived.go) of every flow file of
// the recording at dir that lacks them, or has them of another derived
// version: recordings written before they existed, or by another flowtape.
// With Force, of every flow file. It holds the directory (no recorder may
// write to it meanwhile) and recovers it first.
//
// Each derived file is written under a hidden name and renamed in when
// complete; until all of a flow file's are there, readers say that it
// lacks them and name this command. So an interrupted reindex leaves
// nothing a reader would count wrong, and running it again finishes it.
func Reindex(ctx context.Context, dir string, o ReindexOptions) (ReindexStats, error) {
	var st ReindexStats
	if err := recordingDir(dir); err != nil {
		return st, err
	}
	d, err := OpenDir(dir)
	if err != nil {
		return st, err
	}
	defer d.Close()
	if _, err := d.Recover(o.Writer); err != nil {
		return st, err
	}
	files, err := FindFiles(dir)
	if err != nil {
		return st, err
	}
	// A session's files in time order, one after another, so that its
	// connections are carried from file to file (schema.ConnState); a
	// file that is current breaks the chain, and the next starts afresh.
	type file struct {
		path    string
		current bool // its derived files are current: not written again
	}
	var sessions [][]file
	bySession := map[string]int{}
	total := 0
	for _, p := range files.Flows {
		id, ok := parseFileName(p)
		if !ok {
			id = p
		}
		i, seen := bySession[id]
		if !seen {
			i = len(sessions)
			bySession[id] = i
			sessions = append(sessions, nil)
		}
		current := !o.Force && derivedCurrent(p)
		sessions[i] = append(sessions[i], file{p, current})
		if current {
			st.Skipped++
		} else {
			total++
		}
	}
	for _, fs := range sessions {
		slices.SortFunc(fs, func(a, b file) int { return strings.Compare(filepath.Base(a.path), filepath.Base(b.path)) })
	}
	// Sessions are independent: as many at once as there are cores.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		done atomic.Int64
		ok   atomic.Int64
		rows atomic.Int64
		next = make(chan []file)
	)
	for range min(runtime.GOMAXPROCS(0), max(len(sessions), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fs := range next {
				conns := schema.NewConnState()
				for _, f := range fs {
					if f.current || ctx.Err() != nil {
						conns = schema.NewConnState()
						continue
					}
					n, err := reindexFile(ctx, f.path, o.Writer, conns)
					rows.Add(n)
					if err == nil {
						ok.Add(1)
					} else {
						conns = schema.NewConnState()
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
					if o.Progress != nil {
						o.Progress(int(done.Add(1)), total)
					}
				}
			}
		}()
	}
feed:
	for _, fs := range sessions {
		select {
		case next <- fs:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	st.Files, st.Rows = int(ok.Load()), rows.Load()
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return st, errors.Join(errs...)
}

// derivedCurrent reports whether a flow file has all its derived files, of
// this flowtape's derived version.
func derivedCurrent(flowPath string) bool {
	for _, kind := range schema.DerivedKinds {
		p, ok := derivedOf(flowPath, kind)
		if !ok {
			return false
		}
		info, err := Stat(p)
		if err != nil || info.Kind != kind || schema.CheckDerivedVersion(info.Metadata[schema.MetaDerivedVersion]) != nil {
			return false
		}
	}
	return true
}

// reindexFile writes the derived files of one flow file and returns the
// flows it read.
func reindexFile(ctx context.Context, path, writer string, conns *schema.ConnState) (int64, error) {
	info, err := Stat(path)
	if err != nil {
		return 0, err
	}
	meta := map[string]string{}
	if id, ok := parseFileName(path); ok {
		meta[MetaRecordingID] = id
	}
	d, err := derivedFor(path, WriterOptions{Writer: writer, Metadata: meta}, false, conns)
	if err != nil {
		return 0, err
	}
	if d == nil {
		return 0, fmt.Errorf("%s: not in a recording's layout (DIR/flows/date=.../hour=.../NAME.parquet): its derived files have no place", path)
	}
	// Derived beside the reading: the files go one after the other, so
	// the connections they share follow the files' order.
	d.queue = newDeriveQueue()
	defer d.queue.close()
	var rows int64
	add := func(rec arrow.RecordBatch) error {
		rows += rec.NumRows()
		return d.add(rec)
	}
	if minor(info.SchemaVersion) >= 2 {
		err = ReadColumns(ctx, path, schema.DeriveColumns, add)
	} else {
		// Files of schema 1.0 and 1.1 lack columns the derivation reads
		// (l7_protocol, source_endpoint, ...): their rows are encoded
		// again, as this flowtape writes them.
		err = reencode(ctx, path, add)
	}
	if err == nil {
		err = d.finish()
	}
	if err == nil {
		err = d.publish(path)
	}
	if err != nil {
		d.discard()
		if ue := (*UnreadableError)(nil); errors.As(err, &ue) && ue.Path == path {
			return rows, fmt.Errorf("reindex: %w", err) // it names the file
		}
		return rows, fmt.Errorf("reindex %s: %w", path, err)
	}
	return rows, nil
}

// minor is the minor number of a schema version ("1.2": 2).
func minor(version string) int {
	_, m, _ := strings.Cut(version, ".")
	n, _ := strconv.Atoi(m)
	return n
}

// reencode hands the rows of a flow file to fn as batches of this
// flowtape's columns.
func reencode(ctx context.Context, path string, fn func(arrow.RecordBatch) error) error {
	enc := schema.Flows.NewEncoder(nil)
	defer enc.Release()
	flush := func() error {
		if enc.Len() == 0 {
			return nil
		}
		rec := enc.NewRecord()
		defer rec.Release()
		return fn(rec)
	}
	_, err := ReadFile(ctx, schema.Flows, path, func(f *flowpb.Flow) error {
		if err := enc.Append(f); err != nil {
			return err
		}
		if enc.Len() >= 64<<10 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s vanished while it was read: %w", path, err)
	}
	return err
}
