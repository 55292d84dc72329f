package analyze

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// The analyses read the derived tables a recording holds beside its flows
// (tape/derived.go, docs/schema.md): requests paired with responses,
// connections, traffic counted by minute, pod names. A flow file whose
// derived files are missing, damaged or of another derived version is a
// one-line error naming the file and the command that writes them
// (flowtape reindex), when a view over them is first read: queries of the
// flows alone still work, and no analysis gives a number of fewer files.

// findFiles lists the recordings' files and their derived files. derived
// holds the derived files by kind; derivedErr says why they cannot be
// read, the first missing one.
func findFiles(paths []string) (tape.Files, map[string][]string, error, error) {
	files, err := tape.FindFiles(paths...)
	if err != nil {
		return files, nil, nil, err
	}
	derived := map[string][]string{}
	var missing []string
	for _, kind := range schema.DerivedKinds {
		derived[kind] = files.Derived(kind)
		for _, p := range derived[kind] {
			if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
				missing = append(missing, p)
			}
		}
	}
	for _, p := range files.Flows {
		if _, kind, ok := tape.RecordingDir(p); !ok || kind != schema.KindFlows {
			return files, derived, fmt.Errorf("%s: not in a recording directory (DIR/flows/date=.../hour=.../NAME.parquet), so it has no derived tables: "+
				"analyse the recording directory it comes from", p), nil
		}
	}
	if len(missing) == 0 {
		return files, derived, nil, nil
	}
	// A flow file that cannot be read is the first thing to mend: say
	// that, not that its derived files are missing (reindex would fail on
	// it).
	for _, p := range files.Flows {
		if _, err := tape.Stat(p); err != nil {
			return files, derived, nil, err
		}
	}
	// A recording written before derived tables existed lacks them all.
	dirs := recordingsOf(files.Flows)
	if len(missing) == len(files.Flows)*len(schema.DerivedKinds) {
		return files, derived, fmt.Errorf("%s: no derived tables (requests, connections, traffic, pods: recordings of schema 1.2 and older, and "+
			"imports by such flowtapes, lack them): run flowtape reindex %s (one pass over the flows)",
			strings.Join(dirs, ", "), strings.Join(dirs, " ")), nil
	}
	slices.Sort(missing)
	return files, derived, fmt.Errorf("%s is missing (%d derived files are): run flowtape reindex %s",
		missing[0], len(missing), strings.Join(dirs, " ")), nil
}

