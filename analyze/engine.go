// Package analyze opens flowtape recordings in embedded DuckDB and runs the
// built-in analyses, which are SQL files embedded in the binary.
package analyze

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // registers the "duckdb" database/sql driver

	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// SQL holds the views and analyses, for users to read and reuse
// (flowtape query --views shows the views; the README links the files).
//
//go:embed sql
var SQL embed.FS

// Options tune the engine.
type Options struct {
	// MemoryLimit is DuckDB's memory_limit (e.g. "2GB"); beyond it,
	// operators spill to TempDir instead of failing. Empty: DuckDB's
	// default (80% of RAM).
	MemoryLimit string
	// TempDir is where DuckDB spills (default: a new directory under the
	// system's temporary directory, removed on Close; DuckDB's own default
	// would be .tmp in the working directory).
	TempDir string
}

// filesManifests are the manifests of the recordings files come from:
// those of the directories given, and of those a glob or a file given
// alone is in, but not of a copy whose files were all left out (see
// tape.Files.Copies).
func filesManifests(f tape.Files) []*tape.Manifest {
	return manifestsOf(recordingsOf(slices.Concat(f.Flows, f.Events)))
}

// manifestsOf reads the manifests of the recording directories among
// paths (others have none: files, an import elsewhere). Two that name a
// session alike are of one recording, a copy of it taken at some time
// (its files are read once, see tape.Files.Copies): the one that counts
// more losses is kept, the newer (losses only grow), so that what a
// recording lost is never counted twice.
func manifestsOf(paths []string) []*tape.Manifest {
	var ms []*tape.Manifest
	for _, p := range paths {
		m, err := tape.ReadManifest(p)
		if err != nil {
			continue
		}
		i := slices.IndexFunc(ms, func(o *tape.Manifest) bool { return sharesSession(o, m) })
		switch {
		case i < 0:
			ms = append(ms, m)
		case lossCount(m) > lossCount(ms[i]):
			ms[i] = m
		}
	}
	return ms
}

// sharesSession reports whether manifests a and b name a session alike.
func sharesSession(a, b *tape.Manifest) bool {
	for _, s := range a.Sessions {
		if slices.ContainsFunc(b.Sessions, func(t tape.Session) bool { return t.RecordingID != "" && t.RecordingID == s.RecordingID }) {
			return true
		}
	}
	return false
}

// lossCount is the flows a manifest says were lost (expired, dropped).
func lossCount(m *tape.Manifest) int64 {
	var n int64
	for _, e := range []*tape.Expired{m.Expired, m.Dropped} {
		if e != nil {
			n += e.Flows
		}
	}
	return n
}

// filteredCapture reports whether a session of the recordings (their
// manifests) was recorded with filters (record's hubble observe filters):
// then the recording may hold one direction of a connection and not the
// other, even on a node whose other replies it holds, and connections
// judge an unanswered SYN by the replies of its own client and server
// only (see the connections view).
func filteredCapture(ms []*tape.Manifest) bool {
	for _, m := range ms {
		for _, s := range m.Sessions {
			if s.Filters.Raw != "" {
				return true
			}
		}
	}
	return false
}

// manifestLosses sums, over the recordings' manifests, what retention
// removed (expired) and what a full spool dropped before it reached the
// bucket (dropped), which coverage shows.
func manifestLosses(ms []*tape.Manifest) (expired, dropped tape.Expired) {
	add := func(dst *tape.Expired, src *tape.Expired) {
		if src == nil {
			return
		}
		dst.Flows += src.Flows
		if t := src.FirstFlow; t != nil && (dst.FirstFlow == nil || t.Before(*dst.FirstFlow)) {
			dst.FirstFlow = t
		}
		if t := src.LastFlow; t != nil && (dst.LastFlow == nil || t.After(*dst.LastFlow)) {
			dst.LastFlow = t
		}
	}
	for _, m := range ms {
		add(&expired, m.Expired)
		add(&dropped, m.Dropped)
	}
	return expired, dropped
}

