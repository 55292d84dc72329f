package analyze

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// The views are set up on demand: a query or analysis gets the views,
// macros and files it reads, and no others. Reading the footers of the
// flow files alone takes longer than a whole analysis of the derived
// tables (the 11 files of 10 million flows hold 600 row groups of 95
// columns), so an analysis that reads only derived tables never opens a
// flow file.

// setupStep is a statement (or embedded file of statements) of the setup,
// which defines the objects (views and table macros) named in provides.
// sql builds its text when the step runs: the flow views need the files'
// versions, read then.
type setupStep struct {
	title, file string
	provides    []string
	sql         func(context.Context) (string, error)
}

// objectRefs find the relations a text reads: names after FROM, JOIN,
// DESCRIBE, SUMMARIZE, SHOW and TABLE (main.x and temp.x too: x), names
// passed to a macro (a relation, by name) or to getvariable (a variable a
// step sets) as its first argument, and the macros a text calls
// (ft_...(). Several patterns, as one match may not hold another (FROM
// ft_in_window('requests_counted', ...)).
var objectRefs = []*regexp.Regexp{
	regexp.MustCompile(`(?i)\b(?:from|join|describe|summarize|show|table)\s+(?:(?:main|temp)\.)?([a-z_][a-z0-9_]*)`),
	regexp.MustCompile(`(?i)\b(?:ft_[a-z0-9_]+|query_table|getvariable)\(\s*'([a-z_][a-z0-9_]*)'`),
	regexp.MustCompile(`(?i)\b(ft_[a-z0-9_]+)\s*\(`),
}

// cteName finds the common table expressions a text defines (WITH x AS
// (, or , x AS NOT MATERIALIZED (): a name they shadow is no view read.
var cteName = regexp.MustCompile(`(?i)(?:\bwith|,)\s+([a-z_][a-z0-9_]*)\s+as\s+(?:not\s+)?(?:materialized\s+)?\(`)

// sqlComment strips comments, so that a view named in a comment is not
// set up.
var sqlComment = regexp.MustCompile(`--[^\n]*`)

// creates finds the views and macros a text creates; createsView, the
// view a statement creates.
var (
	creates     = regexp.MustCompile(`(?i)\bcreate\s+or\s+replace\s+(?:view|macro)\s+([a-z_][a-z0-9_]*)`)
	createsView = regexp.MustCompile(`(?i)^\s*create\s+or\s+replace\s+view\s+([a-z_][a-z0-9_]*)`)
)

// createdBy lists the views and macros a text creates.
func createdBy(text string) []string {
	var out []string
	for _, m := range creates.FindAllStringSubmatch(sqlComment.ReplaceAllString(text, ""), -1) {
		out = append(out, strings.ToLower(m[1]))
	}
	return out
}

// splitStatements splits a SQL text at the semicolons that end its
// statements (not those in strings, quoted names, -- and /* */ comments),
// each statement with the comment lines before it. (flowtape's SQL has
// no dollar-quoted strings.)
func splitStatements(text string) []string {
	var out []string
	start := 0
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '\'' || c == '"':
			if j := strings.IndexByte(text[i+1:], c); j >= 0 {
				i += j + 1
			} else {
				i = len(text)
			}
		case c == '/' && strings.HasPrefix(text[i:], "/*"):
			if j := strings.Index(text[i:], "*/"); j >= 0 {
				i += j + 1
			} else {
				i = len(text)
			}
		case c == '-' && strings.HasPrefix(text[i:], "--"):
			if j := strings.IndexByte(text[i:], '\n'); j >= 0 {
				i += j
			} else {
				i = len(text)
			}
		case c == ';':
			out = append(out, strings.TrimSpace(text[start:i+1]))
			start = i + 1
		}
	}
	if rest := strings.TrimSpace(text[start:]); rest != "" && strings.TrimSpace(sqlComment.ReplaceAllString(rest, "")) != "" {
		out = append(out, rest)
	}
	return out
}

