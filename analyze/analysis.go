package analyze

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowtape/flowtape/printer"
)

// Params are the parameters every analysis takes, set as DuckDB variables
// (since, until, namespace, reporter, level, bucket; the SQL reads them
// through the macros ft_since() ... ft_bucket_seconds()) so that the files
// run as they are.
type Params struct {
	Since, Until time.Time
	Namespace    string
	// Reporter is server (default), client or both: which proxy's view of
	// a request counts (see requests_counted.sql).
	Reporter string
	// Level is the graph's node: workload (default), service or pod; for
	// slo, edge makes a row per edge rather than per service.
	Level string
	// Bucket is the timeline's bucket (default a minute).
	Bucket time.Duration
	// By is what a row of errors is: path (default: an endpoint of an
	// edge) or edge; on the summary path, edge.
	By string
	// Objective is slo's objective, a percentage of good events (0:
	// defaults.SLOObjective; flowtape analyze refuses --objective 0);
	// Latency its latency SLI's threshold (0: no latency SLI).
	Objective float64
	Latency   time.Duration
	// NewSince is egress's --new-since: only destinations no flow before
	// it went to.
	NewSince time.Time
	// Summaries is whether services, graph, timeline, errors and slo read the per-minute
	// summaries: auto (default: over windows longer than
	// defaults.SummaryWindow), always or never (see summary.go).
	Summaries string
}

// Validate returns a one-line error naming the flag of a bad parameter.
func (p Params) Validate() error {
	switch p.Reporter {
	case "", "server", "client", "both":
	default:
		return fmt.Errorf("--reporter %q: use server, client or both", p.Reporter)
	}
	switch p.Level {
	case "", "workload", "service", "pod", "edge":
	default:
		return fmt.Errorf("--level %q: use workload, service or pod (slo: service or edge)", p.Level)
	}
	if math.IsNaN(p.Objective) || p.Objective < 0 || p.Objective >= 100 {
		return fmt.Errorf("--objective %g: give a percentage of good events below 100, e.g. 99.9", p.Objective)
	}
	if p.Latency < 0 || (p.Latency > 0 && p.Latency < time.Millisecond) {
		return fmt.Errorf("--latency %s: give a threshold of at least 1ms, e.g. 300ms", p.Latency)
	}
	switch p.By {
	case "", "path", "edge":
	default:
		return fmt.Errorf("--by %q: use path or edge", p.By)
	}
	switch p.Summaries {
	case "", SummariesAuto, SummariesAlways, SummariesNever:
	default:
		return fmt.Errorf("--summaries %q: use auto, always or never", p.Summaries)
	}
	if p.Bucket < 0 || p.Bucket%time.Second != 0 {
		return fmt.Errorf("--bucket %s: use whole seconds, e.g. 10s, 1m or 5m", p.Bucket)
	}
	if !p.Since.IsZero() && !p.Until.IsZero() && p.Until.Before(p.Since) {
		return fmt.Errorf("--until %s is before --since %s", p.Until.Format(time.RFC3339), p.Since.Format(time.RFC3339))
	}
	return nil
}

// aboutLosses are the analyses that say what was lost, which they do even
// for a recording of nothing but losses.
var aboutLosses = map[string]bool{"coverage": true, "timeline": true}

// Analyses lists the built-in analyses.
func Analyses() []string {
	entries, _ := fs.ReadDir(SQL, "sql/analyses")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".sql"))
	}
	return out
}

// AnalysisSQL is the SQL of an analysis.
func AnalysisSQL(name string) (string, error) {
	b, err := SQL.ReadFile("sql/analyses/" + name + ".sql")
	if err != nil {
		return "", fmt.Errorf("unknown analysis %q: use one of %s", name, strings.Join(Analyses(), ", "))
	}
	return string(b), nil
}

