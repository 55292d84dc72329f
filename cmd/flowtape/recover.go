package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/flowtape/flowtape/internal/buildinfo"
	"github.com/flowtape/flowtape/tape"
)

func newRecoverCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "recover DIR",
		Short: "Finish the files a killed recorder left in a recording directory",
		Long: `Turn what an interrupted flowtape record left in DIR (hidden .wal and .tmp files)
into complete Parquet files. Record does this itself when it starts in a directory.`,
		Example: `  flowtape recover incident-42`,
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := tape.Recover(args[0], buildinfo.Writer())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "recovered %d files (%d rows) in %s; %d leftovers removed; %d bytes of a torn last write dropped\n",
				st.Files, st.Rows, args[0], st.Removed, st.TornBytes)
			return nil
		},
	}
}