// refs lists the objects of the setup that q reads.
func (e *Engine) refs(q string) []string {
	q = sqlComment.ReplaceAllString(q, "")
	var ctes []string
	for _, m := range cteName.FindAllStringSubmatch(q, -1) {
		ctes = append(ctes, strings.ToLower(m[1]))
	}
	var out []string
	for _, re := range objectRefs {
		for _, m := range re.FindAllStringSubmatch(q, -1) {
			name := strings.ToLower(m[1])
			if _, ok := e.provider[name]; ok && !slices.Contains(out, name) && !slices.Contains(ctes, name) {
				out = append(out, name)
			}
		}
	}
	return out
}

// steps are every step of the setup, in an order that runs: a view is
// bound when it is created, so what it reads must exist already.
func (e *Engine) steps() []setupStep {
	// A file of macros and views is a step per macro and per view, the
	// macros first, as the views read them: a query gets the macros and
	// views it reads (refs: the names it calls, selects from or passes
	// to a macro), and those they read, not every one. Each statement
	// costs DuckDB its parse, bind and commit: creating the 41 macros of
	// macros.sql took 17 ms of services' 330 over 1M flows, of which
	// services calls 17. DuckDB binds a view when it is created, which
	// for the views over the macros (connections AS FROM
	// ft_connections(NULL)) plans the whole macro, while the analyses
	// call the macros: services over 1M flows set up requests,
	// requests_counted and connections in 60 ms with their views, 46 ms
	// without (5 ms since ft_bound_at_call, which the views would not
	// get). Creating a macro binds none of the views it reads
	// (ft_bound_at_call in macros.sql).
	statements := func(name string) []setupStep {
		b, _ := SQL.ReadFile(name)
		var macros, views []setupStep
		// (every statement of these files creates one view or macro:
		// TestSplitStatements)
		for _, stmt := range splitStatements(string(b)) {
			made := createdBy(stmt)
			step := setupStep{file: name, provides: made,
				sql: func(context.Context) (string, error) { return stmt, nil }}
			if createsView.MatchString(sqlComment.ReplaceAllString(stmt, "")) {
				step.title = "analyze/" + name + ": view " + strings.Join(made, ", ")
				views = append(views, step)
				continue
			}
			step.title = "analyze/" + name + ": macro " + strings.Join(made, ", ")
			macros = append(macros, step)
		}
		return append(macros, views...)
	}
	constant := func(title, sql string, provides ...string) setupStep {
		return setupStep{title: title, provides: provides, sql: func(context.Context) (string, error) { return sql, nil }}
	}
	steps := []setupStep{
		// Every view reads the footers again when it is created and when
		// a query binds it: cached, opening 10 million flows takes a
		// fraction of a second instead of seconds.
		constant("settings", "SET parquet_metadata_cache = true"+profileSQL()),
		constant("defaults and facts of the recording format, from flowtape's Go code (internal/defaults, schema)", variablesSQL()),
		constant("facts of these recordings: recorded with filters (their manifests)", fmt.Sprintf("SET VARIABLE ft_filtered_capture = %t", e.filtered)),
		constant("facts of these recordings: flows retention removed, and the newest of them; flows a full spool dropped, and when (their manifests)", lossesSQL(e.mans)),
	}
	steps = append(steps, statements("sql/macros.sql")...)
	steps = append(steps, []setupStep{
		{title: "flows_all: the flow files", provides: []string{"flows_all"}, sql: e.flowsAllSQL},
		constant("flows: flows_all, each uuid once", flowsView(e.files.Flows), "flows"),
		constant("events: the event files", baseView("events", eventColumns(), e.files.Events), "events"),
	}...)
	for _, kind := range schema.DerivedKinds {
		steps = append(steps, setupStep{title: "derived_" + kind + ": the derived " + kind + " files", provides: []string{"derived_" + kind},
			sql: func(ctx context.Context) (string, error) { return e.derivedView(ctx, kind) }})
	}
	// The whole recording's traffic rows: what an analysis learns from
	// outside its window (the recording's end, the replies that judge
	// connections, the services workloads serve). The summary path's
	// derived_traffic holds the window's rows only (see summaryView).
	steps = append(steps, setupStep{title: "derived_traffic_all: the whole recording's traffic rows", provides: []string{"derived_traffic_all"},
		sql: func(context.Context) (string, error) {
			if e.onSummaries() {
				return e.summaryTrafficAll(), nil
			}
			return "CREATE OR REPLACE VIEW derived_traffic_all AS FROM derived_traffic", nil
		}})
	// Whether two recording sessions counted flows of the same node and
	// minute (see ft_traffic_in); false, planned away, for one session.
	overlap := "SET VARIABLE ft_sessions_overlap = false"
	if tape.Sessions(e.files.Flows) > 1 {
		overlap = `SET VARIABLE ft_sessions_overlap = (SELECT count(*) > 0 FROM
    (SELECT bucket FROM derived_traffic GROUP BY bucket, node_name HAVING count(DISTINCT session) > 1))`
	}
	steps = append(steps, constant("ft_sessions_overlap: whether recording sessions counted the same minutes", overlap, "ft_sessions_overlap"))
	for _, v := range ViewNames {
		if f := "sql/views/" + v + ".sql"; fileExists(f) {
			steps = append(steps, statements(f)...)
		}
		if v == "pod_renames" {
			// What the views' joins with pod_renames are planned by; and
			// pod_renames itself as a temporary table, which the names
			// find before the view: a query binds each use of the view
			// (reading derived_pods, grouping), and services joins it
			// with its rows a dozen times, planned away or not: DuckDB's
			// binding of services over 1M flows took 59 ms against 71
			// (medians of 5 runs).
			steps = append(steps, constant("ft_pods_renamed: whether a pod is renamed, and the renamed pods as a table",
				"CREATE OR REPLACE TEMP TABLE pod_renames AS FROM main.pod_renames;\n"+
					"SET VARIABLE ft_pods_renamed = (SELECT count(*) > 0 FROM temp.pod_renames)", "ft_pods_renamed"))
		}
	}
	// ft_connections over rows that are each an attempt of their own
	// (connections.go): the variant instead of the view's macro.
	for i, s := range steps {
		if slices.Equal(s.provides, []string{"ft_connections"}) {
			general := s.sql
			steps[i].sql = func(ctx context.Context) (string, error) {
				single, err := e.singleAttempts(ctx)
				if err != nil {
					return "", err
				}
				if !single {
					return general(ctx)
				}
				b, err := SQL.ReadFile(connectionsSingle)
				if err != nil {
					return "", err
				}
				e.singleConnections = true
				slog.Debug("set up", "step", "ft_connections: every row of derived_connections an attempt of its own ("+connectionsSingle+")")
				return string(b), nil
			}
		}
	}
	for _, f := range []string{"sql/window.sql", "sql/slo.sql", "sql/summary/rows.sql", "sql/summary/views.sql"} {
		steps = append(steps, statements(f)...)
	}
	// The variant of ft_traffic_in that is right whatever the window; an
	// analysis gets the faster one where it is right too (trafficIn).
	steps = append(steps, fileStep(trafficInCut))
	return steps
}