// Run runs a built-in analysis.
func (e *Engine) Run(ctx context.Context, name string, p Params) (printer.Table, error) {
	q, err := AnalysisSQL(name)
	if err != nil {
		return printer.Table{}, err
	}
	if err := p.ValidateFor(name); err != nil {
		return printer.Table{}, err
	}
	if len(e.files.Flows) == 0 && !aboutLosses[name] {
		paths := strings.Join(e.paths, " ")
		return printer.Table{}, fmt.Errorf("%s: the recording holds no flows, only events: nothing to analyze (flowtape query %s \"SELECT * FROM events\" shows them)", paths, paths)
	}
	e.PathNote = ""
	use, note, err := e.summaryPath(ctx, name, &p)
	if err != nil {
		return printer.Table{}, fmt.Errorf("%s: %w", name, err)
	}
	if use {
		q, _ = SummarySQL(name)
		e.PathNote = note
	}
	var bucket any
	if p.Bucket > 0 {
		bucket = int64(p.Bucket / time.Second)
	}
	// DuckDB's macros fill in the defaults of what is unset (NULL).
	vars := p.queryValues()
	for k, v := range map[string]any{
		"reporter": strOrNil(p.Reporter), "level": strOrNil(p.Level), "bucket": bucket, "errors_by": strOrNil(p.By),
		"slo_objective": floatOrNil(p.Objective), "ft_unsettled_only": use,
		"ft_summary_h0": timeOrNil(e.summaryHours[0]), "ft_summary_h1": timeOrNil(e.summaryHours[1]),
	} {
		vars[k] = v
	}
	for _, v := range slices.Sorted(maps.Keys(vars)) {
		stmt := fmt.Sprintf("SET VARIABLE %s = NULL", v)
		switch x := vars[v].(type) {
		case time.Time:
			stmt = fmt.Sprintf("SET VARIABLE %s = TIMESTAMP_NS %s", v, quote(x.UTC().Format("2006-01-02 15:04:05.999999999")))
		case string:
			stmt = fmt.Sprintf("SET VARIABLE %s = %s", v, quote(x))
		case int64:
			stmt = fmt.Sprintf("SET VARIABLE %s = %d", v, x)
		case float64:
			stmt = fmt.Sprintf("SET VARIABLE %s = %s", v, sqlDouble(x))
		case bool:
			stmt = fmt.Sprintf("SET VARIABLE %s = %t", v, x)
		}
		if _, err := e.db.ExecContext(ctx, stmt); err != nil {
			return printer.Table{}, fmt.Errorf("%s: %w", name, firstLine(err))
		}
	}
	if slices.Contains(e.refs(q), "ft_traffic_in") {
		if err := e.trafficIn(ctx, p); err != nil {
			return printer.Table{}, fmt.Errorf("%s: %w", name, err)
		}
	}
	t, err := e.Query(ctx, q)
	if err != nil {
		return t, fmt.Errorf("%s: %w", name, ownError(err))
	}
	return t, nil
}

// ownError is an error the analysis's SQL raised itself (error(): an
// empty window, too many buckets, a --new-since outside the recording) as
// the user should read it, without DuckDB's "query: Invalid Input Error: "
// before it; any other error as it is.
func ownError(err error) error {
	msg := err.Error()
	for _, own := range []string{"the window is empty", "the window spans more than", "--new-since "} {
		if i := strings.Index(msg, own); i >= 0 && strings.Contains(msg[:i], "Invalid Input Error: ") {
			return errors.New(msg[i:])
		}
	}
	return err
}

// queryValues are the parameters both engines' SQL reads as they are,
// by name; nil where unset. The rest (reporter, level, bucket, errors_by,
// slo_objective) each engine defaults its own way.
func (p Params) queryValues() map[string]any {
	return map[string]any{
		"since": timeOrNil(p.Since), "until": timeOrNil(p.Until), "namespace": strOrNil(p.Namespace),
		"slo_latency_ms": floatOrNil(float64(p.Latency) / float64(time.Millisecond)),
		"new_since":      timeOrNil(p.NewSince),
	}
}

func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func floatOrNil(f float64) any {
	if f == 0 {
		return nil
	}
	return f
}

