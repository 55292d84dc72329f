package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flowtape/flowtape/internal/buildinfo"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

func newReindexCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "reindex DIR...",
		Short: "Write the derived tables the analyses read, for recordings that lack them",
		Long: fmt.Sprintf(`Write the derived tables of every flow file of the recordings that lacks them:
%s, computed from the flow file alone and written beside it under
the same name (docs/schema.md). record and import write them with the flows; reindex is
for recordings written before they existed (schema 1.2 and older), and for derived files
that are missing, damaged or of another flowtape's derived version, which the analyses
name. --force derives them again for every flow file.

Each derived file appears under its name only once complete; readers take a flow file's
derived files only when all are there, so an interrupted reindex leaves nothing wrong
behind, and running it again finishes. Like record, reindex holds DIR while it runs.`,
			strings.Join(schema.DerivedKinds, ", ")),
		Example: `  flowtape reindex incident-42
  flowtape reindex recordings/* --force`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, dir := range args {
				status := newStatusLine(cmd.ErrOrStderr(), "reindexing")
				start := time.Now()
				st, err := tape.Reindex(cmd.Context(), dir, tape.ReindexOptions{Writer: buildinfo.Writer(), Force: force,
					Progress: func(done, total int) {
						status.show(fmt.Sprintf("reindexing %s: %d of %d flow files", dir, done, total), "dir", dir, "done", done, "files", total)
					}})
				status.done()
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "reindexed %s: derived tables of %d flow files (%d flows) written in %s; %d were current\n",
					dir, st.Files, st.Rows, time.Since(start).Round(time.Millisecond), st.Skipped)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "derive the tables again for every flow file, also where they are current")
	return cmd
}