// profileSQL turns DuckDB's profiler on where FLOWTAPE_DUCKDB_PROFILE=FILE
// asks: it writes the profile of each statement (its operators' timings,
// as JSON) over the one before, so FILE holds the last one's, the
// analysis's query; for performance work (-D gives the set-up's steps and
// the query's time).
func profileSQL() string {
	f := os.Getenv("FLOWTAPE_DUCKDB_PROFILE")
	if f == "" {
		return ""
	}
	return "; PRAGMA enable_profiling = 'json'; PRAGMA profiling_output = " + quote(f)
}

// getBool reads a boolean DuckDB variable; false when unset.
func getBool(ctx context.Context, db *sql.DB, name string) bool {
	var v sql.NullBool
	_ = db.QueryRowContext(ctx, "SELECT getvariable("+quote(name)+")::BOOLEAN").Scan(&v)
	return v.Valid && v.Bool
}

const (
	trafficInWhole = "sql/traffic_in.sql"
	trafficInCut   = "sql/traffic_in_cut.sql"
)

// eager are the steps every connection gets at once: settings and
// variables, which read no file.
const eager = 4

// ensure runs the steps that define names, and the steps those read,
// once.
func (e *Engine) ensure(ctx context.Context, names ...string) error {
	for _, name := range names {
		i, ok := e.provider[name]
		if !ok || e.done[i] {
			continue
		}
		if e.running[i] {
			return fmt.Errorf("set up: %s reads itself", name)
		}
		e.running[i] = true
		s := e.all[i]
		q, err := s.sql(ctx)
		if err == nil {
			err = e.ensure(ctx, e.reads(s, q)...)
		}
		if err == nil {
			err = e.exec(ctx, s, q)
		}
		e.running[i] = false
		if err != nil {
			return err
		}
		e.done[i] = true
	}
	return nil
}