// ValidateFor is Validate, and --level checked against the analysis:
// slo's rows are services or edges, the graph's nodes workloads, services
// or pods.
func (p Params) ValidateFor(name string) error {
	if err := p.Validate(); err != nil {
		return err
	}
	switch {
	case name == "slo" && p.Level == "pod":
		return fmt.Errorf("--level pod: slo gives a row per service (--level service or workload) or per edge (--level edge)")
	case name != "slo" && p.Level == "edge":
		return fmt.Errorf("--level edge is slo's: the graph's nodes are workloads, services or pods")
	case name != "egress" && !p.NewSince.IsZero():
		return fmt.Errorf("--new-since is egress's: it keeps the destinations no flow before it went to")
	case name == "slo" && p.Bucket > 0 && (5*time.Minute)%p.Bucket != 0:
		// a window of whole steps: at --bucket 1h the 5-minute window
		// would be an hour, and both alerts one
		return fmt.Errorf("--bucket %s: slo evaluates its alerts every --bucket, which must divide 5m, e.g. 1m or 30s", p.Bucket)
	}
	return nil
}

// flagReaders are the analyses that read each analysis's own flag (by its
// name): given to another analysis, the flag would change nothing, and a
// user who asked for errors by edge or a latency SLI of services would
// take the answer for what they asked.
var flagReaders = map[string][]string{
	"level":     {"graph", "slo"},
	"by":        {"errors"},
	"bucket":    {"timeline", "slo"},
	"objective": {"slo"},
	"latency":   {"slo"},
	"new-since": {"egress"},
	"reporter":  {"services", "graph", "errors", "timeline", "slo"},
	// coverage counts each node's flows and losses, of every namespace
	"namespace": {"services", "graph", "errors", "drops", "dns", "timeline", "egress", "slo"},
}

// CheckFlags returns an error naming the first of the flags given (by
// name) that analysis name does not read, and the analyses that do.
func CheckFlags(name string, given []string) error {
	for _, f := range given {
		readers, ok := flagReaders[f]
		if !ok || slices.Contains(readers, name) {
			continue
		}
		list := strings.Join(readers, ", ")
		if n := len(readers); n > 1 {
			list = strings.Join(readers[:n-1], ", ") + " and " + readers[n-1]
		}
		return fmt.Errorf("--%s applies to %s, not to %s", f, list, name)
	}
	return nil
}

func strOrNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Notes are what a reader of an analysis's result must know to read it
// right, e.g. that the recording had no L7 visibility.
func Notes(name string, t printer.Table) []string {
	col := map[string]int{}
	for i, c := range t.Columns {
		col[c] = i
	}
	if basis, ok := col["basis"]; ok && name == "slo" {
		n := 0
		for _, r := range t.Rows {
			if r[basis] == "connections" {
				n++
			}
		}
		if n == 0 {
			return nil
		}
		return []string{fmt.Sprintf("%d rows had no L7 (HTTP/gRPC) data: their availability is of TCP connections neither dropped nor unanswered, "+
			"of those the recording can judge (basis connections, -o wide); a connection a policy denied counts as failed.", n)}
	}
	if name == "egress" {
		return []string{"Hubble flows carry no byte counts: flows and connections (SYNs sent) say how often a destination was reached, not how much went to it."}
	}
	vis, hasVis := col["visibility"]
	if name != "services" || !hasVis || len(t.Rows) == 0 {
		return nil
	}
	var notes []string
	l7 := false
	unjudged := 0
	for _, r := range t.Rows {
		if r[vis] == "L7" {
			l7 = true
		} else if r[col["health"]] == "unknown" && IntCell(r[col["connections"]]) > 0 {
			unjudged++
		}
	}
	if !l7 {
		notes = append(notes, "no service listed had L7 (HTTP/gRPC) visibility: requests, errors and latency need Cilium's L7 proxy "+
			"(an L7 network policy; GKE Dataplane V2 has none). Shown instead: connections, connection failures and drops (flows too with -o wide).")
	}
	if unjudged > 0 {
		notes = append(notes, fmt.Sprintf("health unknown for %d services: the recording holds no packet of the other direction of their "+
			"connections (a capture filtered by verdict, TCP flags or --from-pod, or policy verdicts only), so an unanswered SYN cannot be "+
			"told from an answer that was not recorded; record both directions to judge them.", unjudged))
	}
	return notes
}

// IntCell reads a cell of a result table as an integer (0 when it is
// none): DuckDB gives integers of several widths, and CSV-like callers
// strings.
func IntCell(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int32:
		return int64(x)
	case int:
		return int64(x)
	case uint64:
		return int64(x)
	case uint32:
		return int64(x)
	case float64:
		return int64(x)
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}
