package tape

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/flowtape/flowtape/schema"
)

// Files are the Parquet files of a set of recordings, by kind.
type Files struct {
	Flows, Events []string
	// Copies are the files left out as copies of one in Flows or Events
	// (see dropCopies), each as "COPY (the same file as FILE)".
	Copies []string
}

// FindFiles resolves recording directories, globs and single Parquet files
// into the files they hold. A path that is none of these is an error naming
// it; so is a set of paths that holds no recording file at all.
func FindFiles(paths ...string) (Files, error) {
	var out Files
	seen := map[string]bool{}
	add := func(kind, p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		if kind == schema.KindFlows {
			out.Flows = append(out.Flows, p)
		} else {
			out.Events = append(out.Events, p)
		}
	}
	for _, arg := range paths {
		matches := []string{arg}
		if strings.ContainsAny(arg, "*?[") {
			m, err := filepath.Glob(arg)
			if err != nil {
				return out, fmt.Errorf("%s: bad pattern: %w", arg, err)
			}
			if len(m) == 0 {
				return out, fmt.Errorf("%s: matches no file", arg)
			}
			matches = m
		}
		for _, p := range matches {
			if err := findIn(p, add); err != nil {
				return out, err
			}
		}
	}
	if len(out.Flows)+len(out.Events) == 0 {
		return out, fmt.Errorf("%s: no recording files (expected DIR/flows/**/*.parquet from flowtape record or import)", strings.Join(paths, ", "))
	}
	// A live segment's pieces count until its file is published; files
	// compacted into another until that one is (see Compact).
	var err error
	if out.Flows, err = skipReplaced(superseded(out.Flows)); err != nil {
		return out, err
	}
	if out.Events, err = skipReplaced(superseded(out.Events)); err != nil {
		return out, err
	}
	if out.Flows, err = dropCopies(out.Flows, &out.Copies); err != nil {
		return out, err
	}
	if out.Events, err = dropCopies(out.Events, &out.Copies); err != nil {
		return out, err
	}
	slices.Sort(out.Flows)
	slices.Sort(out.Events)
	return out, nil
}

func findIn(p string, add func(kind, path string)) error {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: no such file or directory", p)
		}
		return err
	}
	if !fi.IsDir() {
		info, err := Stat(p)
		if err != nil {
			return err
		}
		if !slices.Contains(kinds, info.Kind) {
			return fmt.Errorf("%s: a file of the derived table %s; give its recording directory, or the flow file it is derived from", p, info.Kind)
		}
		add(info.Kind, p)
		return nil
	}
	found := false
	for _, kind := range kinds {
		sub := filepath.Join(p, kind)
		if _, err := os.Stat(sub); err != nil {
			continue
		}
		found = true
		err := filepath.WalkDir(sub, func(q string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if hidden(d.Name()) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.IsDir() && strings.HasSuffix(d.Name(), parquetSuffix) {
				add(kind, q)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	if !found {
		// A partition directory, or a kind directory, of a recording.
		if k := filepath.Base(p); slices.Contains(kinds, k) || strings.Contains(p, "date=") {
			return filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if !d.IsDir() && !hidden(d.Name()) && strings.HasSuffix(d.Name(), parquetSuffix) {
					info, err := Stat(q)
					if err != nil {
						return err
					}
					if !slices.Contains(kinds, info.Kind) {
						return fmt.Errorf("%s: a directory of the derived table %s; give its recording directory", p, info.Kind)
					}
					add(info.Kind, q)
				}
				return nil
			})
		}
		return fmt.Errorf("%s: not a flowtape recording (no flows/ or events/ directory)", p)
	}
	return nil
}

// FindAndStat is FindFiles, with each file's footer read. A live
// recording changes under a reader: a file listed a moment ago may be gone
// (pieces of a segment that has ended, see live.go), so a listing whose
// file vanished before its footer was read is taken again.
func FindAndStat(paths ...string) (Files, map[string]FileInfo, error) {
	for attempt := 0; ; attempt++ {
		files, err := FindFiles(paths...)
		if err != nil {
			return files, nil, err
		}
		infos := make(map[string]FileInfo, len(files.Flows)+len(files.Events))
		vanished := false
		for _, p := range slices.Concat(files.Flows, files.Events) {
			info, err := Stat(p)
			if err != nil {
				if _, serr := os.Stat(p); errors.Is(serr, fs.ErrNotExist) && attempt < 3 {
					vanished = true
					break
				}
				return files, nil, err
			}
			infos[p] = info
		}
		if !vanished {
			return files, infos, nil
		}
	}
}

// dropCopies leaves out the files that are copies of another: the same
// recording file (its session's name, in the same kind and hour partition)
// in two recording directories, as when a recording and a copy of it are
// both given, or a glob matches both. A copy holds the same flows: read
// twice, every count of the derived tables would double (the flows view
// keeps each uuid once, but the derived views of one session have no
// other session to tell them apart from). The first of each is kept, in
// the order the paths were given; the others are added to copies.
//
// A session writes one recording directory: one whose files are in two,
// other than as the same files, is a copy taken at another time (before
// the original went on, or was compacted, or while a segment was being
// written), which would count some flows twice, and so is an error naming
// both; so are two of the same name but of different sizes. A file that
// vanished while it was listed (a live piece, see live.go) is left to the
// reader, which lists again.
func dropCopies(files []string, copies *[]string) ([]string, error) {
	first := make(map[string]string, len(files))
	dirOf := map[string]string{} // a session's recording directory
	out := files[:0:0]
	for _, f := range files {
		dir, _, inDir := RecordingDir(f)
		id, named := parseFileName(f)
		if !inDir || !named {
			out = append(out, f)
			continue
		}
		rel, err := filepath.Rel(dir, f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		kept, seen := first[rel]
		if !seen {
			if d, ok := dirOf[id]; ok && d != dir {
				return nil, fmt.Errorf("%s and %s hold files of the same recording session (%s) that are not copies of each other: one is a copy "+
					"taken at another time (before the other went on, or was compacted); give only the newer one", d, dir, id)
			}
			dirOf[id] = dir
			first[rel] = f
			out = append(out, f)
			continue
		}
		a, errA := os.Stat(kept)
		b, errB := os.Stat(f)
		if errors.Is(errA, fs.ErrNotExist) || errors.Is(errB, fs.ErrNotExist) {
			out = append(out, f)
			continue
		}
		if err := errors.Join(errA, errB); err != nil {
			return nil, err
		}
		if a.Size() != b.Size() {
			return nil, fmt.Errorf("%s and %s are the same recording file, but of different sizes (%d and %d bytes): one is a copy taken "+
				"at another time, or was cut short; give only the newer or complete recording", kept, f, a.Size(), b.Size())
		}
		*copies = append(*copies, fmt.Sprintf("%s (the same file as %s)", f, kept))
	}
	return out, nil
}
