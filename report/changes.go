package report

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/printer"
)

// Changes compares the incident with its baseline: the services and edges
// whose numbers moved most, edges that appeared or vanished, and drop
// reasons and DNS failures the baseline did not have. The report's "what
// changed" and flowtape diff print it.
type Changes struct {
	Baseline, Incident Window
	// Given says the baseline was given (--baseline), rather than taken
	// from the data as the part of the window before the incident.
	Given bool
	// BaselineFrom names the baseline's recordings when they are not the
	// incident's (flowtape diff --baseline-recording).
	BaselineFrom []string
	// Why says how the incident's start was found, when it was.
	Why      string
	Services []Change
	Edges    []Change
	// Appeared and Vanished are edges of one window only, with that
	// window's numbers (NaN for the other); by name.
	Appeared, Vanished []Change
	// NewDropReasons and NewDNSFailures are drop reasons and failed DNS
	// answers (query and rcode) of the incident that the baseline did not
	// have, most first.
	NewDropReasons, NewDNSFailures []Change
}

// Change is how one service or edge moved between the windows.
type Change struct {
	Name  string
	Score float64 // how much it moved, to rank by (see score)
	// The numbers before and after; NaN where there were none.
	ErrorRate, P99ms, RPS, FailShare, DropShare [2]float64
	What                                        string // the largest moves, in words
}

// compared are the analyses a comparison runs over both windows.
var compared = [...]string{"services", "graph", "drops", "dns"}

// Compare runs services, graph, drops and dns over the baseline window of
// base and the incident window of inc, and pairs their rows. base and inc
// are the same engine unless the baseline is another recording. top
// bounds the ranked services and edges.
func Compare(ctx context.Context, base analyze.Runner, before Window, inc analyze.Runner, after Window, top int) (*Changes, error) {
	var tables [2][len(compared)]printer.Table
	for i, side := range []struct {
		eng  analyze.Runner
		w    Window
		name string
	}{{base, before, "the baseline"}, {inc, after, "the incident"}} {
		p := analyze.Params{Since: side.w.Since, Until: side.w.Until}
		for j, name := range compared {
			t, err := side.eng.Run(ctx, name, p)
			if err != nil {
				return nil, fmt.Errorf("comparing with the baseline, %s's side (%s): %w", side.name, side.w, err)
			}
			tables[i][j] = t
		}
	}
	c := diffTables(tables[0], tables[1], top)
	c.Baseline, c.Incident = before, after
	return c, nil
}

// diffTables pairs the rows of the analyses in compared, before and after.
func diffTables(before, after [len(compared)]printer.Table, top int) *Changes {
	c := &Changes{}
	svcKey := func(r map[string]any) string { return qualified(r["service"], r["namespace"]) }
	edgeKey := func(r map[string]any) string {
		return qualified(r["source"], r["source_namespace"]) + " -> " + qualified(r["destination"], r["destination_namespace"])
	}
	c.Services = changes(before[0], after[0], svcKey, top)
	c.Edges = changes(before[1], after[1], edgeKey, top)
	c.Appeared, c.Vanished = oneSided(before[1], after[1], edgeKey)
	c.NewDropReasons = newDropReasons(before[2], after[2])
	c.NewDNSFailures = newDNSFailures(before[3], after[3])
	return c
}

func qualified(name, ns any) string {
	if s := toString(ns); s != "" {
		return s + "/" + toString(name)
	}
	return toString(name)
}

// changes pairs the rows of two tables by key and ranks them by score.
func changes(before, after printer.Table, key func(map[string]any) string, top int) []Change {
	old := map[string]map[string]any{}
	for _, r := range before.Records() {
		old[key(r)] = r
	}
	var out []Change
	for _, r := range after.Records() {
		b, ok := old[key(r)]
		if !ok {
			continue // appeared: listed as such
		}
		ch := Change{Name: key(r)}
		ch.numbers(0, b)
		ch.numbers(1, r)
		ch.Score, ch.What = score(ch)
		if ch.Score >= 1 {
			out = append(out, ch)
		}
	}
	slices.SortStableFunc(out, func(a, b Change) int {
		if a.Score != b.Score {
			return -cmpFloat(a.Score, b.Score)
		}
		return strings.Compare(a.Name, b.Name)
	})
	if len(out) > top {
		out = out[:top]
	}
	return out
}

