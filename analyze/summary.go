package analyze

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// The summary path. What: services, graph, timeline, errors and slo over a long
// window read the per-minute summaries the writer derived with each file
// (schema/summary.go) instead of every request and connection
// (sql/summary/*.sql). Why: a day of a large cluster is billions of
// requests; its summaries are thousands of rows per edge-day, and the
// answer comes in about a second. The trade-off: latency percentiles (and
// slo's latency SLI) come from a sketch (within 1%; max exact), windows
// are whole minutes (slo's steps too), graph
// has no pod level there and errors no URL paths (one row per edge, as
// --by edge); counts are those of the exact path, because
// the summaries count only what their file settled and the rest is read
// from the derived rows (sql/summary/views.sql). Guarded by
// TestSummaryMatchesExact (counts equal, percentiles within 1%, on the
// simulator's truth and the real samples).

// Summary modes (--summaries).
const (
	SummariesAuto   = "auto"
	SummariesAlways = "always"
	SummariesNever  = "never"
)

// summaryAnalyses are the analyses with a summary path.
var summaryAnalyses = []string{"services", "graph", "timeline", "errors", "slo"}

// SummarySQL is the summary path's SQL of an analysis.
func SummarySQL(name string) (string, bool) {
	b, err := SQL.ReadFile("sql/summary/" + name + ".sql")
	return string(b), err == nil
}

// onSummaries reports whether the derived views are the summary path's.
func (e *Engine) onSummaries() bool { return e.summaryFor != "" }

