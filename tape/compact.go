package tape

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/proto"

	"github.com/flowtape/flowtape/schema"
)

// Compaction merges the files a session wrote into one partition (an hour)
// into one file, in time order: many small files (short rotations,
// restarts) read slowly. Pieces of live segments are left to their segment
// (see live.go). Files of different sessions are not
// merged: a reader tells sessions apart by file name, and drops the flows
// two sessions both recorded (see Sessions).
//
// The switch is atomic for readers. Compacting files A..K of a session
// into M:
//
//  1. M is written as a hidden .compact-*.parquet.tmp and synced;
//  2. the note .M.parquet.replaces, naming A..K, is written and synced
//     (a note without M is ignored);
//  3. M is renamed in: from now on FindFiles takes M and skips A..K;
//  4. A..K are removed once the note is older than the grace a reader may
//     still be reading them for (CompactOptions.Grace), then the note.
//
// A reader listing before 3 reads A..K, after 3 reads M: each row once. A
// crash before 3 leaves hidden files only, which Recover removes; after
// 3, A..K are skipped and removed by the next compaction. While A..K are
// kept, M's session is not compacted again: a note names every file its
// file replaces that is still on disk, and removing M (merged into M2)
// before A..K would bring them back.

const replacesSuffix = ".replaces"

// CompactOptions tune Compact.
type CompactOptions struct {
	// Writer names the program in the new files' metadata.
	Writer string
	// Grace is how long the replaced files stay for readers that listed
	// them before the switch; 0 removes them at once (a reader then
	// reading them fails, and runs again).
	Grace time.Duration
	// Now is the clock the grace is measured on; nil is the wall clock.
	Now func() time.Time
}

// CompactStats say what Compact did.
type CompactStats struct {
	Partitions int   `json:"partitions"` // partitions (and row kinds) compacted
	Files      int   `json:"files"`      // files merged
	Written    int   `json:"written"`    // files written
	Rows       int64 `json:"rows"`       // rows in them
	Removed    int   `json:"removed"`    // replaced files removed
	Kept       int   `json:"kept"`       // replaced files kept for readers
	// Waiting are files not compacted this time: their session's last
	// compaction still keeps the files it replaced (CompactOptions.Grace).
	Waiting int `json:"waiting"`
}

