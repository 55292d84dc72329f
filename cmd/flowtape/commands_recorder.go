//go:build recorder

package main

import (
	"context"

	"github.com/spf13/cobra"
)

// The recorder build (go build -tags recorder; make recorder; the image's
// flowtape-recorder): the verbs an always-on recorder runs, without the
// analysis engine. Why: DuckDB and the analyses are most of the full
// binary (330 MB), and the pages of it a process touches count in its
// resident memory on every node; without them a recorder stays within
// 150 MB at 20k flows/s (BenchmarkRecord reports both builds). The
// trade-off: analyze, query, report, replay, compact and the rest run
// from the full binary, on this recorder's files, elsewhere or beside it.
// commands.go is the full build's list.

// buildKind names this build in flowtape version.
const buildKind = "recorder"

func commands() []*cobra.Command {
	return []*cobra.Command{newVersionCmd(), newSchemaCmd(), newRecordCmd(), newRecoverCmd(), newReindexCmd()}
}

// duckDBVersion: the recorder build has no DuckDB.
func duckDBVersion(context.Context) (string, error) { return "none (recorder build)", nil }
