package schema

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// A recording directory holds one subdirectory per row kind, named after
// the kind, Hive-partitioned by the UTC hour of its rows, so that DuckDB
// (hive_partitioning) and flowtape's own readers skip hours a query does
// not need:
//
//	DIR/manifest.json
//	DIR/flows/date=2026-11-25/hour=13/20261125T130102Z-<recording id>-000001.parquet
//	DIR/events/date=2026-11-25/hour=13/...parquet
//
// Names starting with "." are files being written, or staged; readers
// ignore them.

// Partition is the partition directory of rows at t, relative to the kind's
// directory.
func Partition(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("date=%s/hour=%02d", t.Format("2006-01-02"), t.Hour())
}

// partitionWindow returns the hour a partition path (any path containing
// date=YYYY-MM-DD/hour=HH) covers.
func partitionWindow(path string) (start time.Time, ok bool) {
	var date, hour string
	for _, part := range strings.Split(filepath.ToSlash(path), "/") {
		if v, found := strings.CutPrefix(part, "date="); found {
			date = v
		}
		if v, found := strings.CutPrefix(part, "hour="); found {
			hour = v
		}
	}
	if date == "" || hour == "" {
		return time.Time{}, false
	}
	t, err := time.Parse("2006-01-02 15", date+" "+hour)
	return t, err == nil
}

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
		if kind == KindFlows {
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
		add(info.Kind, p)
		return nil
	}
	found := false
	for _, kind := range []string{KindFlows, KindEvents} {
		sub := filepath.Join(p, kind)
		if _, err := os.Stat(sub); err != nil {
			continue
		}
		found = true
		err := filepath.WalkDir(sub, func(q string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.IsDir() && strings.HasSuffix(d.Name(), ".parquet") {
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
		if k := filepath.Base(p); k == KindFlows || k == KindEvents || strings.Contains(p, "date=") {
			return filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if !d.IsDir() && !strings.HasPrefix(d.Name(), ".") && strings.HasSuffix(d.Name(), ".parquet") {
					info, err := Stat(q)
					if err != nil {
						return err
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
