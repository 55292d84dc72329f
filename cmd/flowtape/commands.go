//go:build !recorder

package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/flowtape/flowtape/analyze"
)

// The full build: every verb, with the analysis engine (DuckDB, linked in).
// commands_recorder.go is the recorder build's list.

// buildKind names this build in flowtape version.
const buildKind = "full"

// buildNote ends the root command's help (the recorder build's says what
// it lacks).
const buildNote = ""

func commands() []*cobra.Command {
	return []*cobra.Command{newVersionCmd(), newSchemaCmd(), newSimCmd(), newRecordCmd(), newRecoverCmd(), newCompactCmd(),
		newReindexCmd(), newImportCmd(), newExportCmd(), newQueryCmd(), newAnalyzeCmd(), newReplayCmd(), newReportCmd(), newDiffCmd(), newDemoCmd()}
}

// duckDBVersion is the version of the DuckDB linked in.
func duckDBVersion(ctx context.Context) (string, error) { return analyze.DuckDBVersion(ctx) }
