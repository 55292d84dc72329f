package tape

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flowtape/flowtape/schema"
)

// Retention bounds a recording that a recorder keeps adding to (flowtape
// record --retention, --max-disk): the oldest finished files go first.
//
// What goes, and why so:
//   - A unit is a finished file: a flow file with its derived files (the
//     flow file first, so that a reader never lists a flow file whose
//     derived files are gone), or an events file. What is being written
//     (hidden .wal and .tmp files, a live segment's pieces) never goes:
//     it is not finished.
//   - MaxAge goes by the flows' time, not the files' mtime: --retention 7d
//     keeps seven days of flows, for an import or a backfill too. A file
//     goes once its whole hour partition is older than now - MaxAge, so
//     that a partition is never half expired by age.
//   - MaxBytes counts every file under the directory, open ones included
//     (the caller's reserve is what its open files are about to take), and
//     removes the oldest units until the rest fit.
//   - On Linux a reader that has a file open keeps reading it after its
//     removal; a reader that listed a file it then finds gone lists again
//     (FindAndStat).
//
// What went is summed up in the manifest (Manifest.Expired): files, bytes,
// flows and events, and the time range of the flows, so that coverage can
// say "flows before T expired"; sessions whose files all went are folded
// into it, so that the manifest stays small however long a recorder runs.
// Guarded by TestRetention* in retention_test.go and, end to end, by
// record's TestRecordWithRetention.
type Retention struct {
	MaxAge   time.Duration
	MaxBytes int64
	// Spool: the directory is a bucket's spool (upload.go). What goes had
	// not reached the store: it is lost, summed up in Manifest.Dropped,
	// not expired; files kept only for resuming (up already) go first,
	// uncounted; the file being uploaded stays.
	Spool bool
}

// Enabled reports whether r removes anything.
func (r Retention) Enabled() bool { return r.MaxAge > 0 || r.MaxBytes > 0 }

// Expired sums up what retention removed from a recording.
type Expired struct {
	Files  int64 `json:"files"`
	Bytes  int64 `json:"bytes"`
	Flows  int64 `json:"flows"`
	Events int64 `json:"events"`
	// FirstFlow and LastFlow bound the flows removed: the recording holds
	// every flow it recorded after LastFlow.
	FirstFlow *time.Time `json:"first_flow,omitempty"`
	LastFlow  *time.Time `json:"last_flow,omitempty"`
	// LastEvent is the newest event removed (lost events, node status,
	// the recorder's reconnects): the events after it are all there.
	LastEvent *time.Time `json:"last_event,omitempty"`
	// Removals counts the runs that removed something; LastRemoval is the
	// newest.
	Removals    int64      `json:"removals"`
	LastRemoval *time.Time `json:"last_removal,omitempty"`
	// Sessions counts the sessions whose files all expired; their totals
	// are summed in SessionTotals (the manifest's totals include them).
	Sessions      int64  `json:"sessions"`
	SessionTotals Totals `json:"session_totals"`
}

func (e *Expired) add(o Expired) {
	e.Files += o.Files
	e.Bytes += o.Bytes
	e.Flows += o.Flows
	e.Events += o.Events
	e.FirstFlow, e.LastFlow, e.LastEvent = earliest(e.FirstFlow, o.FirstFlow), latest(e.LastFlow, o.LastFlow), latest(e.LastEvent, o.LastEvent)
}

// Usage is what a recording directory takes on disk.
type Usage struct {
	// Bytes of every file under it, files being written included.
	Bytes int64
	// Files are its finished files (flows and events; derived files go
	// with their flow file).
	Files int
}

// Expire removes what r says must go from the directory d holds, keeping
// reserve bytes of room for the caller's open files under r.MaxBytes, and
// records it in the manifest. It returns what this call removed (zero if
// nothing) and what the directory takes on disk afterwards (with a zero
// r, only that).
func (d *Dir) Expire(r Retention, now time.Time, reserve int64) (Expired, Usage, error) {
	return expire(d.path, r, now, reserve)
}

// unit is one removable file with the files that go with it.
type unit struct {
	kind  string
	part  time.Time // start of its hour partition
	name  string
	paths []string // the file first
	bytes int64
}

