package analyze

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// Rollups. What: one file per day of a recording (rollup/date=D/
// summary.parquet) holding the summary rows of every summary file of
// that day, hour rows first, with the session each came from. Why:
// opening a file costs DuckDB about 0.4 ms here, and a day of per-node
// recorders is thousands of files (4,800 for 200 nodes compacted by the
// hour): 2 s before a row is read. A day's rollup is one file, whose hour
// rows are a few row groups. The trade-off: a second copy of the day's
// summaries (a few hundred MB for 17 billion flows, against hundreds of
// GB of flows), written after the day by `flowtape compact`; a rollup
// whose files changed since (compaction, retention) is not used until it
// is written again. Guarded by TestRollupMatchesSummaries (the same rows
// on the summary path with and without rollups).

// rollupKind is the directory of rollups in a recording.
const rollupKind = tape.KindRollup

// Footer metadata of a rollup: the summary files it holds (paths relative
// to the recording, JSON), and the sums of their schema.MetaSummaryLeft
// and MetaSummaryPods.
const metaRollupFiles = "flowtape.rollup_files"

// RollupStats says what Rollup did.
type RollupStats struct {
	Days, Written, Files int
}

// Rollup writes the rollup of every day of the recording in dir that is
// over (before now's UTC day) and whose rollup is missing or holds other
// files than the day's summary files now.
func Rollup(ctx context.Context, dir string, now time.Time) (RollupStats, error) {
	var st RollupStats
	files, err := tape.FindFiles(dir)
	if err != nil {
		return st, err
	}
	byDay := map[string][]string{}
	size := map[string]int64{}
	skip := map[string]bool{} // days with a live piece, or a file without its summary
	for _, p := range files.Derived(schema.KindSummary) {
		hour, ok := tape.PartitionHour(p)
		day := hour.Format("2006-01-02")
		if !ok || day >= now.UTC().Format("2006-01-02") {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil || tape.IsPiece(p) {
			// a recording made before summaries (reindex writes them), or
			// late flows still being written: the day is read from its files
			skip[day] = true
			continue
		}
		byDay[day] = append(byDay[day], p)
		size[p] = fi.Size()
	}
	for day := range skip {
		delete(byDay, day)
	}
	if len(byDay) == 0 {
		return st, nil
	}
	e, err := Open(ctx, []string{dir}, Options{})
	if err != nil {
		return st, err
	}
	defer e.Close()
	for _, day := range slices.Sorted(maps.Keys(byDay)) {
		st.Days++
		paths := slices.Sorted(slices.Values(byDay[day])) // by hour partition
		rels := make([]string, len(paths))
		for i, p := range paths {
			rels[i], _ = filepath.Rel(dir, p)
			// with its size: a file derived again under its name (reindex)
			// makes the rollup stale
			rels[i] += fmt.Sprintf("\t%d", size[p])
		}
		slices.Sort(rels)
		out := rollupPath(dir, day)
		if have, err := e.rollupFiles(ctx, out); err == nil && slices.Equal(have, rels) {
			continue
		}
		if err := e.writeRollup(ctx, out, paths, rels); err != nil {
			return st, err
		}
		st.Written++
		st.Files += len(paths)
	}
	return st, nil
}

func rollupPath(dir, day string) string {
	return filepath.Join(tape.RollupDir(dir, day), "summary.parquet")
}

// rollupFiles reads which summary files a rollup holds.
func (e *Engine) rollupFiles(ctx context.Context, p string) ([]string, error) {
	meta, err := e.footers(ctx, []string{p})
	if err != nil {
		return nil, err
	}
	var rels []string
	if err := json.Unmarshal([]byte(meta[p][metaRollupFiles]), &rels); err != nil {
		return nil, fmt.Errorf("%s: no valid %s metadata: %w", p, metaRollupFiles, err)
	}
	if err := schema.CheckDerivedVersion(meta[p][schema.MetaDerivedVersion]); err != nil {
		return nil, err // of another flowtape: written again
	}
	return rels, nil
}

// writeRollup writes the rollup of summary files paths (rels: relative
// to the recording) to out, atomically.
func (e *Engine) writeRollup(ctx context.Context, out string, paths, rels []string) error {
	meta, err := e.footers(ctx, paths)
	if err != nil {
		return err
	}
	for _, p := range paths {
		if err := schema.CheckDerivedVersion(meta[p][schema.MetaDerivedVersion]); err != nil {
			return e.reindexError(fmt.Errorf("%s: %w", p, err))
		}
	}
	left, pods, missing := summaryLeft(meta, paths)
	if missing != "" {
		return e.reindexError(fmt.Errorf("%s: no summary metadata", missing))
	}
	list, _ := json.Marshal(rels)
	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(out), err)
	}
	return tape.WriteRollup(ctx, out, paths, map[string]string{metaRollupFiles: string(list),
		schema.MetaSummaryLeft: strconv.FormatInt(left, 10), schema.MetaSummaryPods: strconv.FormatInt(pods, 10)})
}