// fileStep is the step that runs an SQL file whole: it provides the views
// and macros the file creates.
func fileStep(name string) setupStep {
	b, err := SQL.ReadFile(name)
	return setupStep{title: "analyze/" + name, file: name, provides: createdBy(string(b)),
		sql: func(context.Context) (string, error) { return string(b), err }}
}

// reads are the objects of the setup that step s's text q reads, but for
// those it makes itself.
func (e *Engine) reads(s setupStep, q string) []string {
	return slices.DeleteFunc(e.refs(q), func(r string) bool { return slices.Contains(s.provides, r) })
}

func (e *Engine) exec(ctx context.Context, s setupStep, q string) error {
	start := time.Now()
	defer func() { slog.Debug("set up", "step", s.title, "took", time.Since(start)) }()
	if _, err := e.db.ExecContext(ctx, q); err != nil {
		if s.file != "" {
			return fmt.Errorf("%s: %w", s.file, firstLine(err))
		}
		return fmt.Errorf("set up %s: %w", s.provides, firstLine(err))
	}
	return nil
}

// trafficIn defines ft_traffic_in for an analysis with the window of p:
// without reading flow files when the window cuts no minute of traffic
// (no --since or --until, or ones between minutes with flows), else
// reading the flows of the minutes it cuts.
func (e *Engine) trafficIn(ctx context.Context, p Params) error {
	name := trafficInWhole
	if err := e.ensure(ctx, "traffic"); err != nil {
		return err
	}
	if !p.Since.IsZero() || !p.Until.IsZero() {
		var cut bool
		q := `SELECT count(*) > 0 FROM traffic
			WHERE (first_time < ft_since() AND last_time >= ft_since()) OR (first_time <= ft_until() AND last_time > ft_until())`
		err := e.ensure(ctx, e.refs(q)...)
		if err == nil {
			err = e.db.QueryRowContext(ctx, q).Scan(&cut)
		}
		if err != nil {
			return fmt.Errorf("set up ft_traffic_in: %w", firstLine(err))
		}
		if cut {
			name = trafficInCut
		}
	}
	if err := e.ensure(ctx, "ft_sessions_overlap"); err != nil {
		return err
	}
	if getBool(ctx, e.db, "ft_sessions_overlap") {
		name = trafficInCut
	}
	if e.trafficInFile == name {
		return nil
	}
	step := fileStep(name)
	q, err := step.sql(ctx)
	if err != nil {
		return err
	}
	if err := e.ensure(ctx, e.reads(step, q)...); err != nil {
		return err
	}
	if err := e.exec(ctx, step, q); err != nil {
		return err
	}
	e.trafficInFile = name
	e.done[e.provider["ft_traffic_in"]] = true
	return nil
}

