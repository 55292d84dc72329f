package report_test

import (
	"context"
	"html"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/printer"
	"github.com/flowtape/flowtape/report"
)

// clusterGraph is a generated graph table of a cluster of n services in
// three namespaces, as teams build them: a gateway and frontends call
// mid-tier services of their own namespace, which call data stores; every
// namespace calls the platform's auth and config, checkout calls into
// payments; a few calls go back up (callbacks), and some leave the cluster.
func clusterGraph(n int, seed uint64) printer.Table {
	rng := rand.New(rand.NewPCG(seed, 7))
	t := printer.Table{Columns: []string{"source", "source_namespace", "destination", "destination_namespace", "rps", "error_rate", "p99_ms", "health"}}
	type svc struct{ name, ns string }
	tiers := map[string][][]svc{}
	nss := []string{"storefront", "payments", "platform"}
	words := []string{"catalog", "search", "cart", "checkout", "orders", "inventory", "pricing", "reviews", "profile", "wishlist",
		"ledger", "fraud", "refunds", "billing", "invoices", "tax", "payouts", "risk", "auth", "config", "audit", "notify",
		"flags", "quota", "identity", "sessions", "media", "thumbs", "events", "export"}
	i := 0
	for k := 0; k < n; k++ {
		ns := nss[k%3]
		tier := 0
		switch x := rng.IntN(10); {
		case x < 2:
			tier = 0
		case x < 7:
			tier = 1
		default:
			tier = 2
		}
		if len(tiers[ns]) == 0 {
			tiers[ns] = make([][]svc, 3)
		}
		name := words[i%len(words)]
		if i >= len(words) {
			name += "-" + strconv.Itoa(i/len(words)+1)
		}
		i++
		if tier == 2 {
			name += []string{"-db", "-cache", "-store"}[rng.IntN(3)]
		} else if tier == 0 {
			name += "-api"
		}
		tiers[ns][tier] = append(tiers[ns][tier], svc{name, ns})
	}
	seen := map[[2]svc]bool{}
	add := func(a, b svc, health string) {
		if a == b || seen[[2]svc{a, b}] {
			return
		}
		seen[[2]svc{a, b}] = true
		t.Rows = append(t.Rows, []any{a.name, a.ns, b.name, b.ns, 1 + rng.Float64()*200, rng.Float64() * 0.01, 2 + rng.Float64()*400, health})
	}
	pick := func(s []svc) svc { return s[rng.IntN(len(s))] }
	gw := svc{"ingress-gateway", "platform"}
	for _, ns := range nss {
		for tier, list := range tiers[ns] {
			for _, s := range list {
				switch tier {
				case 0:
					add(gw, s, "healthy")
				default:
					if up := tiers[ns][tier-1]; len(up) > 0 {
						add(pick(up), s, "healthy")
						if rng.IntN(2) == 0 {
							add(pick(up), s, "healthy")
						}
					}
				}
			}
		}
	}
	for _, ns := range nss[:2] {
		for _, s := range tiers[ns][1] {
			if p := tiers["platform"][1]; len(p) > 0 && rng.IntN(3) == 0 {
				add(s, pick(p), "healthy")
			}
			if rng.IntN(6) == 0 {
				add(s, pick(tiers[ns][0]), "degraded") // a callback
			}
		}
	}
	for _, s := range tiers["storefront"][1] {
		if rng.IntN(3) == 0 && len(tiers["payments"][0]) > 0 {
			add(s, pick(tiers["payments"][0]), []string{"healthy", "failure"}[rng.IntN(2)])
		}
	}
	for _, s := range tiers["payments"][1] {
		if rng.IntN(2) == 0 {
			add(s, svc{"api.stripe.com", ""}, "healthy")
		}
	}
	return t
}

