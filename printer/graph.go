package printer

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// GraphFormats are the formats of a graph: the tabular ones (one row per
// edge; json adds the nodes) and Graphviz dot and Mermaid.
var GraphFormats = append(append([]string{}, Formats...), "dot", "mermaid")

// healthColors colour edges as Kiali does: green, orange, red; grey when
// there is nothing to judge by.
var healthColors = map[string]string{"healthy": "#2e7d32", "degraded": "#ef6c00", "failure": "#c62828", "unknown": "#757575"}

// Node is a graph node, as the json format lists them.
type Node struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

// Edge is one row of a graph table, by the columns a drawing needs.
type Edge struct {
	Src, Dst Node
	// Label says what matters about the edge in a few words.
	Label string
	// Health is healthy, degraded, failure or unknown.
	Health string
}

// PrintGraph writes a graph table (the graph analysis: source,
// source_namespace, destination, destination_namespace and the edge's
// numbers) in format.
func PrintGraph(w io.Writer, format string, t Table) error {
	switch format {
	case "dot":
		return printDot(w, t)
	case "mermaid":
		return printMermaid(w, t)
	case "json":
		nodes, _ := GraphOf(t)
		rows := t.Records()
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Nodes []Node           `json:"nodes"`
			Edges []map[string]any `json:"edges"`
		}{nodes, rows})
	}
	if err := CheckFormat(format, GraphFormats...); err != nil {
		return err
	}
	return Print(w, format, t)
}

// GraphOf reads a graph table's nodes (in order of appearance) and edges.
func GraphOf(t Table) ([]Node, []Edge) {
	col := map[string]int{}
	for i, c := range t.Columns {
		col[c] = i
	}
	get := func(r []any, name string) any {
		if i, ok := col[name]; ok {
			return r[i]
		}
		return nil
	}
	str := func(r []any, name string) string { return Cell(get(r, name)) }
	node := func(name, ns string) Node {
		id := name
		if ns != "" {
			id = ns + "/" + name
		}
		return Node{ID: id, Name: name, Namespace: ns}
	}
	seen := map[string]bool{}
	nodes := []Node{}
	var edges []Edge
	for _, r := range t.Rows {
		e := Edge{Src: node(str(r, "source"), str(r, "source_namespace")), Dst: node(str(r, "destination"), str(r, "destination_namespace")),
			Label: edgeLabel(get, r), Health: str(r, "health")}
		for _, n := range []Node{e.Src, e.Dst} {
			if !seen[n.ID] {
				seen[n.ID] = true
				nodes = append(nodes, n)
			}
		}
		edges = append(edges, e)
	}
	return nodes, edges
}

// edgeLabel says what matters about an edge in a few words: requests per
// second, error share and p99 where an L7 proxy saw it; connections and
// failures, or flows and drops, where only L3/L4 flows did.
func edgeLabel(get func([]any, string) any, r []any) string {
	var parts []string
	if rps, ok := get(r, "rps").(float64); ok {
		parts = append(parts, fmt.Sprintf("%s req/s", Cell(rps)))
		if er, ok := get(r, "error_rate").(float64); ok {
			parts = append(parts, fmt.Sprintf("%s%% err", Cell(er*100)))
		}
		if p99, ok := get(r, "p99_ms").(float64); ok {
			parts = append(parts, fmt.Sprintf("p99 %s ms", Cell(p99)))
		}
	} else if c, ok := get(r, "connections").(int64); ok && c > 0 {
		parts = append(parts, fmt.Sprintf("%d conn", c))
		if f, ok := get(r, "connection_failures").(int64); ok && f > 0 {
			parts = append(parts, fmt.Sprintf("%d failed", f))
		}
	} else if f, ok := get(r, "flows").(int64); ok {
		parts = append(parts, fmt.Sprintf("%d flows", f))
	}
	if d, ok := get(r, "drops").(int64); ok && d > 0 {
		parts = append(parts, fmt.Sprintf("%d drops", d))
	}
	return strings.Join(parts, ", ")
}

// EdgeStyle is an edge's colour and line width: failing edges stand out.
func EdgeStyle(health string) (string, int) {
	color, ok := healthColors[health]
	if !ok {
		color = healthColors["unknown"]
	}
	if health == "failure" {
		return color, 3
	}
	return color, 1
}

func dotQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

func printDot(w io.Writer, t Table) error {
	nodes, edges := GraphOf(t)
	var b strings.Builder
	b.WriteString("digraph flowtape {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n")
	for _, n := range nodes {
		label := n.Name
		if n.Namespace != "" {
			label += "\n" + n.Namespace
		}
		fmt.Fprintf(&b, "  %s [label=%s];\n", dotQuote(n.ID), dotQuote(label))
	}
	for _, e := range edges {
		color, width := EdgeStyle(e.Health)
		fmt.Fprintf(&b, "  %s -> %s [label=%s, color=%s, fontcolor=%s, penwidth=%d];\n",
			dotQuote(e.Src.ID), dotQuote(e.Dst.ID), dotQuote(e.Label), dotQuote(color), dotQuote(color), width)
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// mermaidText keeps a string inside a quoted Mermaid label, as text:
// Mermaid reads entity codes there, and nothing else escapes a quote; a
// backtick would start a Markdown string, brackets a link, braces a
// %%{init}%% directive, and a # of the string's own an entity code.
var mermaidText = strings.NewReplacer("#", "#35;", `"`, "#quot;", "<", "#lt;", ">", "#gt;", "`", "#96;", "[", "#91;", "]", "#93;",
	"{", "#123;", "}", "#125;", "\n", " ").Replace

func printMermaid(w io.Writer, t Table) error {
	nodes, edges := GraphOf(t)
	ids := map[string]string{}
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for i, n := range nodes {
		ids[n.ID] = fmt.Sprintf("n%d", i)
		label := mermaidText(n.Name)
		if n.Namespace != "" {
			label += "<br/><small>" + mermaidText(n.Namespace) + "</small>"
		}
		fmt.Fprintf(&b, "  %s[\"%s\"]\n", ids[n.ID], label)
	}
	for _, e := range edges {
		fmt.Fprintf(&b, "  %s -->|\"%s\"| %s\n", ids[e.Src.ID], mermaidText(e.Label), ids[e.Dst.ID])
	}
	for i, e := range edges {
		color, width := EdgeStyle(e.Health)
		fmt.Fprintf(&b, "  linkStyle %d stroke:%s,stroke-width:%dpx\n", i, color, width)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