// numbers sets side i (0 before, 1 after) from a row of services or graph.
func (ch *Change) numbers(i int, row map[string]any) {
	ch.ErrorRate[i], ch.P99ms[i] = math.NaN(), math.NaN()
	if analyze.IntCell(row["requests"]) >= minSample {
		ch.ErrorRate[i] = toFloat(row["error_rate"])
		ch.P99ms[i] = toFloat(row["p99_ms"])
	}
	ch.RPS[i] = toFloat(row["rps"])
	ch.FailShare[i] = share(row["connection_failures"], row["connections"])
	ch.DropShare[i] = share(row["drops"], row["flows"])
}

func share(part, whole any) float64 {
	w := analyze.IntCell(whole)
	if w < minSample {
		return math.NaN()
	}
	return float64(analyze.IntCell(part)) / float64(w)
}

// score weighs the moves so that they compare: a percentage point of error
// rate, dropped flows or failed connections counts 1; a doubling of p99
// latency 10; a doubling or halving of requests/s 5, damped so that a few
// requests/s either way are not a change in traffic (1 -> 3 req/s counts
// 1.3, 20 -> 40 req/s 4).
func score(c Change) (float64, string) {
	type move struct {
		s    float64
		text string
	}
	var moves []move
	points := func(name string, v [2]float64) {
		if math.IsNaN(v[0]) || math.IsNaN(v[1]) {
			return
		}
		moves = append(moves, move{math.Abs(v[1]-v[0]) * 100, fmt.Sprintf("%s %s → %s", name, pct(v[0]), pct(v[1]))})
	}
	points("error rate", c.ErrorRate)
	points("failed connections", c.FailShare)
	points("dropped flows", c.DropShare)
	if b, a := c.P99ms[0], c.P99ms[1]; b > 0 && a > 0 {
		moves = append(moves, move{math.Abs(math.Log2(a/b)) * 10, fmt.Sprintf("p99 %s ms → %s ms", num(b), num(a))})
	}
	if b, a := c.RPS[0], c.RPS[1]; !math.IsNaN(b) && !math.IsNaN(a) && math.Max(a, b) >= 1 {
		moves = append(moves, move{math.Abs(math.Log2((a+5)/(b+5))) * 5, fmt.Sprintf("%s → %s req/s", num(b), num(a))})
	}
	slices.SortStableFunc(moves, func(x, y move) int { return -cmpFloat(x.s, y.s) })
	total := 0.0
	var words []string
	for i, m := range moves {
		total += m.s
		// The largest move is named even when only the sum of small
		// ones made the change count.
		if (m.s >= 1 || i == 0) && len(words) < 2 {
			words = append(words, m.text)
		}
	}
	return total, strings.Join(words, "; ")
}

// oneSided are the edges only after has (appeared), with after's numbers,
// and those only before has (vanished), with before's; by name.
func oneSided(before, after printer.Table, key func(map[string]any) string) (appeared, vanished []Change) {
	rows := func(t printer.Table) map[string]map[string]any {
		m := map[string]map[string]any{}
		for _, r := range t.Records() {
			m[key(r)] = r
		}
		return m
	}
	b, a := rows(before), rows(after)
	only := func(in, other map[string]map[string]any, side int) []Change {
		var out []Change
		for k, r := range in {
			if _, ok := other[k]; ok {
				continue
			}
			ch := Change{Name: k}
			ch.numbers(1-side, map[string]any{})
			ch.numbers(side, r)
			ch.What = alone(ch, side)
			out = append(out, ch)
		}
		slices.SortFunc(out, func(x, y Change) int { return strings.Compare(x.Name, y.Name) })
		return out
	}
	return only(a, b, 1), only(b, a, 0)
}