// summaryPath decides whether analysis name reads the summaries, and
// says why (a line for stderr; "" when there is nothing to say). It
// rounds p's window out to whole minutes when it does.
func (e *Engine) summaryPath(ctx context.Context, name string, p *Params) (bool, string, error) {
	mode := p.Summaries
	if mode == "" {
		mode = SummariesAuto
	}
	if e.onSummaries() {
		// the views are the summary path's, for the window of the
		// analysis that chose it
		return false, "", fmt.Errorf("this engine read the summaries for an analysis before: open another one for %s", name)
	}
	if mode == SummariesNever {
		return false, "", nil
	}
	refuse := func(why string) (bool, string, error) {
		if mode == SummariesAlways {
			return false, "", fmt.Errorf("--summaries always: %s", why)
		}
		return false, "", nil
	}
	switch {
	case !slices.Contains(summaryAnalyses, name):
		return refuse(fmt.Sprintf("%s has no summary path (%s have)", name, strings.Join(summaryAnalyses, ", ")))
	case name == "graph" && p.Level == "pod":
		return refuse("the summaries keep no pods: --level pod reads every request and connection")
	case name == "errors" && p.By == "path":
		return refuse("the summaries keep no URL paths: --by path reads every request (the summaries give errors --by edge)")
	case (name == "timeline" || name == "slo") && bucketOf(*p)%time.Minute != 0:
		return refuse(fmt.Sprintf("the summaries count by minute: --bucket %s is not whole minutes", bucketOf(*p)))
	case e.derivedErr != nil:
		return refuse(e.derivedErr.Error())
	case e.setUp("derived_traffic") || e.setUp("derived_connections"):
		return refuse("the engine already read the exact tables")
	case mode == SummariesAuto && !p.Since.IsZero() && !p.Until.IsZero() && p.Until.Sub(p.Since) <= defaults.SummaryWindow:
		return false, "", nil // a short window: no summary file read to decide
	case mode == SummariesAuto && e.partitionSpan(*p) <= defaults.SummaryWindow:
		return false, "", nil // nor where the flow files' hours bound it
	}
	if err := e.summarySources(ctx); err != nil {
		return refuse(err.Error())
	}
	first, last, spans, overlap, err := e.hours(ctx)
	if err != nil {
		return false, "", err
	}
	if !p.Since.IsZero() {
		first = p.Since
	}
	if !p.Until.IsZero() {
		last = p.Until
	}
	span := last.Sub(first)
	if mode == SummariesAuto && span <= defaults.SummaryWindow {
		return false, "", nil
	}
	if overlap {
		return refuse("two recording sessions summarized the same node's flows over the same time (the same flows recorded twice, " +
			"which the exact path counts once)")
	}
	since, until := p.Since, p.Until
	if !since.IsZero() {
		p.Since = since.UTC().Truncate(time.Minute)
	}
	if !until.IsZero() {
		// to the end of its minute; one that ends a minute, to just before
		p.Until = until.UTC().Truncate(time.Minute).Add(time.Minute - time.Nanosecond)
		if until.UTC().Truncate(time.Minute).Equal(until) {
			p.Until = until.Add(-time.Nanosecond)
		}
	}
	e.summaryFor = name
	t0, t1 := first, last
	if !p.Since.IsZero() {
		t0 = p.Since
	}
	if !p.Until.IsZero() {
		t1 = p.Until
	}
	e.summaryHours[0], e.summaryHours[1] = coveredHours(spans, t0, t1)
	if (name == "timeline" || name == "slo") && bucketOf(*p)%time.Hour != 0 {
		// a timeline (slo's steps) of buckets shorter than an hour reads
		// minute rows
		e.summaryHours[0] = time.Time{}
	}
	if e.summaryHours[0].IsZero() {
		// none: an empty range, every minute row
		e.summaryHours[0], e.summaryHours[1] = t0, t0
	}
	e.summaryEdges = e.edgeFiles(spans, t0, t1, e.summaryHours[0], e.summaryHours[1])
	why := fmt.Sprintf("a window of %s", span.Round(time.Minute))
	if mode == SummariesAlways {
		why = "--summaries always"
	}
	note := fmt.Sprintf("%s: read the per-minute summaries (%s; --summaries never reads every request and connection): "+
		"counts exact, p50-p99 within %.0f%%", name, why, schema.SketchRelativeError*100)
	if name == "slo" {
		note = fmt.Sprintf("slo: read the per-minute summaries (%s; --summaries never reads every request and connection): counts exact", why)
		if p.Latency > 0 {
			note += fmt.Sprintf(", a latency within %.0f%% of --latency on either side of it", schema.SketchRelativeError*100)
		}
	}
	if name == "errors" {
		// the rows of --by edge: the summaries keep no URL paths
		p.By = "edge"
		note = fmt.Sprintf("errors: read the per-minute summaries (%s): one row per edge, protocol and port, counts exact; "+
			"--by path (or --summaries never) lists methods and paths from every request", why)
	}
	// (an --until on a minute becomes the nanosecond before it: the same
	// flows but for that instant's, no rounding worth a word)
	if !p.Since.Equal(since) || !p.Until.Equal(until) && !p.Until.Equal(until.Add(-time.Nanosecond)) {
		note += fmt.Sprintf("; the counts are of the window rounded to whole minutes: %s to %s (--summaries never counts the window as given)",
			timeOr(p.Since, "the first flow"), timeOr(p.Until, "the last flow"))
	}
	return true, note, nil
}

// partitionSpan bounds the window of an analysis by the hour partitions
// of the flow files (a flow lies in its own hour's, see tape.Partition)
// and p's bounds: a recording of one hour is analysed exactly without
// reading the summaries' hour rows to measure it (30 ms of a 1M-flow
// analysis of 360). Unknown (a file outside the layout): the longest span.
func (e *Engine) partitionSpan(p Params) time.Duration {
	var lo, hi time.Time
	for _, f := range e.files.Flows {
		h, ok := tape.PartitionHour(f)
		if !ok {
			return math.MaxInt64
		}
		if lo.IsZero() || h.Before(lo) {
			lo = h
		}
		if h.Add(time.Hour).After(hi) {
			hi = h.Add(time.Hour)
		}
	}
	if !p.Since.IsZero() {
		lo = p.Since
	}
	if !p.Until.IsZero() {
		hi = p.Until
	}
	if lo.IsZero() || hi.IsZero() {
		return math.MaxInt64
	}
	return hi.Sub(lo)
}

func timeOr(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.Format(time.RFC3339Nano)
}

