package report

import (
	"cmp"
	"slices"

	"github.com/flowtape/flowtape/printer"
)

// The dependency graph's layout. Layers run left to right: callers before
// callees (the longest path from the entry points, cycles broken where a
// depth-first walk meets them). Namespaces are horizontal lanes across the
// layers, so that a team finds its services together and a call between
// namespaces is an edge between lanes. Each edge's label sits in the gap
// after its caller's layer, where there are no nodes, on the edge itself
// (the edge is drawn through it), and labels in a gap are pushed apart:
// nothing overlaps, whatever the graph.
//
// Crossings: within a lane, each layer's nodes are ordered by the mean
// position of their neighbours (barycenter sweeps), the lanes are ordered
// (every order, up to five lanes) and then neighbours in a lane are
// swapped where that lowers the crossings counted on the drawing itself,
// each edge as the polyline it is drawn along (caller, label, callee).
// The swaps stop when none helps or after a budget of work, so that a
// graph of hundreds of services still lays out in well under a second.
// TestGraphLayoutQuality holds the counts of a generated 50-service,
// 3-namespace cluster and of Online Boutique; the note of issue 19 has the
// counts before lanes and swaps.

const (
	nodeH      = 38.0
	nodeGapY   = 18.0
	labelH     = 16.0
	charW      = 6.6 // of the 11px label font, generously
	nodeCharW  = 7.2 // of the 12px node font
	margin     = 16.0
	laneHeader = 22.0 // room for the lane's namespace, above its nodes
	lanePad    = 8.0
	laneGap    = 10.0
	// crossingBudget bounds the segment pairs the swaps may test.
	crossingBudget = 60_000_000
)

type placedNode struct {
	printer.Node
	layer, lane int
	x, y, w     float64
}

type placedLabel struct {
	edge     printer.Edge
	x, y, w  float64
	from, to *placedNode
	color    string
	width    int
}

// lane is a namespace's band across the layers.
type lane struct {
	namespace string
	y, h      float64
}

type graphLayout struct {
	nodes         []*placedNode // in the order of the graph's nodes
	labels        []*placedLabel
	lanes         []*lane
	width, height float64
}

// layoutGraph places the graph's nodes, lanes and edge labels.
func layoutGraph(nodes []printer.Node, edges []printer.Edge) *graphLayout {
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
	// Lanes in the order their namespaces first appear, layer by layer.
	var namespaces []string
	laneOf := make([]int, len(nodes))
	first := make([]int, len(nodes))
	for i := range first {
		first[i] = i
	}
	slices.SortStableFunc(first, func(a, b int) int { return cmp.Compare(layer[a], layer[b]) })
	for _, i := range first {
		if !slices.Contains(namespaces, nodes[i].Namespace) {
			namespaces = append(namespaces, nodes[i].Namespace)
		}
	}
	for i, n := range nodes {
		laneOf[i] = slices.Index(namespaces, n.Namespace)
	}
	// cells[l][k]: the nodes of layer l in lane k, top to bottom.
	cells := make([][][]int, nl)
	for l := range cells {
		cells[l] = make([][]int, len(namespaces))
	}
	for _, i := range first {
		cells[layer[i]][laneOf[i]] = append(cells[layer[i]][laneOf[i]], i)
	}
	g := &layoutState{nodes: nodes, edges: edges, idx: idx, out: out, layer: layer, laneOf: laneOf, cells: cells,
		labelAt: 0.5, tested: new(int), budget: crossingBudget / 4}
	g.laneOrder = make([]int, len(namespaces))
	for k := range g.laneOrder {
		g.laneOrder[k] = k
	}
	g.barycenters()
	if len(namespaces) > 1 && len(namespaces) <= 5 {
		g.bestLaneOrder()
	}
	// Labels a third of the way from their callers, halfway or two
	// thirds: whichever crosses least once the swaps are done (nearer the
	// caller is the most often best, and reads as the caller's list of
	// calls). Each try has a quarter of the budget, as the lane orders had.
	var best *layoutState
	bestN := 0
	for _, at := range []float64{1.0 / 3, 0.5, 2.0 / 3} {
		try := g.clone()
		try.labelAt, try.tested = at, new(int)
		n := try.swaps()
		if best == nil || n < bestN {
			best, bestN = try, n
		}
	}
	return best.place()
}

// clone is a copy of the state to search from.
func (g *layoutState) clone() *layoutState {
	c := *g
	c.laneOrder = slices.Clone(g.laneOrder)
	c.cells = make([][][]int, len(g.cells))
	for l, byLane := range g.cells {
		c.cells[l] = make([][]int, len(byLane))
		for k, cell := range byLane {
			c.cells[l][k] = slices.Clone(cell)
		}
	}
	return &c
}