func expire(dir string, r Retention, now time.Time, reserve int64) (Expired, Usage, error) {
	var out Expired
	var kept map[string]bool
	if r.Spool {
		mu := spoolMutex(dir)
		mu.Lock()
		defer mu.Unlock()
		kept = readKept(dir)
	}
	units, total, ids, err := diskUnits(dir)
	gone := 0 // units removed meanwhile by another writer of the directory
	usage := func() Usage {
		files := 0
		for _, u := range units {
			if !derivedKind(u.kind) {
				files++
			}
		}
		return Usage{Bytes: total, Files: files - int(out.Files) - gone}
	}
	if err != nil {
		return out, usage(), err
	}
	if !r.Enabled() {
		return out, usage(), nil
	}
	isKept := func(u unit) bool { return kept[relKey(dir, u.paths[0])] }
	slices.SortFunc(units, func(a, b unit) int {
		// In a spool, what is up already goes first.
		if ka, kb := isKept(a), isKept(b); ka != kb {
			if ka {
				return -1
			}
			return 1
		}
		return cmp.Or(a.part.Compare(b.part), cmp.Compare(a.name, b.name), cmp.Compare(a.kind, b.kind))
	})
	var errs []error
	var removedPaths []string
	keptChanged := false
	for _, u := range units {
		byAge := r.MaxAge > 0 && !u.part.Add(time.Hour).After(now.Add(-r.MaxAge))
		byBytes := r.MaxBytes > 0 && total+reserve > r.MaxBytes
		if !byAge && !byBytes {
			// Units are oldest first: a younger one is not due by age,
			// and the rest fit.
			break
		}
		if _, busy := spoolBusy.Load(u.paths[0]); busy && r.Spool {
			continue // being uploaded
		}
		if isKept(u) {
			removed, err := removeUnit(u)
			total -= removed
			if err != nil && !errors.Is(err, errGone) {
				errs = append(errs, err)
				continue
			}
			removedPaths = append(removedPaths, u.paths...)
			delete(kept, relKey(dir, u.paths[0]))
			keptChanged = true
			continue
		}
		rows, lo, hi := fileRows(u.paths[0], u.kind)
		removed, err := removeUnit(u)
		total -= removed
		if errors.Is(err, errGone) {
			total -= u.bytes
			if !derivedKind(u.kind) {
				gone++
			}
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		removedPaths = append(removedPaths, u.paths...)
		out.Bytes += removed
		if derivedKind(u.kind) {
			// An orphan (its flow file went first): its bytes are freed,
			// but it is no file of the recording's to count.
			continue
		}
		out.Files++
		switch u.kind {
		case schema.KindFlows:
			out.Flows += rows
			if rows > 0 {
				first, last := time.Unix(0, lo).UTC(), time.Unix(0, hi).UTC()
				out.add(Expired{FirstFlow: &first, LastFlow: &last})
			}
		case schema.KindEvents:
			out.Events += rows
			if rows > 0 && hi > 0 {
				last := time.Unix(0, hi).UTC()
				out.add(Expired{LastEvent: &last})
			}
		}
		if id, ok := parseFileName(u.paths[0]); ok {
			ids[id]--
		}
	}
	if keptChanged {
		if err := writeKept(dir, kept); err != nil {
			errs = append(errs, err)
		}
	}
	if out.Files == 0 && out.Bytes == 0 {
		if keptChanged {
			errs = append(errs, syncDirsOf(removedPaths))
		}
		return out, usage(), errors.Join(errs...)
	}
	if err := syncDirsOf(removedPaths); err != nil {
		errs = append(errs, err)
	}
	at := now.UTC()
	if r.Spool {
		if err := updateManifest(dir, func(m *Manifest) {
			if m.Dropped == nil {
				m.Dropped = &Expired{}
			}
			m.Dropped.add(out)
			m.Dropped.Removals++
			m.Dropped.LastRemoval = &at
		}); err != nil {
			errs = append(errs, err)
		}
		if _, t, _, err := diskUnits(dir); err == nil {
			total = t
		}
		return out, usage(), errors.Join(errs...)
	}
	if err := updateManifest(dir, func(m *Manifest) {
		if m.Expired == nil {
			m.Expired = &Expired{}
		}
		m.Expired.add(out)
		m.Expired.Removals++
		m.Expired.LastRemoval = &at
		// Sessions none of whose files are left, and which are not
		// writing, are summed up instead of listed.
		m.Sessions = slices.DeleteFunc(m.Sessions, func(s Session) bool {
			// Only a session that is over: complete, failed, or recording
			// with no writer left (killed). An import being published has
			// no files here yet.
			over := s.Status == "complete" || s.Status == "failed" || (s.Status == "recording" && !liveSession(dir, s.RecordingID))
			if !over || ids[s.RecordingID] > 0 {
				return false
			}
			m.Expired.Sessions++
			m.Expired.SessionTotals.add(s.Totals)
			return true
		})
	}); err != nil {
		errs = append(errs, err)
	}
	// The manifest changed size.
	if _, t, _, err := diskUnits(dir); err == nil {
		total = t
	}
	return out, usage(), errors.Join(errs...)
}

// removeUnit removes a unit's files, the file first; it returns the bytes
// freed. A unit whose file another writer of the directory removed first
// (each recorder of a shared directory runs retention) is not this call's:
// errGone, counted by the other.
func removeUnit(u unit) (int64, error) {
	var freed int64
	for i, p := range u.paths {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			if i == 0 {
				return 0, errGone
			}
			continue
		}
		if err := os.Remove(p); err != nil {
			if i == 0 && errors.Is(err, fs.ErrNotExist) {
				return 0, errGone
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return freed, fmt.Errorf("retention: remove %s: %w", p, err)
			}
		}
		if st != nil {
			freed += st.Size()
		}
	}
	return freed, nil
}

