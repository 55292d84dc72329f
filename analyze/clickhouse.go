package analyze

import (
	"context"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/printer"
	"github.com/flowtape/flowtape/schema"
)

// The analyses on ClickHouse: the SQL files of sql/clickhouse (their
// README says how they fit together), sent as one query to a ClickHouse
// server (--engine clickhouse) or to chDB, ClickHouse as a library in this
// process (--engine chdb). The query reads the recording where it lies:
// file() over a directory (chDB only), s3() or gcs() (or s3Cluster) over a
// bucket, the files listed by flowtape, so that ClickHouse reads exactly
// the files DuckDB would (not a live segment's pieces twice, not a file
// compacted into another). Guarded by TestClickHouseMatchesDuckDB, which
// runs every analysis on both engines over the simulator's incident and
// the real samples and compares the rows.

// chViews are the ClickHouse views in the order a query defines them:
// each reads only those before it.
var chViews = []string{"pods", "pod_renames", "traffic", "edges", "time_window", "time_window_losses", "traffic_in",
	"requests", "requests_counted", "requests_in", "connections", "connections_in", "dns", "drops"}

// chSources are the recording's tables a query is given.
var chSources = []string{"flows", "events", "derived_requests", "derived_connections", "derived_traffic", "derived_pods"}

// chSettings are the settings every query runs with (see the README of
// sql/clickhouse).
const chSettings = "join_use_nulls = 1, aggregate_functions_null_for_empty = 1, transform_null_in = 1, prefer_column_name_to_alias = 1, " +
	"use_hive_partitioning = 0, optimize_move_to_prewhere = 0, input_format_parquet_filter_push_down = 0, session_timezone = 'UTC', " +
	"output_format_json_quote_64bit_integers = 0, output_format_json_quote_denormals = 1, max_query_size = 104857600"

// chConn runs a query on ClickHouse and returns its rows with Go values
// as DuckDB gives them (integers int64, times time.Time, NULL nil).
type chConn interface {
	query(ctx context.Context, sql string) (printer.Table, error)
	// columns are the names and ClickHouse types of a query's columns.
	columns(ctx context.Context, sql string) ([]Column, error)
	close() error
}

// ClickHouse runs the analyses on ClickHouse.
type ClickHouse struct {
	conn    chConn
	src     *chSource
	sources map[string]string // each table's SELECT
	facts   map[string]any
	// server and cluster, as given (Flags)
	server, cluster string
}

// ClickHouseOptions say which ClickHouse to use.
type ClickHouseOptions struct {
	// Server is a clickhouse:// URL (clickhouse-go's DSN); empty: chDB in
	// this process.
	Server string
	// Cluster reads buckets with s3Cluster over this cluster's nodes.
	Cluster string
}

// OpenClickHouse lists the recordings' files (directories; bucket URLs)
// and connects.
func OpenClickHouse(ctx context.Context, locs []string, since, until time.Time, o ClickHouseOptions) (*ClickHouse, error) {
	src, err := newCHSource(ctx, locs, since, until, o)
	if err != nil {
		return nil, err
	}
	var conn chConn
	if o.Server == "" {
		conn = chdbConn{}
	} else if conn, err = openCHServer(ctx, o.Server); err != nil {
		return nil, err
	}
	e := &ClickHouse{conn: conn, src: src, sources: map[string]string{}, server: o.Server, cluster: o.Cluster}
	for _, t := range chSources {
		kind := strings.TrimPrefix(t, "derived_")
		e.sources[t] = src.table(kind)
	}
	expired, dropped := src.losses()
	foldFrom, foldTo := schema.HeaderFold()
	e.facts = map[string]any{
		"ft_health_degraded": defaults.HealthDegraded, "ft_health_failure": defaults.HealthFailure,
		"ft_recorder_node": schema.RecorderNode, "ft_filtered_capture": src.filtered(),
		"ft_fold_from": foldFrom, "ft_fold_to": foldTo, "ft_header_request_id": schema.HeaderRequestID,
		"ft_expired_flows": expired.Flows, "ft_expired_until": timePtr(expired.LastFlow),
		"ft_dropped_flows": dropped.Flows, "ft_dropped_first": timePtr(dropped.FirstFlow), "ft_dropped_last": timePtr(dropped.LastFlow),
		"ft_world_identities": reservedIdentities("world", "world-ipv4", "world-ipv6"),
		"ft_node_identities":  reservedIdentities("host", "remote-node", "health"),
	}
	return e, nil
}

