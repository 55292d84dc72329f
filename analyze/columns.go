package analyze

import (
	"slices"

	"github.com/flowtape/flowtape/printer"
)

// defaultColumns are the columns an analysis's default table shows, as
// kubectl get shows a few columns and -o wide all of them: the analyses
// return every column (json, csv and markdown print them all), and a row
// of all of them wraps two or three times in a terminal of 80 to 200
// columns. What is left out is what the columns kept already summarize
// (requests and errors beside rps and error_rate, p90/p95 between p50 and
// p99, the protocols behind visibility) or what a first look does not
// need (first and last times, counts by reason, policy denies beside
// drops). An analysis not listed shows every column. A column empty in
// every row is left out too (the L7 columns of services over an L3/L4
// recording, method and path of errors --by edge): it says nothing.
// TestTableColumnsExist checks each name against the analysis's columns;
// TestDefaultTablesFit the width over the real samples.
var defaultColumns = map[string][]string{
	"services": {"service", "namespace", "visibility", "rps", "error_rate", "p50_ms", "p99_ms",
		"connections", "connection_failures", "drops", "health"},
	"graph":  {"source", "destination", "protocols", "rps", "error_rate", "p99_ms", "connections", "drops", "health"},
	"errors": {"source", "destination", "port", "method", "path", "requests", "errors", "statuses"},
	"drops":  {"reason", "source", "destination", "protocol", "port", "direction", "denied_by", "drops", "last"},
	"dns":    {"client", "query", "qtypes", "answers", "errors", "rcodes"},
	// objective, the bad count and the budget itself are what the user
	// gave and what the ratios beside them already say; basis is in a note
	// where it is connections (Notes).
	"slo": {"client", "service", "namespace", "sli", "events", "good_percent", "budget_burned", "page_1h_5m", "page_6h_30m"},
	// ips, last_seen and how the destination was named are what -o wide
	// adds: a name and when it started is what a first look asks.
	"egress":   {"source", "destination", "port", "protocol", "verdict", "flows", "connections", "first_seen"},
	"timeline": {"bucket", "flows", "requests", "errors", "error_rate", "p99_ms", "drops", "connection_failures", "lost_events"},
	// Node names are long (GKE's run to 50 characters): the window is the
	// (all) row's last flow here, and the first row of timeline.
	// expired_until is empty unless retention removed flows.
	"coverage": {"node", "last_flow", "flows", "lost_events", "unavailable", "complete", "expired_until"},
}

// namespaced are the endpoint columns whose namespace column the default
// table folds into them, as namespace/name (hubble observe prints
// endpoints so): two services of one name in two namespaces stay two,
// in one column instead of two.
var namespaced = []string{"source", "destination", "client"}

// TableColumns are the columns the default table of analysis name shows
// (-o wide shows every one); nil: every column.
func TableColumns(name string) []string {
	return slices.Clone(defaultColumns[name])
}

// TableView is the default table of analysis name's result t: its
// TableColumns that have a value in some row, endpoints as
// namespace/name.
func TableView(name string, t printer.Table) printer.Table {
	cols := defaultColumns[name]
	if cols == nil {
		cols = t.Columns
	}
	idx := map[string]int{}
	for i, c := range t.Columns {
		idx[c] = i
	}
	if len(t.Rows) > 0 {
		cols = slices.DeleteFunc(slices.Clone(cols), func(c string) bool {
			i, ok := idx[c]
			return ok && !slices.ContainsFunc(t.Rows, func(row []any) bool { return printer.Cell(row[i]) != "" })
		})
	}
	out := t.Select(cols...) // new rows: t stays as it is
	for _, c := range namespaced {
		i := slices.Index(out.Columns, c)
		n, ok := idx[c+"_namespace"]
		if i < 0 || !ok || slices.Contains(out.Columns, c+"_namespace") {
			continue
		}
		for r, row := range out.Rows {
			if ns, _ := t.Rows[r][n].(string); ns != "" && printer.Cell(row[i]) != "" {
				row[i] = ns + "/" + printer.Cell(row[i])
			}
		}
	}
	return out
}