var errGone = errors.New("removed by another writer")

// fileRows reads a file's row count and time range from its footer (zero
// when it cannot: the file then still goes).
func fileRows(path, kind string) (rows, lo, hi int64) {
	rdr, _, err := openFileKind(kind, path)
	if err != nil {
		return 0, 0, 0
	}
	defer rdr.Close()
	md := rdr.MetaData()
	col := md.Schema.ColumnIndexByName("time")
	for g := range rdr.NumRowGroups() {
		l, h, ok := groupTimes(md.RowGroup(g), col)
		if !ok {
			continue
		}
		if lo == 0 || l < lo {
			lo = l
		}
		hi = max(hi, h)
	}
	return md.NumRows, lo, hi
}

// diskUnits lists a recording directory's finished files as units, the
// bytes every file under it takes, and how many units each recording id
// (session) has.
func diskUnits(dir string) ([]unit, int64, map[string]int, error) {
	var units []unit
	var total int64
	ids := map[string]int{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile (a piece, a compacted file)
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		total += info.Size()
		return nil
	})
	if err != nil {
		return nil, total, ids, fmt.Errorf("retention: %w", err)
	}
	// Derived files whose flow file is gone (a crash between the two
	// removals) are units of their own.
	for _, kind := range slices.Concat(kinds, schema.DerivedKinds) {
		derived := !slices.Contains(kinds, kind)
		parts, _ := filepath.Glob(filepath.Join(dir, kind, "date=*", "hour=*"))
		for _, part := range parts {
			start, ok := partitionWindow(part)
			if !ok {
				continue
			}
			entries, err := os.ReadDir(part)
			if err != nil {
				continue
			}
			for _, e := range entries {
				name := e.Name()
				p := filepath.Join(part, name)
				if e.IsDir() || hidden(name) || !strings.HasSuffix(name, parquetSuffix) {
					continue
				}
				if _, isPiece := pieceOf(p); isPiece {
					continue // a live segment's: not finished
				}
				if derived {
					// A live session publishes a flow file's derived files
					// just before the flow file.
					if flow, ok := flowOf(p); !ok || exists(flow) || liveSession(dir, sessionOfHidden(p)) {
						continue
					}
				}
				u := unit{kind: kind, part: start, name: name, paths: []string{p}}
				if kind == schema.KindFlows {
					for _, dk := range schema.DerivedKinds {
						if dp, ok := derivedOf(p, dk); ok {
							u.paths = append(u.paths, dp)
						}
					}
				}
				if isCompacted(p) {
					// The note naming what it replaced, which is gone.
					u.paths = append(u.paths, hiddenPath(p, replacesSuffix))
				}
				for _, q := range u.paths {
					if st, err := os.Stat(q); err == nil {
						u.bytes += st.Size()
					}
				}
				if id, ok := parseFileName(p); ok && !derived {
					ids[id]++
				}
				units = append(units, u)
			}
		}
	}
	return units, total, ids, nil
}

// flowOf is the flow file a derived file belongs to.
func flowOf(derivedPath string) (string, bool) {
	dir, _, ok := RecordingDir(derivedPath)
	if !ok {
		return "", false
	}
	part := filepath.Dir(derivedPath)
	return filepath.Join(dir, schema.KindFlows, filepath.Base(filepath.Dir(part)), filepath.Base(part), filepath.Base(derivedPath)), true
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// derivedKind reports whether kind is a derived table's.
func derivedKind(kind string) bool { return slices.Contains(schema.DerivedKinds, kind) }