// SetupSQL is the SQL that sets up every view over the engine's files, as
// one script for the duckdb CLI (duckdb -init setup.sql): the analyses'
// SQL files then run in it as they are.
func (e *Engine) SetupSQL(ctx context.Context) (string, error) {
	// Absolute paths: the script runs wherever the user starts duckdb.
	abs := *e
	abs.files = tape.Files{}
	var err error
	if abs.files.Flows, err = absPaths(e.files.Flows); err != nil {
		return "", err
	}
	if abs.files.Events, err = absPaths(e.files.Events); err != nil {
		return "", err
	}
	abs.versions = map[string]string{}
	versions, err := e.flowVersions(ctx)
	if err != nil {
		return "", err
	}
	for i, p := range e.files.Flows {
		abs.versions[abs.files.Flows[i]] = versions[p]
	}
	if e.derivedErr != nil {
		return "", e.derivedErr
	}
	if err := e.checkDerived(ctx, schema.DerivedKinds...); err != nil {
		return "", err
	}
	abs.derived = map[string][]string{}
	for kind, paths := range e.derived {
		if abs.derived[kind], err = absPaths(paths); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "-- The views of flowtape query over %d flow and %d event files and their derived\n", len(e.files.Flows), len(e.files.Events))
	b.WriteString("-- tables. The analyses' parameters are variables: SET VARIABLE since =\n")
	b.WriteString("-- TIMESTAMP_NS '2026-11-25 13:00:00', until, namespace, reporter, level, bucket\n")
	b.WriteString("-- (seconds), errors_by; flowtape analyze NAME --sql prints an analysis.\n")
	for _, s := range abs.steps() {
		q, err := s.sql(ctx)
		if err != nil {
			return "", err
		}
		q = strings.TrimSpace(q)
		if !strings.HasSuffix(q, ";") {
			q += ";"
		}
		fmt.Fprintf(&b, "\n-- %s\n%s\n", s.title, q)
	}
	return b.String(), nil
}

func absPaths(paths []string) ([]string, error) {
	out := make([]string, len(paths))
	for i, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("set up: %w", err)
		}
		out[i] = a
	}
	return out, nil
}

// flowsAllSQL reads the flow files, each group of files that lacks the
// same columns with those computed (flowsAllView).
func (e *Engine) flowsAllSQL(ctx context.Context) (string, error) {
	versions, err := e.flowVersions(ctx)
	if err != nil {
		return "", err
	}
	return flowsAllView(e.files.Flows, versions), nil
}

// flowVersions are the schema versions of the flow files, read from their
// footers once: by DuckDB, whose metadata cache then serves the views.
func (e *Engine) flowVersions(ctx context.Context) (map[string]string, error) {
	if e.versions != nil {
		return e.versions, nil
	}
	meta, err := e.footers(ctx, e.files.Flows)
	if err != nil {
		return nil, err
	}
	versions := map[string]string{}
	for _, p := range e.files.Flows {
		m := meta[p]
		if m[schema.MetaKind] != schema.KindFlows {
			return nil, fmt.Errorf("%s: a file of kind %q, not flows", p, m[schema.MetaKind])
		}
		if err := schema.CheckVersion(m[schema.MetaSchemaVersion]); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		versions[p] = m[schema.MetaSchemaVersion]
	}
	e.versions = versions
	return versions, nil
}

// footers reads the key-value metadata of files with DuckDB (which keeps
// the footers for the views that read the files). A file that cannot be
// read is named by tape.Stat.
func (e *Engine) footers(ctx context.Context, files []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	if len(files) == 0 {
		return out, nil
	}
	if err := e.ensure(ctx); err != nil {
		return nil, err
	}
	rows, err := e.db.QueryContext(ctx, "SELECT file_name, decode(key), decode(value) FROM parquet_kv_metadata("+quoteList(files)+")")
	if err != nil {
		for _, p := range files {
			if _, serr := tape.Stat(p); serr != nil {
				return nil, serr
			}
		}
		return nil, fmt.Errorf("read the footers of %d files: %w", len(files), firstLine(err))
	}
	defer rows.Close()
	for rows.Next() {
		var f, k, v string
		if err := rows.Scan(&f, &k, &v); err != nil {
			return nil, err
		}
		if out[f] == nil {
			out[f] = map[string]string{}
		}
		out[f][k] = v
	}
	return out, rows.Err()
}

