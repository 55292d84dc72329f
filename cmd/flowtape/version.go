package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/flowtape/flowtape/internal/buildinfo"
	"github.com/flowtape/flowtape/printer"
	"github.com/flowtape/flowtape/schema"
)

func newVersionCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the flowtape version, commit, recording schema version and DuckDB version",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := printer.CheckFormat(format); err != nil {
				return usageError{err}
			}
			duck, err := duckDBVersion(cmd.Context())
			if err != nil {
				return err
			}
			if format == "table" {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "flowtape %s (%s build)\ncommit: %s\nschema: %s\nduckdb: %s\n",
					buildinfo.Version, buildKind, buildinfo.CommitHash(), schema.Version, duck)
				return err
			}
			return printer.Print(cmd.OutOrStdout(), format, printer.Table{
				Columns: []string{"version", "build", "commit", "schema_version", "duckdb_version"},
				Rows:    [][]any{{buildinfo.Version, buildKind, buildinfo.CommitHash(), schema.Version, duck}},
			})
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "output format: table, json, csv, markdown")
	return cmd
}
