// Command flowtape records Cilium Hubble flows to Parquet and analyzes the
// recordings offline with SQL in embedded DuckDB.
//
// This package only wires cobra commands to the packages that do the work.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// Exit codes, as documented in the README.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError marks errors in how the command was called (exit code 2).
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// FLOWTAPE_CPUPROFILE=FILE profiles a run, for performance work.
	if path := os.Getenv("FLOWTAPE_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	pprof.StopCPUProfile()
	os.Exit(code)
}

// run executes flowtape with args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "flowtape: %v%s%s\n", err, outOfMemoryHint(cmd, err), unreadableHint(err))
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitError
}

// outOfMemoryHint says what to do when DuckDB ran out of memory in a
// command that has --memory-limit; DuckDB's message names neither.
func outOfMemoryHint(cmd *cobra.Command, err error) string {
	if cmd == nil {
		return ""
	}
	f := cmd.Flags().Lookup("memory-limit")
	if f == nil || !strings.Contains(err.Error(), "Out of Memory Error") || cmd.Name() == "replay" {
		return ""
	}
	if f.Changed {
		return fmt.Sprintf(": give DuckDB more than --memory-limit %s, or a --temp-dir with room to spill to", f.Value)
	}
	return ": DuckDB took up to 80% of this machine's memory (--memory-limit): free memory, or give a --temp-dir with room to spill to"
}

// unreadableHint says what to do about a flow file Parquet cannot read:
// a live file's piece torn by a crash is mended by recover (the
// write-ahead log holds its rows); a file cut short otherwise (a copy
// that did not finish, a full disk) or damaged, by nothing flowtape runs.
// (Of a derived file the analyses read, their message says what to run:
// flowtape reindex.)
func unreadableHint(err error) string {
	var ue *tape.UnreadableError
	if errors.As(err, &ue) {
		return flowFileAdvice(ue.Path)
	}
	// DuckDB names a flow file whose page it could not read (one that
	// does not decompress) so, and no more (of a derived file, analyze
	// says to run reindex); files of different columns in one read_parquet
	// it names so too, which no copy mends
	if m := duckdbUnreadable.FindStringSubmatch(err.Error()); m != nil && !strings.HasPrefix(m[2], "schema mismatch") {
		return flowFileAdvice(m[1])
	}
	return ""
}

// duckdbUnreadable is how DuckDB's errors name a file it could not read,
// and why (a path may hold a quote: the name ends at the quote before ": ").
var duckdbUnreadable = regexp.MustCompile(`Failed to read file "(.+?)": (.*)`)

// flowFileAdvice is what to do about flow file p that cannot be read (""
// where p is not a recording's flow file).
func flowFileAdvice(p string) string {
	dir, kind, ok := tape.RecordingDir(p)
	if f, err := os.Open(p); err == nil {
		f.Close()
	} else {
		// gone (a live file's piece its file replaced, retention) or
		// not ours to read: the error says which
		return ""
	}
	switch {
	case !ok || kind != schema.KindFlows:
		return ""
	case tape.IsPiece(p):
		return ": a piece of a live file, torn when its recorder stopped: run flowtape recover " + dir
	}
	return ": copy it again from where it came, or move it out of the recording to read the rest (without its flows)"
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	var debug bool
	root := &cobra.Command{
		Use:   "flowtape",
		Short: "Record Cilium Hubble flows to Parquet and analyze them offline",
		Long: `flowtape records Cilium Hubble flow streams to Parquet files during incidents and
analyzes the recordings offline with SQL in embedded DuckDB: service statistics,
dependency graphs, drops, DNS failures, timelines, and postmortem reports.` + buildNote,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().BoolVarP(&debug, "debug", "D", false, "log debug messages")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(commands()...)
	return root
}

// logLevel is the level the --debug flag chose.
func logLevel(cmd *cobra.Command) slog.Level {
	if d, err := cmd.Flags().GetBool("debug"); err == nil && d {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// usageArgs makes an argument count error a usage error (exit code 2).
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
