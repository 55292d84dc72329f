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
