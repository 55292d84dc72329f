package printer

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestPrintGraph(t *testing.T) {
	tab := Table{
		Columns: []string{"source", "source_namespace", "destination", "destination_namespace", "rps", "error_rate", "p99_ms", "connections", "drops", "health"},
		Rows: [][]any{
			{"frontend", "shop", `pay"ment`, "shop", 2.5, 0.25, 41.0, int64(3), int64(0), "failure"},
			{"cart", "shop", "redis", "shop", nil, nil, nil, int64(12), int64(2), "healthy"},
		},
	}
	for _, tc := range []struct {
		format string
		want   []string
	}{
		{"dot", []string{`"shop/frontend" -> "shop/pay\"ment" [label="2.5 req/s, 25% err, p99 41 ms", color="#c62828"`, `penwidth=3`,
			`"shop/cart" -> "shop/redis" [label="12 conn, 2 drops", color="#2e7d32"`}},
		{"mermaid", []string{"flowchart LR\n", `n0 -->|"2.5 req/s, 25% err, p99 41 ms"| n1`, `n1["pay#quot;ment<br/><small>shop</small>"]`,
			"linkStyle 0 stroke:#c62828,stroke-width:3px"}},
		{"table", []string{"SOURCE", "frontend"}},
	} {
		var buf bytes.Buffer
		if err := PrintGraph(&buf, tc.format, tab); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("%s lacks %q:\n%s", tc.format, w, buf.String())
			}
		}
	}
	var buf bytes.Buffer
	if err := PrintGraph(&buf, "json", tab); err != nil {
		t.Fatal(err)
	}
	var g struct {
		Nodes []Node           `json:"nodes"`
		Edges []map[string]any `json:"edges"`
	}
	if err := json.Unmarshal(buf.Bytes(), &g); err != nil || len(g.Nodes) != 4 || len(g.Edges) != 2 || g.Nodes[1].ID != `shop/pay"ment` {
		t.Errorf("json: %v %+v", err, g)
	}
	if err := PrintGraph(&buf, "svg", tab); err == nil {
		t.Error("an unknown format was accepted")
	}
}
