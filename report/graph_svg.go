package report

import (
	"fmt"
	"html"
	"slices"
	"strings"

	"github.com/flowtape/flowtape/printer"
)

// graphSVG draws the graph table as an SVG document fragment (the layout:
// graph_layout.go); every string in it is escaped.
func graphSVG(t printer.Table) string {
	nodes, edges := printer.GraphOf(t)
	if len(nodes) == 0 {
		return ""
	}
	gl := layoutGraph(nodes, edges)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="graph" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="dependency graph">`,
		gl.width, gl.height, gl.width, gl.height)
	b.WriteString(`<defs>`)
	for _, c := range []string{"healthy", "degraded", "failure", "unknown"} {
		color, _ := printer.EdgeStyle(c)
		fmt.Fprintf(&b, `<marker id="arrow-%s" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="%s"/></marker>`, c, color)
	}
	b.WriteString(`</defs>`)
	// Lanes first, under everything; one lane needs no band.
	if len(gl.lanes) > 1 {
		for _, ln := range gl.lanes {
			name := ln.namespace
			if name == "" {
				name = "(no namespace)"
			}
			fmt.Fprintf(&b, `<g class="lane"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="6"/><text x="%.1f" y="%.1f">%s</text></g>`,
				margin/2, ln.y-lanePad/2, gl.width-margin, ln.h, margin/2+6, ln.y+11, esc(name))
		}
	}
	// Healthy edges first, so failing ones are drawn over them.
	all := slicesSortedByWidth(gl.labels)
	for _, pl := range all {
		health := pl.edge.Health
		if _, ok := map[string]bool{"healthy": true, "degraded": true, "failure": true}[health]; !ok {
			health = "unknown"
		}
		// Curves into the label's near end and out of its far end, level
		// at both, then into the callee from its side.
		x0, y0, x1, y1 := pl.ends()
		ax, bx, ly := pl.through()
		out, in := 30.0, -30.0
		if bx < ax { // right to left
			out = -30
		}
		if x1 > pl.to.x { // into the callee's right side
			in = 30
		}
		fmt.Fprintf(&b, `<path class="edge %s" d="M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f L%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="none" stroke="%s" stroke-width="%d" marker-end="url(#arrow-%s)"><title>%s</title></path>`,
			health, x0, y0, (x0+ax)/2, y0, (x0+ax)/2, ly, ax, ly, bx, ly, bx+out, ly, x1+in, y1, x1, y1,
			pl.color, pl.width, health, esc(pl.edge.Src.ID+" → "+pl.edge.Dst.ID+": "+pl.edge.Label))
	}
	for _, pl := range all {
		fmt.Fprintf(&b, `<rect class="label-bg" x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="3"/><text class="edge-label" x="%.1f" y="%.1f" fill="%s">%s</text>`,
			pl.x, pl.y, pl.w, labelH, pl.x+4, pl.y+12, pl.color, esc(pl.edge.Label))
	}
	for _, n := range gl.nodes {
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

// slicesSortedByWidth is the labels, thinnest edges first (a stable sort:
// the graph's order among equals).
func slicesSortedByWidth(labels []*placedLabel) []*placedLabel {
	all := slices.Clone(labels)
	slices.SortStableFunc(all, func(a, b *placedLabel) int { return a.width - b.width })
	return all
}

// esc escapes text for SVG and HTML, attributes included.
func esc(s string) string { return html.EscapeString(s) }
