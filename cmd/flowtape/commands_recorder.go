//go:build recorder

package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// The recorder build (go build -tags recorder; make recorder; the image's
// --target recorder): the verbs an always-on recorder runs, and export to
// take its flows out, without the analysis engine. Why: DuckDB and the
// analyses are 140 MB of the full binary's 330, and the pages of it a
// process touches count in its resident memory on every node: a recorder
// of this build peaks 70-115 MB lower (BenchmarkRecord reports both
// builds), and needs no cgo. The trade-off: analyze, query, report,
// replay, compact and the rest run from the full binary, on this
// recorder's files (a bucket, an export), elsewhere. commands.go is the
// full build's list.

// buildKind names this build in flowtape version.
const buildKind = "recorder"

// buildNote ends the root command's help.
const buildNote = `

This is the recorder build: record, recover, reindex and export. The analyses
(analyze, query, report, replay, compact, ...) are in the full flowtape binary
and image.`

func commands() []*cobra.Command {
	cmds := []*cobra.Command{newVersionCmd(), newSchemaCmd(), newRecordCmd(), newRecoverCmd(), newReindexCmd(), newExportCmd()}
	// The full build's other verbs say where they are rather than
	// "unknown command".
	for _, verb := range []string{"analyze", "query", "report", "diff", "replay", "compact", "import", "sim", "demo"} {
		cmds = append(cmds, &cobra.Command{
			Use:                verb,
			Hidden:             true,
			DisableFlagParsing: true,
			RunE: func(*cobra.Command, []string) error {
				return fmt.Errorf("%s is not in the recorder build (record, recover, reindex, export): run it with the full flowtape binary or image", verb)
			},
		})
	}
	return cmds
}

// duckDBVersion: the recorder build has no DuckDB.
func duckDBVersion(context.Context) (string, error) { return "none (recorder build)", nil }