var edgePath = regexp.MustCompile(`<path class="edge [a-z]+" d="M([\d.]+),([\d.]+) C[\d.]+,[\d.]+ [\d.]+,[\d.]+ ([\d.]+),([\d.]+) L([\d.]+),([\d.]+) C[\d.]+,[\d.]+ [\d.]+,[\d.]+ ([\d.]+),([\d.]+)"`)

type pt struct{ x, y float64 }

// drawnCrossings counts where the drawn edges cross: each edge as the
// polyline through its ends and its label.
func drawnCrossings(t *testing.T, svg string) int {
	t.Helper()
	var lines [][]pt
	for _, m := range edgePath.FindAllStringSubmatch(svg, -1) {
		var v [8]float64
		for i := range v {
			f, err := strconv.ParseFloat(m[i+1], 64)
			if err != nil {
				t.Fatal(err)
			}
			v[i] = f
		}
		lines = append(lines, []pt{{v[0], v[1]}, {v[2], v[3]}, {v[4], v[5]}, {v[6], v[7]}})
	}
	cross := func(a, b, c pt) float64 { return (b.x-a.x)*(c.y-a.y) - (b.y-a.y)*(c.x-a.x) }
	n := 0
	for i := range lines {
		for j := i + 1; j < len(lines); j++ {
			for a := 0; a+1 < len(lines[i]); a++ {
				for b := 0; b+1 < len(lines[j]); b++ {
					p, q, r, s := lines[i][a], lines[i][a+1], lines[j][b], lines[j][b+1]
					if cross(p, q, r)*cross(p, q, s) < 0 && cross(r, s, p)*cross(r, s, q) < 0 {
						n++
					}
				}
			}
		}
	}
	return n
}

