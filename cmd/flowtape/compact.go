//go:build !recorder

package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/buildinfo"
	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/tape"
)

func newCompactCmd() *cobra.Command {
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "compact DIR",
		Short: "Merge the small files of a recording into one file per session and hour",
		Long: fmt.Sprintf(`Merge, in every hour partition of the recording in DIR, the files each session
(recorder run, import) wrote into one file, in time order: short rotations,
restarts and many imports leave many small files, which read slowly. No row
changes; files of different sessions stay apart.

Then each day that is over gets its summaries rolled up into one file
(rollup/date=D/summary.parquet, all sessions' and nodes'): analyses over long
windows read it instead of a file per session and hour (thousands a day for
per-node recorders). A day whose files changed since is rolled up again.

Readers never count a flow twice or not at all: they switch from the old files
to the new one at once. A reader that listed the old files just before may still
be reading them: --grace keeps them that long (removed by the next compact after
that, or by a record or recover in DIR after %s); with --grace 0 they go
at once, and such a reader fails and must run again. A session whose last
compaction still keeps its old files waits for them. Like record, compact holds
DIR while it runs.`, defaults.LiveGrace),
		Example: `  flowtape compact incident-42
  # while analyses are reading it
  flowtape compact incident-42 --grace 2m`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if grace < 0 {
				return usagef("invalid --grace %s: must not be negative", grace)
			}
			st, err := tape.Compact(cmd.Context(), args[0], tape.CompactOptions{Writer: buildinfo.Writer(), Grace: grace})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "compacted %d files into %d (%d rows) in %d partitions of %s; %d replaced files removed, %d kept for --grace %s",
				st.Files, st.Written, st.Rows, st.Partitions, args[0], st.Removed, st.Kept, grace)
			if st.Waiting > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "; %d files wait for their session's kept files to go", st.Waiting)
			}
			fmt.Fprintln(cmd.OutOrStdout())
			ru, err := analyze.Rollup(cmd.Context(), args[0], time.Now())
			if err != nil {
				return err
			}
			if ru.Written > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "rolled up the summaries of %d days (%d files) of %s\n", ru.Written, ru.Files, args[0])
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&grace, "grace", 0, "keep the replaced files this long for readers that are reading them")
	return cmd
}
