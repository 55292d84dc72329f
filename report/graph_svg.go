package report

import (
	"fmt"
	"html"
	"slices"
	"strings"

	"github.com/flowtape/flowtape/printer"
)

// The dependency graph is drawn in layers from left to right: callers
// before callees (longest path from the entry points, cycles broken where
// a depth-first walk meets them), nodes ordered within a layer to keep
// edges short (barycenters). Each edge's label sits in the gap after its
// caller's layer, where there are no nodes, and labels in a gap are pushed
// apart: nothing overlaps, whatever the graph.

const (
	nodeH     = 38.0
	nodeGapY  = 18.0
	labelH    = 16.0
	charW     = 6.6 // of the 11px label font, generously
	nodeCharW = 7.2 // of the 12px node font
	margin    = 16.0
)

type placedNode struct {
	printer.Node
	layer   int
	x, y, w float64
}

type placedLabel struct {
	edge     printer.Edge
	x, y, w  float64
	from, to *placedNode
	color    string
	width    int
}

// graphSVG draws the graph table as an SVG document fragment; every string
// in it is escaped.
func graphSVG(t printer.Table) string {
	nodes, edges := printer.GraphOf(t)
	if len(nodes) == 0 {
		return ""
	}
	idx := map[string]int{}
	for i, n := range nodes {
		idx[n.ID] = i
	}
	out := make([][]int, len(nodes))
	for _, e := range edges {
		s, d := idx[e.Src.ID], idx[e.Dst.ID]
		if s != d {
			out[s] = append(out[s], d)
		}
	}
	layer := layers(len(nodes), out)
	nl := 0
	for _, l := range layer {
		nl = max(nl, l+1)
	}
	byLayer := make([][]int, nl)
	for i, l := range layer {
		byLayer[l] = append(byLayer[l], i)
	}
	orderLayers(byLayer, out, layer)

	placed := make([]*placedNode, len(nodes))
	for l, ids := range byLayer {
		for _, i := range ids {
			placed[i] = &placedNode{Node: nodes[i], layer: l}
			placed[i].w = max(float64(max(len(nodes[i].Name), len(nodes[i].Namespace)))*nodeCharW+20, 90)
		}
	}
	// Labels go in the gap after their caller's layer.
	gapLabels := make([][]*placedLabel, nl)
	for _, e := range edges {
		from, to := placed[idx[e.Src.ID]], placed[idx[e.Dst.ID]]
		color, width := printer.EdgeStyle(e.Health)
		pl := &placedLabel{edge: e, from: from, to: to, color: color, width: width,
			w: float64(len(e.Label))*charW + 8}
		gapLabels[from.layer] = append(gapLabels[from.layer], pl)
	}
	// Column widths and x positions.
	x := margin
	gapX := make([]float64, nl)
	for l := 0; l < nl; l++ {
		lw := 0.0
		for _, i := range byLayer[l] {
			lw = max(lw, placed[i].w)
		}
		for _, i := range byLayer[l] {
			placed[i].x = x + (lw-placed[i].w)/2
		}
		x += lw
		gw := 60.0
		for _, pl := range gapLabels[l] {
			gw = max(gw, pl.w+40)
		}
		gapX[l] = x
		x += gw
	}
	width := x - 60 + margin
	if len(gapLabels[nl-1]) > 0 {
		width = x + margin
	}
	// Node y positions: each layer stacked, centred on the tallest.
	height := 0.0
	for l := range byLayer {
		height = max(height, float64(len(byLayer[l]))*(nodeH+nodeGapY))
	}
	for l := range byLayer {
		h := float64(len(byLayer[l])) * (nodeH + nodeGapY)
		top := margin + (height-h)/2
		for p, i := range byLayer[l] {
			placed[i].y = top + float64(p)*(nodeH+nodeGapY)
		}
	}
	// Labels: wanted halfway between the ends, then pushed apart.
	for l, labels := range gapLabels {
		for _, pl := range labels {
			pl.x = gapX[l] + 20
			pl.y = (pl.from.y + pl.to.y + nodeH) / 2
		}
		slices.SortStableFunc(labels, func(a, b *placedLabel) int { return cmpFloat(a.y, b.y) })
		for i := 1; i < len(labels); i++ {
			if lowest := labels[i-1].y + labelH + 2; labels[i].y < lowest {
				labels[i].y = lowest
			}
		}
		for _, pl := range labels {
			height = max(height, pl.y+labelH)
		}
	}
	height += margin

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="graph" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="dependency graph">`,
		width, height, width, height)
	b.WriteString(`<defs>`)
	for _, c := range []string{"healthy", "degraded", "failure", "unknown"} {
		color, _ := printer.EdgeStyle(c)
		fmt.Fprintf(&b, `<marker id="arrow-%s" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="%s"/></marker>`, c, color)
	}
	b.WriteString(`</defs>`)
	// Healthy edges first, so failing ones are drawn over them.
	var all []*placedLabel
	for _, labels := range gapLabels {
		all = append(all, labels...)
	}
	slices.SortStableFunc(all, func(a, b *placedLabel) int { return a.width - b.width })
	for _, pl := range all {
		health := pl.edge.Health
		if _, ok := map[string]bool{"healthy": true, "degraded": true, "failure": true}[health]; !ok {
			health = "unknown"
		}
		x0, y0 := pl.from.x+pl.from.w, pl.from.y+nodeH/2
		lx, ly := pl.x, pl.y+labelH/2
		x1, y1 := pl.to.x, pl.to.y+nodeH/2
		if pl.to.layer <= pl.from.layer {
			// Back (or same-layer) edge: into the callee from its right.
			x1 = pl.to.x + pl.to.w
		}
		fmt.Fprintf(&b, `<path class="edge %s" d="M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f L%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="none" stroke="%s" stroke-width="%d" marker-end="url(#arrow-%s)"><title>%s</title></path>`,
			health, x0, y0, (x0+lx)/2, y0, (x0+lx)/2, ly, lx, ly, lx+pl.w, ly, lx+pl.w+30, ly, x1-30, y1, x1, y1,
			pl.color, pl.width, health, esc(pl.edge.Src.ID+" → "+pl.edge.Dst.ID+": "+pl.edge.Label))
	}
	for _, pl := range all {
		fmt.Fprintf(&b, `<rect class="label-bg" x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="3"/><text class="edge-label" x="%.1f" y="%.1f" fill="%s">%s</text>`,
			pl.x, pl.y, pl.w, labelH, pl.x+4, pl.y+12, pl.color, esc(pl.edge.Label))
	}
	for _, n := range placed {
		fmt.Fprintf(&b, `<g class="node"><title>%s</title><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="6"/><text x="%.1f" y="%.1f" class="name">%s</text>`,
			esc(n.ID), n.x, n.y, n.w, nodeH, n.x+n.w/2, n.y+16, esc(n.Name))
		if n.Namespace != "" {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="ns">%s</text>`, n.x+n.w/2, n.y+30, esc(n.Namespace))
		}
		b.WriteString(`</g>`)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// layers assigns each node the longest path to it from a node nothing
// calls, ignoring the edges that close cycles.
func layers(n int, out [][]int) []int {
	const (
		unseen = iota
		active
		done
	)
	state := make([]int, n)
	var order []int // reverse postorder: a topological order of the DAG
	back := map[[2]int]bool{}
	var visit func(int)
	visit = func(u int) {
		state[u] = active
		for _, v := range out[u] {
			switch state[v] {
			case unseen:
				visit(v)
			case active:
				back[[2]int{u, v}] = true
			}
		}
		state[u] = done
		order = append(order, u)
	}
	// Start from the nodes nothing calls, then whatever is left (cycles).
	in := make([]int, n)
	for u := range out {
		for _, v := range out[u] {
			in[v]++
		}
	}
	for u := 0; u < n; u++ {
		if in[u] == 0 && state[u] == unseen {
			visit(u)
		}
	}
	for u := 0; u < n; u++ {
		if state[u] == unseen {
			visit(u)
		}
	}
	layer := make([]int, n)
	for i := len(order) - 1; i >= 0; i-- {
		u := order[i]
		for _, v := range out[u] {
			if !back[[2]int{u, v}] && layer[v] < layer[u]+1 {
				layer[v] = layer[u] + 1
			}
		}
	}
	return layer
}

// orderLayers sorts each layer by the mean position of its neighbours in
// the layers before it, then after it, a few times over.
func orderLayers(byLayer [][]int, out [][]int, layer []int) {
	n := len(layer)
	in := make([][]int, n)
	for u := range out {
		for _, v := range out[u] {
			in[v] = append(in[v], u)
		}
	}
	pos := make([]float64, n)
	setPos := func() {
		for _, ids := range byLayer {
			for p, i := range ids {
				pos[i] = float64(p)
			}
		}
	}
	setPos()
	sweep := func(l int, nbrs [][]int, want func(int) bool) {
		bary := map[int]float64{}
		for _, i := range byLayer[l] {
			sum, k := 0.0, 0
			for _, j := range nbrs[i] {
				if want(layer[j]) {
					sum += pos[j]
					k++
				}
			}
			if k > 0 {
				bary[i] = sum / float64(k)
			} else {
				bary[i] = pos[i]
			}
		}
		slices.SortStableFunc(byLayer[l], func(a, b int) int { return cmpFloat(bary[a], bary[b]) })
		setPos()
	}
	for it := 0; it < 4; it++ {
		for l := 1; l < len(byLayer); l++ {
			sweep(l, in, func(j int) bool { return j == l-1 })
		}
		for l := len(byLayer) - 2; l >= 0; l-- {
			sweep(l, out, func(j int) bool { return j == l+1 })
		}
	}
}

// esc escapes text for SVG and HTML, attributes included.
func esc(s string) string { return html.EscapeString(s) }
