package report

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/flowtape/flowtape/printer"
)

type box struct {
	kind       string
	x, y, w, h float64
}

func (a box) overlaps(b box) bool {
	return a.x < b.x+b.w && b.x < a.x+a.w && a.y < b.y+b.h && b.y < a.y+a.h
}

var (
	nodeRect  = regexp.MustCompile(`<g class="node"><title>[^<]*</title><rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"`)
	labelRect = regexp.MustCompile(`<rect class="label-bg" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"`)
)

func boxes(t *testing.T, svg string, re *regexp.Regexp, kind string) []box {
	t.Helper()
	var out []box
	for _, m := range re.FindAllStringSubmatch(svg, -1) {
		var v [4]float64
		for i := range v {
			f, err := strconv.ParseFloat(m[i+1], 64)
			if err != nil {
				t.Fatal(err)
			}
			v[i] = f
		}
		out = append(out, box{kind, v[0], v[1], v[2], v[3]})
	}
	return out
}

// randomGraph is a call graph of n services with fan-out, a few cycles and
// long names and labels, as graph tables hold them.
func randomGraph(n int, seed uint64) printer.Table {
	rng := rand.New(rand.NewPCG(seed, 1))
	t := printer.Table{Columns: []string{"source", "source_namespace", "destination", "destination_namespace", "rps", "error_rate", "p99_ms", "health"}}
	name := func(i int) string { return fmt.Sprintf("service-%d-%s", i, "abcdefghij"[:rng.IntN(10)]) }
	names := make([]string, n)
	for i := range names {
		names[i] = name(i)
	}
	seen := map[[2]int]bool{}
	for i := 1; i < n; i++ {
		// each service is called by one or two earlier ones, and now and
		// then calls back
		for k := 0; k < 1+rng.IntN(2); k++ {
			src := rng.IntN(i)
			if !seen[[2]int{src, i}] {
				seen[[2]int{src, i}] = true
				t.Rows = append(t.Rows, []any{names[src], "ns", names[i], "ns", rng.Float64() * 100, rng.Float64() * 0.3, rng.Float64() * 2000, []string{"healthy", "degraded", "failure"}[rng.IntN(3)]})
			}
		}
		if rng.IntN(8) == 0 {
			dst := rng.IntN(i)
			t.Rows = append(t.Rows, []any{names[i], "ns", names[dst], "ns", 1.5, 0.0, 3.0, "healthy"})
		}
	}
	return t
}

// However many nodes and edges, nothing in the drawing overlaps: nodes,
// edge labels, and labels with nodes.
func TestGraphLayoutHasNoOverlaps(t *testing.T) {
	for _, n := range []int{2, 10, 25, 50} {
		for seed := uint64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprintf("%d nodes seed %d", n, seed), func(t *testing.T) {
				g := randomGraph(n, seed)
				svg := graphSVG(g)
				nodes := boxes(t, svg, nodeRect, "node")
				labels := boxes(t, svg, labelRect, "label")
				if len(nodes) != n || len(labels) != len(g.Rows) {
					t.Fatalf("drew %d nodes and %d labels, want %d and %d", len(nodes), len(labels), n, len(g.Rows))
				}
				all := append(nodes, labels...)
				for i := range all {
					for j := i + 1; j < len(all); j++ {
						if all[i].overlaps(all[j]) {
							t.Fatalf("%s %+v overlaps %s %+v", all[i].kind, all[i], all[j].kind, all[j])
						}
					}
				}
			})
		}
	}
}

// The layout's search for fewer crossings is bounded: a graph of hundreds
// of services, in one namespace or in five (every order of the lanes is
// tried), still draws in well under a second.
func BenchmarkGraphLayout(b *testing.B) {
	for _, n := range []int{50, 200, 400} {
		for _, lanes := range []int{1, 5} {
			g := inNamespaces(randomGraph(n, 1), lanes)
			b.Run(fmt.Sprintf("%d nodes in %d namespaces", n, lanes), func(b *testing.B) {
				for b.Loop() {
					graphSVG(g)
				}
			})
		}
	}
}

// inNamespaces spreads a graph's nodes over k namespaces, in turn.
func inNamespaces(t printer.Table, k int) printer.Table {
	ns := map[string]string{}
	of := func(name any) string {
		n := name.(string)
		if _, ok := ns[n]; !ok {
			ns[n] = fmt.Sprintf("ns%d", len(ns)%k)
		}
		return ns[n]
	}
	out := printer.Table{Columns: t.Columns}
	for _, r := range t.Rows {
		r = slices.Clone(r)
		r[1], r[3] = of(r[0]), of(r[2])
		out.Rows = append(out.Rows, r)
	}
	return out
}