// Engine is an in-memory DuckDB database with views over recordings.
type Engine struct {
	db    *sql.DB
	paths []string // as given, for messages
	files tape.Files
	// derived are the derived files of the flow files, by kind (see
	// tape/derived.go); derivedErr says why they cannot be read (missing,
	// damaged, of another version), which the views over them say.
	derived    map[string][]string
	derivedErr error
	// versions are the flow files' schema versions, read when a view
	// first needs the flow files.
	versions map[string]string
	// filtered: a session of a recording was recorded with filters (see
	// filteredCapture).
	filtered bool
	// mans are the manifests of the recordings (filesManifests).
	mans  []*tape.Manifest
	spill string // default spill directory, removed on Close
	// materialized: the shared views are temporary tables (Materialize).
	materialized bool

	// The setup (setup.go): every step, the step that provides each
	// object, and which steps ran.
	all           []setupStep
	provider      map[string]int
	done, running []bool
	// summaryFor: the analysis the derived views are the summary path's
	// for (summary.go), decided before any is set up; "" on the exact
	// path.
	summaryFor string
	// kindErr: the derived kinds whose footers were checked, and what was
	// wrong (checkDerived); summaryMeta: the summary files' footers
	kindErr     map[string]error
	summaryMeta map[string]map[string]string
	// summarySrc: the files the summary path reads (rollup.go), the first
	// rollups of them rollups
	summarySrc []string
	rollups    int
	rolledUp   []string // the summary files the rollups used hold
	// summaryEdges: of them, those whose minute rows the window reads
	summaryEdges []string
	// summaryHours: the hours the window covers whole (coveredHours)
	summaryHours [2]time.Time
	// PathNote says which path the last analysis took, when that is worth
	// a line on stderr (the summary path).
	PathNote string
	// trafficInFile is the variant of ft_traffic_in defined now.
	trafficInFile string
	// singleConnections: ft_connections is connections_single.sql's
	// (connections.go); viewConnections: never (for the test that
	// compares the two).
	singleConnections, viewConnections bool
}

// Open finds the recordings' files, checks their derived files and sets
// up the engine; the views are defined when a query first reads them.
func Open(ctx context.Context, paths []string, o Options) (*Engine, error) {
	files, derived, derivedErr, err := findFiles(paths)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	// One connection: settings and views belong to it.
	db.SetMaxOpenConns(1)
	mans := filesManifests(files)
	e := &Engine{db: db, paths: paths, files: files, derived: derived, derivedErr: derivedErr, mans: mans, filtered: filteredCapture(mans)}
	e.all = e.steps()
	e.provider = map[string]int{}
	for i, s := range e.all {
		for _, name := range s.provides {
			e.provider[name] = i
		}
	}
	e.done, e.running = make([]bool, len(e.all)), make([]bool, len(e.all))
	if err := e.setup(ctx, o); err != nil {
		db.Close()
		return nil, err
	}
	return e, nil
}

// Close releases the database and the spill directory it made.
func (e *Engine) Close() error {
	err := e.db.Close()
	if e.spill != "" {
		os.RemoveAll(e.spill)
	}
	return err
}

// Files are the recording files the views read.
func (e *Engine) Files() tape.Files { return e.files }

func (e *Engine) setup(ctx context.Context, o Options) error {
	var stmts []string
	if o.MemoryLimit != "" {
		stmts = append(stmts, fmt.Sprintf("SET memory_limit = %s", quote(o.MemoryLimit)))
	}
	if o.TempDir == "" {
		// DuckDB creates it when it first spills.
		e.spill = filepath.Join(os.TempDir(), fmt.Sprintf("flowtape-spill-%d-%p", os.Getpid(), e))
		o.TempDir = e.spill
	}
	stmts = append(stmts, fmt.Sprintf("SET temp_directory = %s", quote(o.TempDir)))
	for _, s := range stmts {
		if _, err := e.db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("set up: %w", firstLine(err))
		}
	}
	for i := range eager {
		s := e.all[i]
		q, err := s.sql(ctx)
		if err == nil {
			err = e.exec(ctx, s, q)
		}
		if err != nil {
			return err
		}
		e.done[i] = true
	}
	return nil
}

func fileExists(name string) bool {
	_, err := fs.Stat(SQL, name)
	return err == nil
}

// baseView reads files; with none, an empty relation of the given columns
// (name and SQL type), so that every query works on any recording. Files
// of different schema versions may hold different columns: they are
// read by name.
func baseView(name string, cols [][2]string, files []string) string {
	return fileView(name, cols, files, true)
}

// derivedView is baseView for derived files, which all have one schema:
// the engine takes only those of this flowtape's derived version (see
// checkKind). DuckDB then binds the view from one file's schema, not
// every file's, and it binds the view again for each macro created over
// it (DuckDB binds table macros when they are created) and each query:
// services over 1M flows in one file set up about 40 ms faster.
func derivedView(name string, cols [][2]string, files []string) string {
	return fileView(name, cols, files, false)
}

func fileView(name string, cols [][2]string, files []string, byName bool) string {
	if len(files) == 0 {
		nulls := make([]string, len(cols))
		for i, c := range cols {
			nulls[i] = fmt.Sprintf("CAST(NULL AS %s) AS %s", c[1], quoteIdent(c[0]))
		}
		return fmt.Sprintf("CREATE OR REPLACE VIEW %s AS SELECT %s WHERE false", name, strings.Join(nulls, ", "))
	}
	return fmt.Sprintf("CREATE OR REPLACE VIEW %s AS SELECT * FROM read_parquet(%s, union_by_name = %t, hive_partitioning = false)", name, quoteList(files), byName)
}