// Compact merges, in every partition of the recording at dir, the files of
// each session into one. It holds the directory (no recorder may write to
// it meanwhile) and recovers it first.
func Compact(ctx context.Context, dir string, o CompactOptions) (CompactStats, error) {
	var st CompactStats
	if err := recordingDir(dir); err != nil {
		return st, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	d, err := OpenDir(dir)
	if err != nil {
		return st, err
	}
	defer d.Close()
	// Replaced files are Compact's own to count (removeReplaced below).
	if _, err := recoverLocked(dir, o.Writer, -1, nil); err != nil {
		return st, err
	}
	for _, kind := range kinds {
		ks, err := scanKind(filepath.Join(dir, kind))
		if err != nil {
			return st, err
		}
		for _, p := range ks.parts {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			if kind == schema.KindFlows {
				err = compactPartition(ctx, p, schema.Flows, func(r *observerpb.GetFlowsResponse) *flowpb.Flow { return r.GetFlow() }, kindFiles(kind), o, &st)
			} else {
				err = compactPartition(ctx, p, schema.Events, func(r *observerpb.GetFlowsResponse) *observerpb.GetFlowsResponse { return r }, kindFiles(kind), o, &st)
			}
			if err != nil {
				return st, err
			}
		}
	}
	return st, nil
}

func kindFiles(kind string) func([]string) Files {
	return func(paths []string) Files {
		if kind == schema.KindFlows {
			return Files{Flows: paths}
		}
		return Files{Events: paths}
	}
}

// sessionFile is a published file of a session in a partition.
type sessionFile struct {
	path        string
	first, last int // sequence numbers it holds
}

func compactPartition[M proto.Message](ctx context.Context, part string, t *schema.Table[M], unwrap func(*observerpb.GetFlowsResponse) M,
	files func([]string) Files, o CompactOptions, st *CompactStats) error {
	entries, err := os.ReadDir(part)
	if err != nil {
		return fmt.Errorf("compact %s: %w", part, err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && !hidden(e.Name()) && strings.HasSuffix(e.Name(), parquetSuffix) {
			names = append(names, filepath.Join(part, e.Name()))
		}
	}
	live, err := skipReplaced(names)
	if err != nil {
		return err
	}
	bySession := map[string][]sessionFile{}
	// A session whose earlier compaction still keeps the files it replaced
	// (the grace) waits: a note must name every file its file replaces
	// that is still on disk, and removing the older one first would bring
	// back what it named.
	waiting := map[string]bool{}
	for _, p := range live {
		if _, isPiece := pieceOf(p); isPiece {
			continue // of a segment whose WAL Recover did not find: left as it is
		}
		id, ok := parseSegmentName(p)
		if !ok {
			continue // not flowtape's: left as it is
		}
		if isCompacted(p) {
			if _, err := os.Stat(hiddenPath(p, replacesSuffix)); err == nil {
				waiting[id] = true
			}
		}
		first, last := seqRange(p)
		bySession[id] = append(bySession[id], sessionFile{path: p, first: first, last: last})
	}
	compacted := false
	for _, id := range slices.Sorted(maps.Keys(bySession)) {
		sf := bySession[id]
		if len(sf) < 2 {
			continue
		}
		if waiting[id] {
			st.Waiting += len(sf)
			continue
		}
		slices.SortFunc(sf, func(a, b sessionFile) int { return a.first - b.first })
		if err := compactSession(ctx, part, id, sf, t, unwrap, files, o, st); err != nil {
			return err
		}
		compacted = true
	}
	if compacted {
		st.Partitions++
	}
	return removeReplaced(part, o, st)
}

// seqRange returns the sequence numbers a file of FileName or
// compactedName holds.
func seqRange(p string) (first, last int) {
	parts := strings.Split(strings.TrimSuffix(filepath.Base(p), parquetSuffix), "-")
	first, _ = strconv.Atoi(parts[2])
	last = first
	if len(parts) == 4 {
		last, _ = strconv.Atoi(parts[3])
	}
	return first, last
}

func compactSession[M proto.Message](ctx context.Context, part, id string, sf []sessionFile, t *schema.Table[M],
	unwrap func(*observerpb.GetFlowsResponse) M, files func([]string) Files, o CompactOptions, st *CompactStats) error {
	paths := make([]string, len(sf))
	for i, f := range sf {
		paths[i] = f.path
	}
	// The first row's time names the file, as the recorder names its own.
	var firstAt time.Time
	minFirst, maxLast := sf[0].first, sf[0].last
	for _, f := range sf {
		minFirst, maxLast = min(minFirst, f.first), max(maxLast, f.last)
	}
	tmp, err := os.CreateTemp(part, ".compact-*"+parquetSuffix+tmpSuffix)
	if err != nil {
		return fmt.Errorf("compact %s: %w", part, err)
	}
	defer os.Remove(tmp.Name()) // once renamed, a no-op
	wo := WriterOptions{Writer: o.Writer, Metadata: map[string]string{MetaRecordingID: id}}
	var d *derivation
	if t.Kind == schema.KindFlows {
		// Being written under the flow file's hidden name, in their own
		// kind's directory (Recover removes what a crash leaves).
		if d, err = newDerivation(part, wo, false, nil, func(kind string) string {
			dir, _ := derivedDir(part, kind)
			return filepath.Join(dir, filepath.Base(tmp.Name()))
		}); err != nil {
			tmp.Close()
			return fmt.Errorf("compact %s: %w", part, err)
		}
	}
	var rows int64
	err = writeFile(t, tmp, wo, d, func(write func(M) error) error {
		return Scan(ctx, files(paths), Window{}, func(r *observerpb.GetFlowsResponse) error {
			if rows == 0 {
				firstAt = r.GetTime().AsTime()
			}
			rows++
			return write(unwrap(r))
		})
	})
	if err != nil {
		d.discard()
		return fmt.Errorf("compact %s: %w", part, err)
	}
	if firstAt.IsZero() {
		firstAt = partitionStart(part)
	}
	final := filepath.Join(part, compactedName(firstAt, id, minFirst, maxLast))
	if _, err := os.Stat(final); err == nil {
		d.discard()
		return fmt.Errorf("compact %s: %s exists already; leave it to flowtape compact or recover", part, final)
	}
	if err := writeNote(final, paths); err != nil {
		d.discard()
		return err
	}
	// The new file's derived files before it: a reader that takes it finds
	// them. A crash before it is published leaves them without their flow
	// file, and the note without its file: both are removed (Recover).
	if err := d.publish(final); err != nil {
		return err
	}
	if err := publish(tmp.Name(), final); err != nil {
		return err
	}
	st.Files += len(paths)
	st.Written++
	st.Rows += rows
	return nil
}

func partitionStart(part string) time.Time {
	t, _ := partitionWindow(part)
	return t
}

// writeNote writes the note naming what final replaces, durably, before
// final exists.
func writeNote(final string, replaced []string) error {
	note := hiddenPath(final, replacesSuffix)
	tmp := note + tmpSuffix
	var b strings.Builder
	for _, p := range replaced {
		b.WriteString(filepath.Base(p) + "\n")
	}
	if err := writeSmall(tmp, note, []byte(b.String())); err != nil {
		return fmt.Errorf("compact: write %s: %w", note, err)
	}
	return nil
}

// readNote returns the files (full paths) a compacted file replaces, or
// none where it has no note.
func readNote(final string) ([]string, error) {
	f, err := os.Open(hiddenPath(final, replacesSuffix))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name := strings.TrimSpace(sc.Text()); name != "" {
			out = append(out, filepath.Join(filepath.Dir(final), name))
		}
	}
	return out, sc.Err()
}

// skipReplaced drops the files that a compacted file among files replaces
// (see the protocol above). A note that cannot be read is an error: its
// file is there, so the files it names must not count too.
func skipReplaced(files []string) ([]string, error) {
	var replaced map[string]bool
	for _, f := range files {
		if _, ok := parseSegmentName(f); !ok || !isCompacted(f) {
			continue
		}
		names, err := readNote(f)
		if err != nil {
			return nil, fmt.Errorf("%s: its note of the files it replaces is unreadable (%w): run flowtape compact or recover on the recording", f, err)
		}
		for _, n := range names {
			if replaced == nil {
				replaced = map[string]bool{}
			}
			replaced[filepath.Clean(n)] = true
		}
	}
	if replaced == nil {
		return files, nil
	}
	out := files[:0:0]
	for _, f := range files {
		if !replaced[filepath.Clean(f)] {
			out = append(out, f)
		}
	}
	return out, nil
}

func isCompacted(p string) bool {
	return strings.Count(strings.TrimSuffix(filepath.Base(p), parquetSuffix), "-") == 3
}

// removeReplaced removes, in a partition, the files that compacted files
// replace once their note is older than the grace, then the notes; and
// notes without their file (a crash before the switch).
func removeReplaced(part string, o CompactOptions, st *CompactStats) error {
	notes, err := filepath.Glob(filepath.Join(part, ".*"+parquetSuffix+replacesSuffix))
	if err != nil {
		return err
	}
	var errs []error
	for _, note := range notes {
		final := finalFromHidden(note, replacesSuffix)
		if _, err := os.Stat(final); errors.Is(err, fs.ErrNotExist) {
			if err := os.Remove(note); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", note, err))
			}
			continue
		}
		fi, err := os.Stat(note)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		replaced, err := readNote(final)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if o.Grace > 0 && o.Now().Sub(fi.ModTime()) < o.Grace {
			for _, p := range replaced {
				if _, err := os.Stat(p); err == nil {
					st.Kept++
				}
			}
			continue
		}
		failed := false
		for _, p := range replaced {
			// A flow file's derived files after it: a reader never takes
			// a flow file without them.
			if err := os.Remove(p); err == nil {
				st.Removed++
			} else if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
				failed = true
				continue
			}
			for _, kind := range schema.DerivedKinds {
				d, ok := derivedOf(p, kind)
				if !ok {
					break
				}
				if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, fmt.Errorf("remove %s: %w", d, err))
					failed = true
				}
			}
		}
		// The note goes last, once what it names is gone for good.
		if !failed {
			if err := syncDir(part); err != nil {
				errs = append(errs, err)
			} else if err := os.Remove(note); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", note, err))
			}
		}
	}
	return errors.Join(errs...)
}