// boutiqueGraph is Online Boutique's graph: the graph analysis of the
// simulator's incident.
func boutiqueGraph(t *testing.T) printer.Table {
	t.Helper()
	dir, _ := simRecording(t)
	e, err := analyze.Open(context.Background(), []string{dir}, analyze.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	g, err := e.Run(context.Background(), "graph", analyze.Params{})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

var (
	labelBox = regexp.MustCompile(`<rect class="label-bg" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"`)
	laneRect = regexp.MustCompile(`<g class="lane"><rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)" rx="6"/><text [^>]*>([^<]*)</text>`)
	nodeInfo = regexp.MustCompile(`<g class="node"><title>([^<]*)</title><rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)"`)
)

// The dependency graph of a generated 50-service cluster in three
// namespaces, and of Online Boutique, as the report draws them: each
// namespace's nodes inside its own lane, lanes apart, every edge drawn
// through its label, and no more crossings than the layout reached when
// this test was written (the counts before lanes and swaps, in the note
// of issue 19: the 50 services 230 -> 93, Online Boutique 57 -> 34). A change
// that draws more crossings fails here; one that draws fewer lowers the
// bound.
func TestGraphLayoutQuality(t *testing.T) {
	for _, tc := range []struct {
		name  string
		graph func(t *testing.T) printer.Table
		lanes int
		max   int
	}{
		{"cluster50", func(*testing.T) printer.Table { return clusterGraph(50, 1) }, 4, 93},
		{"boutique", boutiqueGraph, 3, 34},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.graph(t)
			svg := report.GraphSVG(g)
			n := drawnCrossings(t, svg)
			t.Logf("%s: %d nodes, %d edges, %d crossings", tc.name, len(nodeInfo.FindAllString(svg, -1)), len(g.Rows), n)
			if n > tc.max {
				t.Errorf("%d edge crossings, more than the %d this layout reached", n, tc.max)
			}
			lanes := map[string][2]float64{}
			for _, m := range laneRect.FindAllStringSubmatch(svg, -1) {
				y, _ := strconv.ParseFloat(m[1], 64)
				h, _ := strconv.ParseFloat(m[2], 64)
				ns := m[3]
				if ns == "(no namespace)" {
					ns = ""
				}
				for other, r := range lanes {
					if y < r[0]+r[1] && r[0] < y+h {
						t.Errorf("lanes %q and %q overlap", ns, other)
					}
				}
				lanes[ns] = [2]float64{y, h}
			}
			if len(lanes) != tc.lanes {
				t.Errorf("%d lanes, want %d (a namespace each): %v", len(lanes), tc.lanes, lanes)
			}
			nodes, _ := printer.GraphOf(g)
			ns := map[string]string{}
			for _, nd := range nodes {
				ns[nd.ID] = nd.Namespace
			}
			for _, m := range nodeInfo.FindAllStringSubmatch(svg, -1) {
				id := html.UnescapeString(m[1])
				y, _ := strconv.ParseFloat(m[2], 64)
				h, _ := strconv.ParseFloat(m[3], 64)
				r, ok := lanes[ns[id]]
				if !ok || y < r[0] || y+h > r[0]+r[1] {
					t.Errorf("node %s (namespace %q) at y %.0f-%.0f is outside its lane %v", id, ns[id], y, y+h, r)
				}
			}
			// Each label sits on its edge: the edge's straight stretch
			// runs through the label's box, from its left to its right.
			paths := edgePath.FindAllStringSubmatch(svg, -1)
			labels := labelBox.FindAllStringSubmatch(svg, -1)
			if len(paths) != len(labels) || len(paths) != len(g.Rows) {
				t.Fatalf("%d edges, %d labels, %d rows", len(paths), len(labels), len(g.Rows))
			}
			for i, p := range paths {
				ax, _ := strconv.ParseFloat(p[3], 64)
				ly, _ := strconv.ParseFloat(p[4], 64)
				bx, _ := strconv.ParseFloat(p[5], 64)
				lx, rx := min(ax, bx), max(ax, bx) // a back edge runs right to left
				x, _ := strconv.ParseFloat(labels[i][1], 64)
				y, _ := strconv.ParseFloat(labels[i][2], 64)
				w, _ := strconv.ParseFloat(labels[i][3], 64)
				h, _ := strconv.ParseFloat(labels[i][4], 64)
				if math.Abs(lx-x) > 0.15 || math.Abs(rx-(x+w)) > 0.15 || ly < y || ly > y+h {
					t.Errorf("edge %d runs %.1f-%.1f at y %.1f, its label is at %.1f-%.1f, y %.1f-%.1f", i, lx, rx, ly, x, x+w, y, y+h)
				}
			}
		})
	}
}

// The two graphs in headless Chromium, each alone on a page with the
// report's stylesheet: the screenshots land in the test's artifact
// directory (go test -artifacts; make test keeps them in out/test), to
// look at.
func TestGraphScreenshots(t *testing.T) {
	tmpl, err := os.ReadFile(filepath.Join("templates", "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	style := regexp.MustCompile(`(?s)<style>.*?</style>`).Find(tmpl)
	if style == nil {
		t.Fatal("templates/report.html has no <style>")
	}
	for name, g := range map[string]printer.Table{"cluster50": clusterGraph(50, 1), "boutique": boutiqueGraph(t)} {
		path := filepath.Join(t.TempDir(), name+".html")
		page := "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" + name + "</title>" + string(style) +
			"</head><body style=\"max-width: none\">" + report.GraphSVG(g) + "</body></html>"
		if err := os.WriteFile(path, []byte(page), 0o600); err != nil {
			t.Fatal(err)
		}
		res := openPage(t, path)
		if len(res.Problems) > 0 {
			t.Errorf("%s: the page logged problems:\n%v", name, res.Problems)
		}
		if s := res.Sizes["graph"]; s[0] <= 0 || s[1] <= 0 {
			t.Errorf("%s: the graph is %vx%v in the page", name, s[0], s[1])
		}
		shot := filepath.Join(t.ArtifactDir(), "graph-"+name+".png")
		if err := os.WriteFile(shot, res.PNG, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", shot)
	}
}