// hourSpan is what the summaries' hour rows of one hour count: from its
// first flow (response, SYN) to its last.
type hourSpan struct{ hour, first, last time.Time }

// hours reads the summaries' hour rows: the first and last flow of the
// recording (what the window is without --since and --until), each hour's
// span, and whether two sessions summarized flows of one node in the same
// span of time: the same flows recorded twice (a restarted recorder that
// resumed early, a relay recorder beside a node's), which the exact path
// counts once (by uuid) and summaries cannot.
func (e *Engine) hours(ctx context.Context) (first, last time.Time, spans []hourSpan, overlap bool, err error) {
	files := e.summarySrc
	if len(files) == 0 {
		return first, last, nil, false, nil
	}
	// a rollup's rows say their session; a summary file's is its name's
	session := "NULL::VARCHAR"
	if e.rollups > 0 {
		session = "session"
	}
	rows, err := e.db.QueryContext(ctx, fmt.Sprintf(`SELECT filename, %s, node_name, bucket, part = 'flows', min(first_time), max(last_time)
FROM read_parquet(%s, union_by_name = true, hive_partitioning = false, filename = true) WHERE grain = 'hour' GROUP BY ALL`,
		session, quoteList(files)))
	if err != nil {
		return first, last, nil, false, fmt.Errorf("read summaries: %w", firstLine(err))
	}
	defer rows.Close()
	type nodeSession struct{ node, session string }
	byHour := map[time.Time]*hourSpan{}
	sessions := map[nodeSession]*[2]time.Time{}
	for rows.Next() {
		var file string
		var node, sess sql.NullString
		var hour, lo, hi time.Time
		var flows bool
		if err := rows.Scan(&file, &sess, &node, &hour, &flows, &lo, &hi); err != nil {
			return first, last, nil, false, fmt.Errorf("read summaries: %w", firstLine(err))
		}
		h := byHour[hour]
		if h == nil {
			h = &hourSpan{hour: hour, first: lo, last: hi}
			byHour[hour] = h
		}
		h.first, h.last = minTime(h.first, lo), maxTime(h.last, hi)
		if !flows {
			continue
		}
		first, last = minTime(first, lo), maxTime(last, hi)
		if !sess.Valid {
			sess.String = tape.SessionOf(file)
		}
		k := nodeSession{node.String, sess.String}
		if iv := sessions[k]; iv == nil {
			sessions[k] = &[2]time.Time{lo, hi}
		} else {
			iv[0], iv[1] = minTime(iv[0], lo), maxTime(iv[1], hi)
		}
	}
	if err := rows.Err(); err != nil {
		return first, last, nil, false, fmt.Errorf("read summaries: %w", firstLine(err))
	}
	for _, h := range byHour {
		spans = append(spans, *h)
	}
	slices.SortFunc(spans, func(a, b hourSpan) int { return a.hour.Compare(b.hour) })
	for a, x := range sessions {
		for b, y := range sessions {
			if a.node == b.node && a.session < b.session && !x[1].Before(y[0]) && !y[1].Before(x[0]) {
				overlap = true
			}
		}
	}
	return first, last, spans, overlap, nil
}

