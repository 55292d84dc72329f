package report

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/printer"
)

// Changes compares the incident with its baseline: the services and edges
// whose numbers moved most, edges that appeared or vanished, and drop
// reasons the baseline did not have.
type Changes struct {
	Baseline, Incident Window
	// Given says the baseline was given (--baseline), rather than taken
	// from the data as the part of the window before the incident.
	Given          bool
	Services       []Change
	Edges          []Change
	Appeared       []string
	Vanished       []string
	NewDropReasons []string
}

// Change is how one service or edge moved between the windows.
type Change struct {
	Name  string
	Score float64 // how much it moved, to rank by (see score)
	// The numbers before and after; NaN where there were none.
	ErrorRate, P99ms, RPS, FailShare, DropShare [2]float64
	What                                        string // the largest moves, in words
}

// compare runs services, graph and drops over both windows.
func compare(ctx context.Context, eng analyze.Runner, before, after Window, given bool, top int) (*Changes, error) {
	c := &Changes{Baseline: before, Incident: after, Given: given}
	var tables [2][3]printer.Table
	for i, w := range []Window{before, after} {
		p := analyze.Params{Since: w.Since, Until: w.Until}
		for j, name := range []string{"services", "graph", "drops"} {
			t, err := eng.Run(ctx, name, p)
			if err != nil {
				return nil, fmt.Errorf("baseline comparison: %w", err)
			}
			tables[i][j] = t
		}
	}
	svcKey := func(r map[string]any) string { return qualified(r["service"], r["namespace"]) }
	edgeKey := func(r map[string]any) string {
		return qualified(r["source"], r["source_namespace"]) + " -> " + qualified(r["destination"], r["destination_namespace"])
	}
	c.Services = changes(tables[0][0], tables[1][0], svcKey, top)
	c.Edges = changes(tables[0][1], tables[1][1], edgeKey, top)
	c.Appeared, c.Vanished = diffKeys(tables[0][1], tables[1][1], edgeKey)
	reason := func(r map[string]any) string { return toString(r["reason"]) }
	c.NewDropReasons, _ = diffKeys(tables[0][2], tables[1][2], reason)
	return c, nil
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
		for i, row := range []map[string]any{b, r} {
			ch.ErrorRate[i] = math.NaN()
			if analyze.IntCell(row["requests"]) >= minSample {
				ch.ErrorRate[i] = toFloat(row["error_rate"])
			}
			ch.P99ms[i] = math.NaN()
			if analyze.IntCell(row["requests"]) >= minSample {
				ch.P99ms[i] = toFloat(row["p99_ms"])
			}
			ch.RPS[i] = toFloat(row["rps"])
			ch.FailShare[i] = share(row["connection_failures"], row["connections"])
			ch.DropShare[i] = share(row["drops"], row["flows"])
		}
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
	for _, m := range moves {
		total += m.s
		if m.s >= 1 && len(words) < 2 {
			words = append(words, m.text)
		}
	}
	return total, strings.Join(words, "; ")
}

// diffKeys are the keys only after has, and those only before has.
func diffKeys(before, after printer.Table, key func(map[string]any) string) (appeared, vanished []string) {
	in := func(t printer.Table) map[string]bool {
		m := map[string]bool{}
		for _, r := range t.Records() {
			m[key(r)] = true
		}
		return m
	}
	b, a := in(before), in(after)
	for k := range a {
		if !b[k] {
			appeared = append(appeared, k)
		}
	}
	for k := range b {
		if !a[k] {
			vanished = append(vanished, k)
		}
	}
	slices.Sort(appeared)
	slices.Sort(vanished)
	return appeared, vanished
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