// tableColumns are the columns of a row kind of the recording format.
func tableColumns(kind string) [][2]string {
	var cols [][2]string
	for _, c := range schema.Reference() {
		if c.Table == kind {
			cols = append(cols, [2]string{c.Name, c.Type})
		}
	}
	return cols
}

func eventColumns() [][2]string { return tableColumns(schema.KindEvents) }

func quoteList(files []string) string {
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = quote(f)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// addedColumns are the derived columns each minor version added, with the
// SQL that computes them for files written before: macros of macros.sql
// that read the declarations of package schema (as variables), and so
// compute what package schema computes in Go.
var addedColumns = []struct {
	minor int
	exprs []string
}{
	{1, []string{
		requestIDExpr,
		"ft_l7_protocol(http_code, http_protocol, http_method, http_url, http_headers, dns_rcode, l7_latency_ns, extra) AS l7_protocol",
	}},
	{2, []string{
		"ft_name(source_workload, source_app, source_pod_name, source_identity, source_names, ip_source) AS source_endpoint",
		"ft_name(destination_workload, destination_app, destination_pod_name, destination_identity, destination_names, ip_destination) AS destination_endpoint",
	}},
}

// viewColumns are the columns of schema.ViewColumns that flow files stop
// storing after minor version storedUntil, with the SQL that computes them
// (the same macros as addedColumns').
var viewColumns = []struct {
	storedUntil int
	exprs       []string
}{
	{schema.RequestIDStoredUntil, []string{requestIDExpr}},
}

const requestIDExpr = "ft_request_id(http_headers) AS http_request_id"

// computedColumns are the SQL expressions of the columns that flow files of
// a minor version lack: those added after it, and those no longer stored.
func computedColumns(minor int) []string {
	var exprs []string
	for _, a := range addedColumns {
		if a.minor > minor {
			exprs = append(exprs, a.exprs...)
		}
	}
	for _, v := range viewColumns {
		if minor > v.storedUntil {
			exprs = append(exprs, v.exprs...)
		}
	}
	return exprs
}

// fileMinor is the minor schema version of a file: this flowtape's where
// its metadata gives none it can read.
func fileMinor(version string) int {
	if _, m, ok := strings.Cut(version, "."); ok {
		if v, err := strconv.Atoi(m); err == nil {
			return min(v, schema.MinorVersion)
		}
	}
	return schema.MinorVersion
}

// flowsAllView reads the flow files, each group of files that lacks the same
// columns (files of an older minor version, and those past the minor
// versions that stored a column of schema.ViewColumns) with those columns
// computed. DuckDB computes an expression only where a query reads its
// column.
func flowsAllView(files []string, versions map[string]string) string {
	if len(files) == 0 {
		return baseView("flows_all", tableColumns(schema.KindFlows), files)
	}
	bySel := map[string][]string{}
	for _, f := range files {
		sel := strings.Join(append([]string{"*"}, computedColumns(fileMinor(versions[f]))...), ",\n    ")
		bySel[sel] = append(bySel[sel], f)
	}
	var parts []string
	for _, sel := range slices.Sorted(maps.Keys(bySel)) {
		parts = append(parts, fmt.Sprintf("SELECT %s FROM read_parquet(%s, union_by_name = true, hive_partitioning = false)", sel, quoteList(bySel[sel])))
	}
	return "CREATE OR REPLACE VIEW flows_all AS " + strings.Join(parts, "\nUNION ALL BY NAME ")
}

// flowsView is flows_all with each uuid once. A recorder drops the flows
// a resumed stream sends twice, so one recording session never repeats a
// uuid; files of several sessions (overlapping imports, recordings of the
// same cluster) may, and only then is the costly dedupe done.
func flowsView(files []string) string {
	if tape.Sessions(files) <= 1 {
		return "CREATE OR REPLACE VIEW flows AS SELECT * FROM flows_all"
	}
	return `CREATE OR REPLACE VIEW flows AS SELECT * FROM flows_all
QUALIFY uuid IS NULL OR row_number() OVER (PARTITION BY uuid ORDER BY time) = 1`
}

func quote(s string) string      { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// firstLine keeps the first line of a DuckDB error: the rest is a caret
// diagram or a stack that does not help at 3 a.m.
func firstLine(err error) error {
	s := strings.TrimSpace(err.Error())
	if i := strings.IndexByte(s, '\n'); i > 0 {
		s = s[:i]
	}
	return fmt.Errorf("%s", s)
}

// DuckDBVersion is the version of the embedded DuckDB library.
func DuckDBVersion(ctx context.Context) (string, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return "", fmt.Errorf("open duckdb: %w", err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRowContext(ctx, "SELECT version()").Scan(&v); err != nil {
		return "", fmt.Errorf("duckdb version: %w", err)
	}
	return v, nil
}