// variablesSQL sets the DuckDB variables the macros read: the analysis
// defaults and the facts of the recording format that Go declares, so
// that the SQL holds no copy of them.
func variablesSQL() string {
	kafka := schema.ResidualKafka()
	foldFrom, foldTo := schema.HeaderFold()
	var ids []string
	for _, id := range slices.Sorted(maps.Keys(schema.ReservedIdentities)) {
		ids = append(ids, fmt.Sprintf("CAST(%d AS UINTEGER): %s", id, quote(schema.ReservedIdentities[id])))
	}
	var kafkaTag []string
	for _, b := range kafka.KafkaTag {
		kafkaTag = append(kafkaTag, strconv.Itoa(int(b)))
	}
	vars := []struct{ name, value string }{
		{"ft_default_reporter", quote(defaults.Reporter)},
		{"ft_default_level", quote(defaults.Level)},
		{"ft_default_errors_by", quote(defaults.ErrorsBy)},
		{"ft_sketch_gamma", sqlDouble(schema.SketchGamma())},
		{"ft_default_bucket_seconds", strconv.FormatInt(int64(defaults.Bucket/time.Second), 10)},
		{"ft_default_health_degraded", sqlDouble(defaults.HealthDegraded)},
		{"ft_default_health_failure", sqlDouble(defaults.HealthFailure)},
		{"ft_default_slo_objective", sqlDouble(defaults.SLOObjective)},
		{"ft_recorder_node", quote(schema.RecorderNode)},
		{"ft_reserved_identities", "MAP {" + strings.Join(ids, ", ") + "}"},
		{"ft_fold_from", quote(foldFrom)},
		{"ft_fold_to", quote(foldTo)},
		{"ft_header_request_id", quote(schema.HeaderRequestID)},
		{"ft_header_content_type", quote(schema.HeaderContentType)},
		{"ft_grpc_content_type", quote(schema.GRPCContentType)},
		{"ft_grpc_protocol", quote(schema.GRPCProtocol)},
		{"ft_grpc_method", quote(schema.GRPCMethod)},
		{"ft_grpc_url_pattern", quote(schema.GRPCURLPattern)},
		{"ft_pb_l7_tag", strconv.Itoa(int(kafka.L7Tag))},
		{"ft_pb_kafka_tag", "[" + strings.Join(kafkaTag, ", ") + "]"},
		{"ft_pb_fields_before_l7", strconv.Itoa(kafka.FieldsBeforeL7)},
	}
	stmts := make([]string, len(vars))
	for i, v := range vars {
		stmts[i] = fmt.Sprintf("SET VARIABLE %s = %s;", v.name, v.value)
	}
	return strings.Join(stmts, "\n")
}

// lossesSQL sets ft_expired_flows and ft_expired_until, and
// ft_dropped_flows, ft_dropped_first and ft_dropped_last (see
// manifestLosses).
func lossesSQL(mans []*tape.Manifest) string {
	expired, dropped := manifestLosses(mans)
	ts := func(t *time.Time) string {
		if t == nil {
			return "NULL::TIMESTAMP_NS"
		}
		return "TIMESTAMP_NS " + quote(t.UTC().Format("2006-01-02 15:04:05.999999999"))
	}
	return strings.Join([]string{
		fmt.Sprintf("SET VARIABLE ft_expired_flows = %d;", expired.Flows),
		fmt.Sprintf("SET VARIABLE ft_expired_until = %s;", ts(expired.LastFlow)),
		fmt.Sprintf("SET VARIABLE ft_dropped_flows = %d;", dropped.Flows),
		fmt.Sprintf("SET VARIABLE ft_dropped_first = %s;", ts(dropped.FirstFlow)),
		fmt.Sprintf("SET VARIABLE ft_dropped_last = %s;", ts(dropped.LastFlow)),
	}, "\n")
}

func sqlDouble(f float64) string {
	return "CAST(" + strconv.FormatFloat(f, 'g', -1, 64) + " AS DOUBLE)"
}
