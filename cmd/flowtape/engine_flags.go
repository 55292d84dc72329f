//go:build !recorder

package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/tape"
)

// The flags of the commands that run analyses; the recorder build
// (-tags recorder) has none of them.

type engineFlags struct {
	memoryLimit, tempDir string
}

func (f *engineFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.memoryLimit, "memory-limit", "", "DuckDB memory limit (e.g. 2GiB); beyond it, work spills to --temp-dir")
	cmd.Flags().StringVar(&f.tempDir, "temp-dir", "", "where DuckDB spills when over --memory-limit (default: a new directory in the system temp directory, removed at exit)")
}

// options are the engine's options; a usage error names a bad
// --memory-limit before DuckDB would (its parser names no flag). Sizes
// read as every size flag of flowtape reads them (256MB is 256 MiB).
func (f *engineFlags) options() (analyze.Options, error) {
	o := analyze.Options{TempDir: f.tempDir}
	if f.memoryLimit != "" {
		n, err := parseMemoryLimit(f.memoryLimit)
		if err != nil {
			return o, usagef("--memory-limit: %v", err)
		}
		o.MemoryLimit = fmt.Sprintf("%dB", n)
	}
	return o, nil
}

// clickhouseFlags choose the engine that runs the analyses: DuckDB in
// this process (default), ClickHouse as a library in this process (chdb:
// libchdb.so from CHDB_LIB_PATH or the npm package), or a ClickHouse
// server over recordings in object storage.
type clickhouseFlags struct {
	engine, server, cluster string
}

func (f *clickhouseFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.engine, "engine", "duckdb", "what runs the SQL: duckdb (in this process), chdb (ClickHouse in this process, "+
		"libchdb.so from CHDB_LIB_PATH or npm @chdb/lib-linux-x64-gnu) or clickhouse (a server, --clickhouse)")
	fl.StringVar(&f.server, "clickhouse", "", "--engine clickhouse: the server, clickhouse://USER:PASSWORD@HOST:9000/DATABASE")
	fl.StringVar(&f.cluster, "clickhouse-cluster", "", "--engine clickhouse: read the bucket with s3Cluster over this cluster's nodes")
}

// clickhouse reports whether a ClickHouse engine is chosen, or a usage
// error for a bad combination of the flags.
func (f *clickhouseFlags) clickhouse() (bool, error) {
	switch f.engine {
	case "duckdb":
		if f.server != "" || f.cluster != "" {
			return false, usagef("--clickhouse and --clickhouse-cluster need --engine clickhouse")
		}
		return false, nil
	case "chdb":
		if f.server != "" || f.cluster != "" {
			return false, usagef("--engine chdb runs ClickHouse in this process: drop --clickhouse, or use --engine clickhouse")
		}
		return true, nil
	case "clickhouse":
		if f.server == "" {
			return false, usagef("--engine clickhouse needs --clickhouse URL (clickhouse://USER:PASSWORD@HOST:9000/DATABASE); without a server, use --engine chdb")
		}
		return true, nil
	}
	return false, usagef("--engine %q: use duckdb, chdb or clickhouse", f.engine)
}

func (f *clickhouseFlags) options() analyze.ClickHouseOptions {
	return analyze.ClickHouseOptions{Server: f.server, Cluster: f.cluster}
}

// openRunner opens the engine the flags choose over paths: ClickHouse
// reads them where they lie; DuckDB here, with the window's files of a
// bucket fetched into the cache first. close releases what it opened.
func openRunner(cmd *cobra.Command, paths []string, since, until time.Time, eng engineFlags, ch clickhouseFlags, cache cacheFlags) (r analyze.Runner, close func(), err error) {
	onCH, err := ch.clickhouse()
	if err != nil {
		return nil, nil, err
	}
	if onCH {
		c, err := analyze.OpenClickHouse(cmd.Context(), paths, since, until, ch.options())
		if err != nil {
			return nil, nil, err
		}
		return c, func() { c.Close() }, nil
	}
	return openDuckDB(cmd, paths, since, until, eng, cache)
}

// openDuckDB opens DuckDB here over paths, with the window's files of a
// bucket fetched into the cache first, and says which files it read once
// (copiesNote). close releases what it opened.
func openDuckDB(cmd *cobra.Command, paths []string, since, until time.Time, eng engineFlags, cache cacheFlags) (e *analyze.Engine, close func(), err error) {
	o, err := eng.options() // before a bucket's files are fetched
	if err != nil {
		return nil, nil, err
	}
	local, done, err := cache.localPaths(cmd, paths, since, until)
	if err != nil {
		return nil, nil, err
	}
	e, err = analyze.Open(cmd.Context(), local, o)
	if err != nil {
		done()
		return nil, nil, err
	}
	copiesNote(cmd.ErrOrStderr(), e.Files())
	cutShortNote(cmd.ErrOrStderr(), e.Files())
	return e, func() { e.Close(); done() }, nil
}

// copiesNote says which files were read once though given twice (a
// recording and a copy of it: see tape.Files.Copies), so that a user who
// meant two recordings learns that the numbers are of one.
func copiesNote(w io.Writer, f tape.Files) {
	switch n := len(f.Copies); {
	case n == 1:
		fmt.Fprintf(w, "note: read once: %s\n", f.Copies[0])
	case n > 1:
		fmt.Fprintf(w, "note: read once: %d files given twice, copies of the same recording files, e.g. %s\n", n, f.Copies[0])
	}
}

// cutShortNote warns of flow files that end before their Parquet footer
// (a copy that did not finish, a full disk, a piece torn by a crash) or do
// not begin as Parquet (overwritten): the analyses that read only the
// derived tables still answer, from what was derived when the flows were
// written, so without it nothing would say that the flows themselves are
// gone. Reads 8 bytes of each file; a file that cannot be opened is left
// to the command, which names it.
func cutShortNote(w io.Writer, f tape.Files) {
	var bad []string
	var why error
	for _, p := range f.Flows {
		if err := tape.CheckParquet(p); errors.Is(err, tape.ErrCutShort) || errors.Is(err, tape.ErrNotParquet) {
			if bad = append(bad, p); why == nil {
				why = err
			}
		}
	}
	if len(bad) == 0 {
		return
	}
	what := bad[0] + " is"
	if len(bad) > 1 {
		what = fmt.Sprintf("%d flow files are, e.g. %s,", len(bad), bad[0])
	}
	fmt.Fprintf(w, "warning: %s not a readable Parquet file (%v): the analyses of the derived tables count the flows as they were written, "+
		"but the flows themselves cannot be read (query, export, replay, analyses of flows)%s\n", what, why, flowFileAdvice(bad[0]))
}