// layoutState is a layout being searched for: the order of the lanes and
// of the nodes in each cell (layer and lane).
type layoutState struct {
	nodes     []printer.Node
	edges     []printer.Edge
	idx       map[string]int
	out       [][]int
	layer     []int
	laneOf    []int
	cells     [][][]int
	laneOrder []int // laneOrder[p]: the lane drawn p-th from the top
	// labelAt is where between its caller (0) and its callee (1) a label
	// would sit if nothing pushed it.
	labelAt float64
	// tested counts the segment pairs tested for crossings so far; the
	// search stops at budget.
	tested *int
	budget int
}

// rank is each node's position from the top in its layer, lanes in order.
func (g *layoutState) rank() []float64 {
	pos := make([]float64, len(g.nodes))
	for _, byLane := range g.cells {
		p := 0
		for _, k := range g.laneOrder {
			for _, i := range byLane[k] {
				pos[i] = float64(p)
				p++
			}
		}
	}
	return pos
}

// barycenters sorts each cell by the mean position of its neighbours in
// the layer before, then after, a few times over.
func (g *layoutState) barycenters() {
	n := len(g.nodes)
	in := make([][]int, n)
	for u := range g.out {
		for _, v := range g.out[u] {
			in[v] = append(in[v], u)
		}
	}
	sweep := func(l int, nbrs [][]int, near int) {
		pos := g.rank()
		bary := map[int]float64{}
		for _, cell := range g.cells[l] {
			for _, i := range cell {
				sum, k := 0.0, 0
				for _, j := range nbrs[i] {
					if g.layer[j] == near {
						sum += pos[j]
						k++
					}
				}
				bary[i] = pos[i]
				if k > 0 {
					bary[i] = sum / float64(k)
				}
			}
			slices.SortStableFunc(cell, func(a, b int) int { return cmp.Compare(bary[a], bary[b]) })
		}
	}
	for it := 0; it < 4; it++ {
		for l := 1; l < len(g.cells); l++ {
			sweep(l, in, l-1)
		}
		for l := len(g.cells) - 2; l >= 0; l-- {
			sweep(l, g.out, l+1)
		}
	}
}

// bestLaneOrder tries every order of the lanes and keeps the one whose
// drawing crosses least (the first such, from the order of appearance),
// as many as the budget allows.
func (g *layoutState) bestLaneOrder() {
	best, bestN := slices.Clone(g.laneOrder), g.crossings()
	var try func(k int)
	try = func(k int) {
		if *g.tested > g.budget {
			return
		}
		if k == len(g.laneOrder) {
			if n := g.crossings(); n < bestN {
				best, bestN = slices.Clone(g.laneOrder), n
			}
			return
		}
		for j := k; j < len(g.laneOrder); j++ {
			g.laneOrder[k], g.laneOrder[j] = g.laneOrder[j], g.laneOrder[k]
			try(k + 1)
			g.laneOrder[k], g.laneOrder[j] = g.laneOrder[j], g.laneOrder[k]
		}
	}
	try(0)
	g.laneOrder = best
}

// swaps swaps neighbours in a cell while that lowers the crossings, until
// no swap helps or the budget is spent; it returns the crossings left.
func (g *layoutState) swaps() int {
	cur := g.crossings()
	for improved := true; improved && cur > 0; {
		improved = false
		for _, byLane := range g.cells {
			for _, cell := range byLane {
				for a := 0; a+1 < len(cell); a++ {
					if *g.tested > g.budget {
						return cur
					}
					cell[a], cell[a+1] = cell[a+1], cell[a]
					if n := g.crossings(); n < cur {
						cur, improved = n, true
					} else {
						cell[a], cell[a+1] = cell[a+1], cell[a]
					}
				}
			}
		}
	}
	return cur
}

// crossings counts where the edges of the drawing cross.
func (g *layoutState) crossings() int {
	l := g.place()
	*g.tested += len(l.labels) * len(l.labels) * 9 / 2
	return l.crossings()
}