// summarySources finds the files the summary path reads: the rollups of
// the recordings whose summary files are all still there, and the summary
// files no such rollup holds. It checks their footers (kind, derived
// version) and keeps them (summaryMeta: a rollup's holds the sums of its
// files').
func (e *Engine) summarySources(ctx context.Context) error {
	have := map[string]bool{}
	for _, p := range e.derived[schema.KindSummary] {
		have[filepath.Clean(p)] = true
	}
	e.rolledUp = nil
	if e.summaryMeta == nil {
		e.summaryMeta = map[string]map[string]string{}
	}
	var rollups []string
	var dirs []string
	for _, dir := range recordingsOf(e.files.Flows) {
		found, _ := filepath.Glob(filepath.Join(dir, rollupKind, "date=*", "summary.parquet"))
		rollups = append(rollups, found...)
		for range found {
			dirs = append(dirs, dir)
		}
	}
	covered := map[string]bool{}
	var used []string
	if len(rollups) > 0 {
		meta, err := e.footers(ctx, rollups)
		if err != nil {
			return e.reindexError(err)
		}
		for i, r := range rollups {
			var rels []string
			if json.Unmarshal([]byte(meta[r][metaRollupFiles]), &rels) != nil || meta[r][schema.MetaKind] != rollupKind ||
				schema.CheckDerivedVersion(meta[r][schema.MetaDerivedVersion]) != nil {
				continue // not one of this flowtape's: the summary files are read
			}
			all := len(rels) > 0
			var held []string
			for _, entry := range rels {
				rel, size, _ := strings.Cut(entry, "\t")
				p := filepath.Join(dirs[i], rel)
				fi, err := os.Stat(p)
				all = all && have[p] && err == nil && size == strconv.FormatInt(fi.Size(), 10)
				held = append(held, p)
			}
			if !all {
				continue // stale: its files were compacted, expired or derived again since
			}
			for _, p := range held {
				covered[p] = true
				e.rolledUp = append(e.rolledUp, p)
			}
			used = append(used, r)
			e.summaryMeta[r] = meta[r]
		}
	}
	var rest []string
	for _, p := range e.derived[schema.KindSummary] {
		if !covered[filepath.Clean(p)] {
			rest = append(rest, p)
		}
	}
	meta, err := e.footers(ctx, rest)
	if err != nil {
		return e.reindexError(err)
	}
	for _, p := range rest {
		e.summaryMeta[p] = meta[p]
		if meta[p][schema.MetaKind] != schema.KindSummary {
			return e.reindexError(fmt.Errorf("%s: a file of kind %q in the directory of %s", p, meta[p][schema.MetaKind], schema.KindSummary))
		}
		if err := schema.CheckDerivedVersion(meta[p][schema.MetaDerivedVersion]); err != nil {
			return e.reindexError(fmt.Errorf("%s: %w", p, err))
		}
	}
	e.summarySrc, e.rollups = append(used, rest...), len(used)
	return nil
}

// edgeFiles are the rolled-up summary files whose minute rows the window
// reads: those of the hours it cuts (spans outside h0 to h1, the hours it
// covers whole, that it overlaps), and of the hours next to them (a file's
// flows may reach an hour before or after its partition's). Over a whole
// recording, none.
func (e *Engine) edgeFiles(spans []hourSpan, t0, t1, h0, h1 time.Time) []string {
	cut := map[time.Time]bool{}
	for _, h := range spans {
		inside := !h.hour.Before(h0) && h.hour.Before(h1)
		if !inside && !h.hour.After(t1) && h.hour.Add(time.Hour).After(t0) {
			for _, d := range []time.Duration{-time.Hour, 0, time.Hour} {
				cut[h.hour.Add(d)] = true
			}
		}
	}
	var out []string
	for _, p := range e.rolledUp {
		if h, ok := tape.PartitionHour(p); !ok || cut[h] {
			out = append(out, p)
		}
	}
	return out
}

// summaryFilesView is derived_summary on the summary path: the rollups
// (hour rows), the summary files no rollup holds, and the minute rows of
// the rolled-up files the window's edges need (edgeFiles).
func (e *Engine) summaryFilesView() string {
	v := baseView("derived_summary", tableColumns(schema.KindSummary), e.summarySrc)
	edges := e.summaryEdges
	if len(edges) == 0 || len(e.summarySrc) == 0 {
		return v
	}
	return v + fmt.Sprintf(`
UNION ALL BY NAME
SELECT * FROM read_parquet(%s, union_by_name = true, hive_partitioning = false) WHERE grain = 'minute'`, quoteList(edges))
}