// recordingsOf are the recording directories of files, each once.
func recordingsOf(files []string) []string {
	var out []string
	for _, p := range files {
		if d, _, ok := tape.RecordingDir(p); ok && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// checkDerived reads the footers of the derived files of kinds (those not
// read before): each must be of its kind and of this flowtape's derived
// version. The exact path checks every kind before it reads any (no
// analysis gives a number of fewer files); the summary path only what it
// reads (see summary.go). The summary files' footers are kept
// (summaryMeta).
func (e *Engine) checkDerived(ctx context.Context, kinds ...string) error {
	if e.kindErr == nil {
		e.kindErr = map[string]error{}
	}
	var todo, all []string
	for _, kind := range kinds {
		if err, done := e.kindErr[kind]; done {
			if err != nil {
				return err
			}
			continue
		}
		todo = append(todo, kind)
		all = append(all, e.derived[kind]...)
	}
	if len(todo) == 0 {
		return nil
	}
	meta, err := e.footers(ctx, all)
	if err != nil {
		return e.reindexError(err)
	}
	for _, kind := range todo {
		e.kindErr[kind] = e.checkKind(kind, meta)
		if kind == schema.KindSummary {
			e.summaryMeta = map[string]map[string]string{}
			for _, p := range e.derived[kind] {
				e.summaryMeta[p] = meta[p]
			}
		}
	}
	for _, kind := range todo {
		if err := e.kindErr[kind]; err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) checkKind(kind string, meta map[string]map[string]string) error {
	for _, p := range e.derived[kind] {
		m := meta[p]
		if m[schema.MetaKind] != kind {
			return e.reindexError(fmt.Errorf("%s: a file of kind %q in the directory of %s", p, m[schema.MetaKind], kind))
		}
		if err := schema.CheckDerivedVersion(m[schema.MetaDerivedVersion]); err != nil {
			err = fmt.Errorf("%s: %w", p, err)
			if strings.Contains(err.Error(), "newer") {
				return fmt.Errorf("%w: use that flowtape, or run flowtape reindex %s to derive the tables again with this one",
					err, strings.Join(recordingsOf(e.files.Flows), " "))
			}
			return e.reindexError(err)
		}
	}
	return nil
}

// reindexError adds what to run to an error about derived files.
func (e *Engine) reindexError(err error) error {
	return fmt.Errorf("%w: run flowtape reindex %s", err, strings.Join(recordingsOf(e.files.Flows), " "))
}

// derivedView defines derived_KIND over the derived files of a kind. A
// request a recorder received twice is dropped by uuid (recordings of
// several sessions may hold the same flows, see flowsView).
func (e *Engine) derivedView(ctx context.Context, kind string) (string, error) {
	if e.derivedErr != nil {
		return "", e.derivedErr
	}
	check := schema.DerivedKinds
	if e.onSummaries() {
		check = []string{kind}
		if v, ok := e.summaryEmpty(kind); ok {
			return v, nil
		}
		switch kind {
		case schema.KindSummary:
			// its files' footers were read (summarySources)
			return e.summaryFilesView(), nil
		case schema.KindTraffic:
			// from the summaries: no traffic file is read
			v, _ := e.summaryView(kind, "")
			return v, nil
		}
	}
	if err := e.checkDerived(ctx, check...); err != nil {
		return "", err
	}
	multi := tape.Sessions(e.files.Flows) > 1
	switch {
	case kind == schema.KindTraffic && multi && len(e.derived[kind]) > 0:
		// Which session counted the flows: minutes two sessions both
		// counted are read from the flows, each uuid once (ft_traffic_in).
		// (tape.SessionOf: the same sessions tape.Sessions counts)
		sessions := make([]string, len(e.derived[kind]))
		for i, p := range e.derived[kind] {
			sessions[i] = fmt.Sprintf("(%s, %s)", quote(p), quote(tape.SessionOf(p)))
		}
		return fmt.Sprintf(`CREATE OR REPLACE VIEW derived_traffic AS
SELECT t.* EXCLUDE (filename), s.session
FROM read_parquet(%s, hive_partitioning = false, filename = true) t
JOIN (VALUES %s) s(filename, session) ON s.filename = t.filename`, quoteList(e.derived[kind]), strings.Join(sessions, ", ")), nil
	case kind == schema.KindTraffic:
		cols := append(tableColumns(kind), [2]string{"session", "VARCHAR"})
		if len(e.derived[kind]) == 0 {
			return baseView("derived_traffic", cols, nil), nil
		}
		return fmt.Sprintf("CREATE OR REPLACE VIEW derived_traffic AS SELECT *, '' AS session FROM read_parquet(%s, hive_partitioning = false)",
			quoteList(e.derived[kind])), nil
	}
	v := derivedView("derived_"+kind, tableColumns(kind), e.derived[kind])
	switch {
	case kind == schema.KindRequests && multi:
		v += "\nQUALIFY uuid IS NULL OR row_number() OVER (PARTITION BY uuid ORDER BY time) = 1"
	case kind == schema.KindConnections && multi && len(e.derived[kind]) > 0:
		// Two sessions' rows of the same flows are the same rows, kept
		// once; rows of an attempt that two sessions cut otherwise are
		// all kept: the attempt is judged alike (answered, reset, dropped
		// are any of its rows'), but its flows and drop_reasons add up
		// both sessions' (see connections.sql).
		v = strings.Replace(v, "SELECT * FROM", "SELECT DISTINCT * FROM", 1)
	}
	if e.onSummaries() {
		if sv, ok := e.summaryView(kind, v); ok {
			v = sv
		}
	}
	return v, nil
}