// alone says in words what an edge of one window carried there.
func alone(c Change, side int) string {
	var words []string
	if v := c.RPS[side]; !math.IsNaN(v) && v > 0 {
		words = append(words, num(v)+" req/s")
	}
	for _, m := range []struct {
		name string
		v    float64
	}{{"error rate", c.ErrorRate[side]}, {"failed connections", c.FailShare[side]}, {"dropped flows", c.DropShare[side]}} {
		if !math.IsNaN(m.v) && m.v > 0 {
			words = append(words, m.name+" "+pct(m.v))
		}
	}
	return strings.Join(words, "; ")
}

// newDropReasons are the drop reasons of after that before lacks, with
// how many flows each dropped and on which edges, most first.
func newDropReasons(before, after printer.Table) []Change {
	had := map[string]bool{}
	for _, r := range before.Records() {
		had[toString(r["reason"])] = true
	}
	type agg struct {
		drops int64
		edges []string
	}
	by := map[string]*agg{}
	for _, r := range after.Records() {
		reason := toString(r["reason"])
		if had[reason] {
			continue
		}
		a := by[reason]
		if a == nil {
			a = &agg{}
			by[reason] = a
		}
		a.drops += analyze.IntCell(r["drops"])
		a.edges = append(a.edges, qualified(r["source"], r["source_namespace"])+" -> "+qualified(r["destination"], r["destination_namespace"]))
	}
	return ranked(by, func(a *agg) (float64, string) {
		return float64(a.drops), fmt.Sprintf("%d dropped flows: %s", a.drops, listed(a.edges))
	})
}

// newDNSFailures are the failed answers of after, by query and rcode,
// that before lacks: a name that stopped resolving, or never did, from
// the clients that asked, most first. Search-path NXDOMAINs (ndots:5) are
// in both windows and so not new.
func newDNSFailures(before, after printer.Table) []Change {
	failed := func(t printer.Table, each func(key, client string, n int64)) {
		for _, r := range t.Records() {
			if analyze.IntCell(r["errors"]) == 0 {
				continue
			}
			for _, rc := range strings.Split(toString(r["rcodes"]), ",") {
				name, count, _ := strings.Cut(rc, "=")
				if name == "" || name == "NOERROR" {
					continue
				}
				n, _ := strconv.ParseInt(count, 10, 64)
				each(toString(r["query"])+" "+name, qualified(r["client"], r["client_namespace"]), n)
			}
		}
	}
	had := map[string]bool{}
	failed(before, func(key, _ string, _ int64) { had[key] = true })
	type agg struct {
		answers int64
		clients []string
	}
	by := map[string]*agg{}
	failed(after, func(key, client string, n int64) {
		if had[key] {
			return
		}
		a := by[key]
		if a == nil {
			a = &agg{}
			by[key] = a
		}
		a.answers += n
		if !slices.Contains(a.clients, client) {
			a.clients = append(a.clients, client)
		}
	})
	return ranked(by, func(a *agg) (float64, string) {
		return float64(a.answers), fmt.Sprintf("%d answers to %s", a.answers, listed(a.clients))
	})
}

// ranked turns what was counted per name into changes, the largest first.
func ranked[T any](by map[string]T, what func(T) (float64, string)) []Change {
	out := make([]Change, 0, len(by))
	for name, a := range by {
		ch := Change{Name: name}
		ch.Score, ch.What = what(a)
		out = append(out, ch)
	}
	slices.SortFunc(out, func(a, b Change) int {
		if a.Score != b.Score {
			return -cmpFloat(a.Score, b.Score)
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// listed names the first three of names and counts the rest.
func listed(names []string) string {
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) > 3 {
		return strings.Join(names[:3], ", ") + fmt.Sprintf(" and %d more", len(names)-3)
	}
	return strings.Join(names, ", ")
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// num prints a number as the analyses' tables do; a missing one as "-".
func num(f float64) string {
	if math.IsNaN(f) {
		return "-"
	}
	return printer.Cell(f)
}

// minSample is how many requests, connections or flows a share needs in
// both windows to count as a change: 1 of 2 connections failing is not a
// 50% failure rate anyone should chase.
const minSample = 20