// reservedIdentities are the numbers of Cilium's reserved identities of
// these names (schema.ReservedIdentities), in order: the ClickHouse SQL's
// copy of what DuckDB's reads by name.
func reservedIdentities(names ...string) []uint32 {
	var out []uint32
	for id, name := range schema.ReservedIdentities {
		if slices.Contains(names, name) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func timePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return *t
}

// Close disconnects.
func (e *ClickHouse) Close() error { return e.conn.close() }

// ClickHouseAnalysisSQL is the ClickHouse SQL of an analysis.
func ClickHouseAnalysisSQL(name string) (string, error) {
	b, err := fs.ReadFile(SQL, "sql/clickhouse/analyses/"+name+".sql")
	if err != nil {
		if _, err := AnalysisSQL(name); err != nil {
			return "", err
		}
		return "", fmt.Errorf("analysis %q is not written for ClickHouse yet: use --engine duckdb", name)
	}
	return string(b), nil
}

// Run runs a built-in analysis.
func (e *ClickHouse) Run(ctx context.Context, name string, p Params) (printer.Table, error) {
	q, err := e.analysisQuery(name, p)
	if err != nil {
		return printer.Table{}, err
	}
	if e.src.derivedErr != nil {
		return printer.Table{}, e.src.derivedErr
	}
	if e.src.noFlows() && !aboutLosses[name] {
		return printer.Table{}, fmt.Errorf("%s: the recording holds no flows, only events: nothing to analyze", strings.Join(e.src.names, " "))
	}
	t, err := e.conn.query(ctx, q)
	if err != nil {
		return t, fmt.Errorf("%s on %s: %w", name, e.engineName(), err)
	}
	return t, nil
}

func (e *ClickHouse) engineName() string {
	if _, ok := e.conn.(chdbConn); ok {
		return "chDB"
	}
	return "ClickHouse"
}

// AnalysisQuery is the whole query an analysis sends, what --sql
// prints: the secret key of the environment's credentials, if any, is
// shown as <AWS_SECRET_ACCESS_KEY>.
func (e *ClickHouse) AnalysisQuery(name string, p Params) (string, error) {
	q, err := e.analysisQuery(name, p)
	if s := e.src.secret; s != "" {
		q = strings.ReplaceAll(q, chQuote(s), "'<AWS_SECRET_ACCESS_KEY>'")
	}
	if s := e.src.token; s != "" {
		q = strings.ReplaceAll(q, chQuote(s), "'<AWS_SESSION_TOKEN>'")
	}
	return q, err
}

func (e *ClickHouse) analysisQuery(name string, p Params) (string, error) {
	q, err := ClickHouseAnalysisSQL(name)
	if err != nil {
		return "", err
	}
	if err := p.ValidateFor(name); err != nil {
		return "", err
	}
	return e.compose(q, p)
}

// Query runs SQL in ClickHouse's dialect over the views.
func (e *ClickHouse) Query(ctx context.Context, q string) (printer.Table, error) {
	if e.src.derivedErr != nil {
		// Queries of the flows and events alone still work.
		for _, id := range chIdent.FindAllString(stripComments(q), -1) {
			if slices.Contains(chViews, id) || strings.HasPrefix(id, "derived_") {
				return printer.Table{}, e.src.derivedErr
			}
		}
	}
	s, err := e.compose(q, Params{})
	if err != nil {
		return printer.Table{}, err
	}
	return e.conn.query(ctx, s)
}

var (
	chIdent       = regexp.MustCompile(`\b[a-z_][a-z0-9_]*\b`)
	chLeadingWith = regexp.MustCompile(`(?is)^\s*WITH\s`)
	chParam       = regexp.MustCompile(`\{(\w+):([^{}]+)\}`)
)

// compose makes the query: WITH the macros, the tables, the views q reads
// (and those they read), then q's own WITH list and SELECT; its
// parameters filled in.
func (e *ClickHouse) compose(q string, p Params) (string, error) {
	q = strings.TrimRight(strings.TrimSpace(stripComments(q)), ";")
	view := func(name string) string {
		b, _ := fs.ReadFile(SQL, "sql/clickhouse/views/"+name+".sql")
		return strings.TrimSpace(stripComments(string(b)))
	}
	// The views q reads, and those they read.
	need := map[string]bool{}
	var visit func(text string)
	visit = func(text string) {
		for _, id := range chIdent.FindAllString(text, -1) {
			if slices.Contains(chViews, id) && !need[id] {
				need[id] = true
				visit(view(id))
			}
		}
	}
	visit(q)
	// traffic_in_cut.sql defines traffic_in where a window may cut
	// minutes or sessions may have counted the same ones.
	cut := !p.Since.IsZero() || !p.Until.IsZero() || e.src.sessions > 1
	if need["traffic_in"] && cut {
		visit(view("traffic_in_cut"))
	}
	macros, _ := fs.ReadFile(SQL, "sql/clickhouse/macros.sql")
	entries := []string{strings.TrimSpace(stripComments(string(macros)))}
	for _, t := range chSources {
		entries = append(entries, fmt.Sprintf("%s AS (\n%s\n)", t, e.sources[t]))
	}
	for _, v := range chViews {
		if !need[v] {
			continue
		}
		body := view(v)
		if v == "traffic_in" && cut {
			body = view("traffic_in_cut")
		}
		entries = append(entries, fmt.Sprintf("%s AS (\n%s\n)", v, body))
	}
	var b strings.Builder
	b.WriteString("WITH\n")
	b.WriteString(strings.Join(entries, ",\n"))
	if loc := chLeadingWith.FindStringIndex(q); loc != nil {
		b.WriteString(",\n")
		b.WriteString(q[loc[1]:])
	} else {
		b.WriteString("\n")
		b.WriteString(q)
	}
	b.WriteString("\nSETTINGS " + chSettings)
	return e.fill(b.String(), p)
}

// fill replaces the query parameters with literals: one path for chDB
// (which takes no parameters) and servers.
func (e *ClickHouse) fill(q string, p Params) (string, error) {
	reporter, level, bucket, by := p.Reporter, p.Level, p.Bucket, p.By
	if by == "" {
		by = defaults.ErrorsBy
	}
	if reporter == "" {
		reporter = defaults.Reporter
	}
	if level == "" {
		level = defaults.Level
	}
	if bucket <= 0 {
		bucket = defaults.Bucket
	}
	objective := p.Objective
	if objective == 0 {
		objective = defaults.SLOObjective
	}
	vals := p.queryValues()
	for k, v := range map[string]any{
		"reporter": reporter, "level": level, "bucket": int64(bucket / time.Second), "errors_by": by, "slo_objective": objective,
	} {
		vals[k] = v
	}
	for k, v := range e.facts {
		vals[k] = v
	}
	var missing error
	out := chParam.ReplaceAllStringFunc(q, func(m string) string {
		sub := chParam.FindStringSubmatch(m)
		v, ok := vals[sub[1]]
		if !ok {
			missing = fmt.Errorf("query parameter %s has no value", sub[1])
			return m
		}
		return "CAST(" + chLiteral(v) + " AS " + sub[2] + ")"
	})
	return out, missing
}

// chLiteral is a ClickHouse literal of a parameter's value.
func chLiteral(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return chQuote(x)
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case time.Time:
		return chQuote(x.UTC().Format("2006-01-02 15:04:05.000000000"))
	case []uint32:
		var items []string
		for _, v := range x {
			items = append(items, strconv.FormatUint(uint64(v), 10))
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	return chQuote(fmt.Sprint(v))
}

func chQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// stripComments removes -- comments, outside quoted strings.
func stripComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		quoted := false
		for i := 0; i < len(l); i++ {
			switch {
			case l[i] == '\\' && quoted:
				i++
			case l[i] == '\'':
				quoted = !quoted
			case !quoted && strings.HasPrefix(l[i:], "--"):
				l = l[:i]
			}
		}
		if l = strings.TrimRight(l, " \t"); strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Views describes the views users query (ViewNames), as ClickHouse types
// their columns.
func (e *ClickHouse) Views(ctx context.Context) ([]View, error) {
	var out []View
	for _, name := range ViewNames {
		q, err := e.compose("SELECT * FROM "+name+" LIMIT 0", Params{})
		if err != nil {
			return nil, err
		}
		cols, err := e.conn.columns(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("describe %s: %w", name, err)
		}
		out = append(out, View{Name: name, Columns: cols})
	}
	return out, nil
}