// place draws the current order: columns of layers with the label gaps
// between them, lanes stacked, labels halfway between their ends and
// pushed apart.
func (g *layoutState) place() *graphLayout {
	nl := len(g.cells)
	gl := &graphLayout{nodes: make([]*placedNode, len(g.nodes))}
	for i, n := range g.nodes {
		gl.nodes[i] = &placedNode{Node: n, layer: g.layer[i], lane: g.laneOf[i],
			w: max(float64(max(len(n.Name), len(n.Namespace)))*nodeCharW+20, 90)}
	}
	gapLabels := make([][]*placedLabel, nl)
	for _, e := range g.edges {
		from, to := gl.nodes[g.idx[e.Src.ID]], gl.nodes[g.idx[e.Dst.ID]]
		color, width := printer.EdgeStyle(e.Health)
		pl := &placedLabel{edge: e, from: from, to: to, color: color, width: width, w: float64(len(e.Label))*charW + 8}
		gap := from.layer
		if pl.back() {
			gap--
		}
		gapLabels[gap] = append(gapLabels[gap], pl)
		gl.labels = append(gl.labels, pl)
	}
	// Columns: each layer as wide as its widest node, then its label gap.
	x := margin
	gapX := make([]float64, nl)
	for l := 0; l < nl; l++ {
		lw := 0.0
		for _, cell := range g.cells[l] {
			for _, i := range cell {
				lw = max(lw, gl.nodes[i].w)
			}
		}
		for _, cell := range g.cells[l] {
			for _, i := range cell {
				gl.nodes[i].x = x + (lw-gl.nodes[i].w)/2
			}
		}
		x += lw
		gw := 60.0
		for _, pl := range gapLabels[l] {
			gw = max(gw, pl.w+40)
		}
		gapX[l] = x
		x += gw
	}
	gl.width = x - 60 + margin
	if len(gapLabels[nl-1]) > 0 {
		gl.width = x + margin
	}
	// Lanes: as tall as their fullest layer; a layer's nodes centred in it.
	y := margin
	for _, k := range g.laneOrder {
		rows := 0
		for l := range g.cells {
			rows = max(rows, len(g.cells[l][k]))
		}
		ln := &lane{namespace: g.nodes[firstOf(g.cells, k)].Namespace, y: y,
			h: laneHeader + float64(rows)*(nodeH+nodeGapY) - nodeGapY + lanePad}
		for l := range g.cells {
			cell := g.cells[l][k]
			top := y + laneHeader + float64(rows-len(cell))*(nodeH+nodeGapY)/2
			for p, i := range cell {
				gl.nodes[i].y = top + float64(p)*(nodeH+nodeGapY)
			}
		}
		gl.lanes = append(gl.lanes, ln)
		y += ln.h + laneGap
	}
	gl.height = y - laneGap
	// Labels: wanted halfway between the ends, then pushed apart.
	for l, labels := range gapLabels {
		for _, pl := range labels {
			pl.x = gapX[l] + 20
			fy, ty := pl.from.y+nodeH/2, pl.to.y+nodeH/2
			pl.y = fy + (ty-fy)*g.labelAt - labelH/2
		}
		slices.SortStableFunc(labels, func(a, b *placedLabel) int { return cmp.Compare(a.y, b.y) })
		for i := 1; i < len(labels); i++ {
			if lowest := labels[i-1].y + labelH + 2; labels[i].y < lowest {
				labels[i].y = lowest
			}
		}
		for _, pl := range labels {
			gl.height = max(gl.height, pl.y+labelH)
		}
	}
	gl.height += margin
	return gl
}

// firstOf is a node of lane k (every lane has one).
func firstOf(cells [][][]int, k int) int {
	for _, byLane := range cells {
		if len(byLane[k]) > 0 {
			return byLane[k][0]
		}
	}
	return 0
}

// back is whether the edge goes back to an earlier layer (it closes a
// cycle): it leaves its caller to the left, its label sits in the gap
// before the caller's layer, and it enters the callee from its right, so
// that it does not cross the graph twice.
func (pl *placedLabel) back() bool { return pl.to.layer < pl.from.layer }

// ends are where an edge leaves its caller and enters its callee: a back
// (or same-layer) edge enters from the callee's right.
func (pl *placedLabel) ends() (x0, y0, x1, y1 float64) {
	x0, y0 = pl.from.x+pl.from.w, pl.from.y+nodeH/2
	x1, y1 = pl.to.x, pl.to.y+nodeH/2
	if pl.to.layer <= pl.from.layer {
		x1 = pl.to.x + pl.to.w
	}
	if pl.back() {
		x0 = pl.from.x
	}
	return x0, y0, x1, y1
}

// through are the ends of the label the edge runs along, in the order it
// runs: right to left on a back edge.
func (pl *placedLabel) through() (ax, bx, y float64) {
	ax, bx, y = pl.x, pl.x+pl.w, pl.y+labelH/2
	if pl.back() {
		ax, bx = bx, ax
	}
	return ax, bx, y
}

// polyline is the edge as straight segments: caller, label, callee.
func (pl *placedLabel) polyline() [4][2]float64 {
	x0, y0, x1, y1 := pl.ends()
	ax, bx, ly := pl.through()
	return [4][2]float64{{x0, y0}, {ax, ly}, {bx, ly}, {x1, y1}}
}

// crossings counts the points where two edges' polylines cross (touching
// at a shared end is not a crossing).
func (gl *graphLayout) crossings() int {
	lines := make([][4][2]float64, len(gl.labels))
	for i, pl := range gl.labels {
		lines[i] = pl.polyline()
	}
	side := func(a, b, c [2]float64) float64 {
		return (b[0]-a[0])*(c[1]-a[1]) - (b[1]-a[1])*(c[0]-a[0])
	}
	n := 0
	for i := range lines {
		for j := i + 1; j < len(lines); j++ {
			for a := 0; a < 3; a++ {
				for b := 0; b < 3; b++ {
					p, q, r, s := lines[i][a], lines[i][a+1], lines[j][b], lines[j][b+1]
					if side(p, q, r)*side(p, q, s) < 0 && side(r, s, p)*side(r, s, q) < 0 {
						n++
					}
				}
			}
		}
	}
	return n
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