// minTime is the earlier of a and b, b where a is unset.
func minTime(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// coveredHours are the hours, from h0 to before h1, whose every summarized
// flow, response and SYN lies in the window t0 to t1: the summaries' hour
// rows count them (ft_summary_rows), minute rows the rest. Over a whole
// recording that is every hour.
func coveredHours(spans []hourSpan, t0, t1 time.Time) (h0, h1 time.Time) {
	for _, h := range spans {
		if h.first.Before(t0) || h.last.After(t1) {
			if !h0.IsZero() {
				break
			}
			continue
		}
		if h0.IsZero() {
			h0 = h.hour
		}
		h1 = h.hour.Add(time.Hour)
	}
	return h0, h1
}

// summaryView is derived_KIND on the summary path (see sql/summary/
// views.sql): traffic from the summaries; connections only those the
// summaries could not settle. ok false: as on the exact path.
func (e *Engine) summaryView(kind, exact string) (string, bool) {
	switch kind {
	case schema.KindTraffic:
		return "CREATE OR REPLACE VIEW derived_traffic AS\n" + summaryTrafficColumns + "FROM ft_summary_rows(p := 'flows')", true
	case schema.KindConnections:
		// The connections the summaries could not settle: those with a
		// row that continues an attempt, but for rows that change
		// nothing the summary counted of it (unchanged; at 10M flows
		// most are SYNs retried past a file's end, and their
		// connections took a quarter of graph's time) where the row
		// that opened the attempt, which the summary counted, is here
		// (retention may have removed its file). errors lists an
		// attempt's drop reasons, counted, which such a row may add to.
		settled := "unchanged"
		if e.summaryFor == "errors" {
			settled = "unchanged AND drop_reasons IS NULL"
		}
		all := strings.Replace(exact, "VIEW derived_connections AS", "VIEW derived_connections_all AS", 1)
		return all + `;
CREATE OR REPLACE VIEW derived_connections AS
SELECT * FROM derived_connections_all
WHERE connection_key IN (SELECT connection_key FROM derived_connections_all
    WHERE NOT opens AND NOT (` + settled + ` AND attempt IN (SELECT attempt FROM derived_connections_all WHERE opens)))`, true
	}
	return "", false
}

// summaryTrafficColumns are the columns of derived_traffic in the
// summary's flows part.
const summaryTrafficColumns = `SELECT bucket, node_name, type, verdict, drop_reason_desc, drop_reason, l4_protocol, l7_protocol, l7_type, is_reply,
    source, source_namespace, source_pod, destination, destination_namespace, destination_pod, destination_service,
    destination_port, flows, tcp_resets, dns_errors, max_latency_ns, first_time, last_time, '' AS session
`

// summaryTrafficAll is derived_traffic_all on the summary path: the hour
// rows of every summary file and rollup, which cover the whole recording
// (derived_traffic holds the window's: the minute rows of the rolled-up
// files of other hours are not read, nor the hour rows of the hours the
// window cuts).
func (e *Engine) summaryTrafficAll() string {
	return "CREATE OR REPLACE VIEW derived_traffic_all AS\n" + summaryTrafficColumns +
		"FROM derived_summary WHERE part = 'flows' AND grain = 'hour'"
}

// summaryLeft sums, over the summary files (or rollups) paths, the rows
// their footers say they leave to the views and keep a pod in
// (schema.MetaSummaryLeft, MetaSummaryPods); missing is the first file
// whose footer does not say.
func summaryLeft(meta map[string]map[string]string, paths []string) (left, pods int64, missing string) {
	for _, p := range paths {
		l, err1 := strconv.ParseInt(meta[p][schema.MetaSummaryLeft], 10, 64)
		n, err2 := strconv.ParseInt(meta[p][schema.MetaSummaryPods], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, 0, p
		}
		left, pods = left+l, pods+n
	}
	return left, pods, ""
}

// setUp reports whether the setup defined object name already.
func (e *Engine) setUp(name string) bool {
	i, ok := e.provider[name]
	return ok && e.done[i]
}

// summaryEmpty is derived_KIND as an empty view on the summary path, for
// the kinds it need not read: requests and connections where no summary
// file leaves a row of them to the views, pods where moreover no summary
// row keeps a pod (their footers say, see schema.MetaSummaryLeft). A day
// of a cluster is thousands of files of each kind.
func (e *Engine) summaryEmpty(kind string) (string, bool) {
	left, pods, missing := summaryLeft(e.summaryMeta, e.summarySrc)
	if missing != "" {
		return "", false // unknown: read them
	}
	switch {
	case (kind == schema.KindRequests || kind == schema.KindConnections) && left == 0,
		kind == schema.KindPods && left == 0 && pods == 0:
		return baseView("derived_"+kind, tableColumns(kind), nil), true
	}
	return "", false
}

// bucketOf is the timeline's bucket.
func bucketOf(p Params) time.Duration {
	if p.Bucket > 0 {
		return p.Bucket
	}
	return defaults.Bucket
}
