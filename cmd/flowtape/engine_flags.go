//go:build !recorder

package main

import (
	"github.com/spf13/cobra"

	"github.com/flowtape/flowtape/analyze"
)

// The flags of the commands that run analyses; the recorder build
// (-tags recorder) has none of them.

type engineFlags struct {
	memoryLimit, tempDir string
}

func (f *engineFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.memoryLimit, "memory-limit", "", "DuckDB memory limit (e.g. 2GB); beyond it, work spills to --temp-dir")
	cmd.Flags().StringVar(&f.tempDir, "temp-dir", "", "where DuckDB spills when over --memory-limit (default: a new directory in the system temp directory, removed at exit)")
}

func (f *engineFlags) options() analyze.Options {
	return analyze.Options{MemoryLimit: f.memoryLimit, TempDir: f.tempDir}
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
