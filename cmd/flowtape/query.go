//go:build !recorder

package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/printer"
)

func newQueryCmd() *cobra.Command {
	var (
		format     string
		views      bool
		printSetup bool
		eng        engineFlags
		ch         clickhouseFlags
		cache      cacheFlags
	)
	cmd := &cobra.Command{
		Use:   `query DIR... "SQL" | query DIR... --views | query DIR... --print-setup`,
		Short: "Run SQL over recordings in embedded DuckDB",
		Long: `Run any SQL over recordings (directories, globs or Parquet files) in embedded
DuckDB. The recordings are views:

  flows     one row per flow (each uuid once), the columns of docs/schema.md
  events    lost events and node status changes
  requests  one row per HTTP/gRPC request and reporting proxy, client ->
            server, with status, latency_ns, error and no_response (a
            request both proxies saw has two rows)
  requests_counted
            requests, each once (the server proxy's row, else the client's):
            what the analyses count
  connections
            one row per TCP connection attempt: answered, reset, dropped
  dns       one row per DNS answer, client -> server, with rcode_name
  drops     one row per dropped packet, with reason and denying policies
  edges     every flow in its connection's direction (replies swapped back)

--views lists their columns; their SQL is in analyze/sql/ (and flowtape query
--views --format json). DuckDB's own functions and read_parquet work as usual.

With --engine chdb or clickhouse, the SQL is ClickHouse's, over the same views
(analyze/sql/clickhouse/views; docs/engines.md).

--print-setup prints the SQL that defines the views over the given files
(flowtape's defaults as variables, the macros, the views), to run in the
duckdb CLI: the analyses' SQL (flowtape analyze NAME --sql) then runs there as
it is, with its parameters set as variables (SET VARIABLE level = 'service').`,
		Example: `  flowtape query incident-42 --views
  flowtape query incident-42 "SELECT verdict, count(*) FROM flows GROUP BY ALL ORDER BY 2 DESC"
  flowtape query incident-42 "SELECT server, count(*) FILTER (error) AS errors FROM requests_counted GROUP BY ALL" --format markdown
  flowtape query 'recordings/*' "SELECT reason, count(*) FROM drops GROUP BY ALL" --format csv
  flowtape query incident-42 --print-setup > setup.sql && duckdb -init setup.sql
  flowtape query incident-42 "SELECT server, countIf(error) AS errors FROM requests_counted GROUP BY ALL" --engine chdb`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := printer.CheckFormat(format); err != nil {
				return usageError{err}
			}
			paths, q := args, ""
			if views && printSetup {
				return usagef("give --views or --print-setup, not both")
			}
			if !views && !printSetup {
				if len(args) < 2 {
					return usagef(`give the recordings and then the SQL, e.g. flowtape query DIR "SELECT count(*) FROM flows" (or --views)`)
				}
				paths, q = args[:len(args)-1], args[len(args)-1]
			}
			onCH, err := ch.clickhouse()
			if err != nil {
				return err
			}
			if onCH {
				if printSetup {
					return usagef("--print-setup is DuckDB's: ClickHouse's views are in analyze/sql/clickhouse/views, "+
						"and flowtape analyze NAME DIR --engine %s --sql prints a whole query", ch.engine)
				}
				e, err := analyze.OpenClickHouse(cmd.Context(), paths, time.Time{}, time.Time{}, ch.options())
				if err != nil {
					return err
				}
				defer e.Close()
				if views {
					return printViews(cmd, e, format)
				}
				t, err := e.Query(cmd.Context(), q)
				if err != nil {
					return err
				}
				return printer.Print(cmd.OutOrStdout(), format, t)
			}
			e, closeEngine, err := openDuckDB(cmd, paths, time.Time{}, time.Time{}, eng, cache)
			if err != nil {
				return err
			}
			defer closeEngine()
			if views {
				return printViews(cmd, e, format)
			}
			if printSetup {
				setup, err := e.SetupSQL(cmd.Context())
				if err != nil {
					return err
				}
				_, err = fmt.Fprint(cmd.OutOrStdout(), setup)
				return err
			}
			t, err := e.Query(cmd.Context(), q)
			if err != nil {
				return err
			}
			return printer.Print(cmd.OutOrStdout(), format, t)
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: "+strings.Join(printer.Formats, ", "))
	cmd.Flags().BoolVar(&views, "views", false, "list the views and their columns")
	cache.add(cmd.Flags())
	cmd.Flags().BoolVar(&printSetup, "print-setup", false, "print the SQL that sets up the views over the recordings, for the duckdb CLI")
	eng.add(cmd)
	ch.add(cmd)
	return cmd
}

// printViews lists the views of either engine and their columns.
func printViews(cmd *cobra.Command, e interface {
	Views(context.Context) ([]analyze.View, error)
}, format string) error {
	vs, err := e.Views(cmd.Context())
	if err != nil {
		return err
	}
	t := printer.Table{Columns: []string{"view", "column", "type"}}
	for _, v := range vs {
		for _, c := range v.Columns {
			t.Rows = append(t.Rows, []any{v.Name, c.Name, c.Type})
		}
	}
	if format == "table" {
		for _, v := range vs {
			fmt.Fprintf(cmd.OutOrStdout(), "%s:", v.Name)
			for i, c := range v.Columns {
				sep := ","
				if i == 0 {
					sep = ""
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s", sep, c.Name, c.Type)
			}
			fmt.Fprintln(cmd.OutOrStdout())
		}
		return nil
	}
	return printer.Print(cmd.OutOrStdout(), format, t)
}
