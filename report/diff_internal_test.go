package report

import (
	"math"
	"slices"
	"testing"

	"github.com/flowtape/flowtape/printer"
)

// diffTables pairs rows as a reader of "what changed" expects: a failed
// DNS answer is new only if the baseline never failed that query with that
// rcode (the search path's NXDOMAINs fail in both windows), a drop reason
// only if the baseline never dropped for it, and an edge of one window
// keeps that window's numbers.
func TestDiffTables(t *testing.T) {
	svc := printer.Table{Columns: []string{"service", "namespace", "requests", "error_rate", "p99_ms", "rps", "connections", "connection_failures", "drops", "flows"}}
	edges := func(rows ...[]any) printer.Table {
		return printer.Table{Columns: []string{"source", "source_namespace", "destination", "destination_namespace",
			"requests", "error_rate", "p99_ms", "rps", "connections", "connection_failures", "drops", "flows"}, Rows: rows}
	}
	drops := func(rows ...[]any) printer.Table {
		return printer.Table{Columns: []string{"reason", "source", "source_namespace", "destination", "destination_namespace", "drops"}, Rows: rows}
	}
	dns := func(rows ...[]any) printer.Table {
		return printer.Table{Columns: []string{"client", "client_namespace", "query", "answers", "errors", "rcodes"}, Rows: rows}
	}
	searchPath := []any{"checkout", "shop", "metadata.google.internal.shop.svc.cluster.local.", int64(10), int64(10), "NXDOMAIN=10"}
	before := [len(compared)]printer.Table{svc,
		edges([]any{"frontend", "shop", "cart", "shop", int64(100), 0.0, 5.0, 10.0, int64(50), int64(0), int64(0), int64(400)},
			[]any{"frontend", "shop", "ads", "shop", int64(40), 0.0, 3.0, 4.0, int64(20), int64(0), int64(0), int64(160)}),
		drops([]any{"POLICY_DENIED", "world", "", "frontend", "shop", int64(12)}),
		dns(searchPath, []any{"checkout", "shop", "api.pay.example.", int64(30), int64(0), "NOERROR=30"})}
	after := [len(compared)]printer.Table{svc,
		edges([]any{"frontend", "shop", "cart", "shop", int64(100), 0.0, 5.0, 10.0, int64(50), int64(0), int64(0), int64(400)},
			[]any{"checkout", "shop", "mail", "shop", int64(30), 0.5, 20.0, 3.0, int64(30), int64(6), int64(0), int64(90)}),
		drops([]any{"POLICY_DENIED", "world", "", "frontend", "shop", int64(30)},
			[]any{"CT_MAP_INSERTION_FAILED", "frontend", "shop", "cart", "shop", int64(7)},
			[]any{"CT_MAP_INSERTION_FAILED", "checkout", "shop", "mail", "shop", int64(5)}),
		dns(searchPath,
			[]any{"checkout", "shop", "api.pay.example.", int64(30), int64(12), "NOERROR=18,SERVFAIL=12"},
			[]any{"frontend", "shop", "api.pay.example.", int64(5), int64(5), "SERVFAIL=5"},
			[]any{"mail", "shop", "relay.mail.example.", int64(2), int64(2), "NXDOMAIN=2"})}
	c := diffTables(before, after, 10)

	if got, want := names(c.NewDNSFailures), []string{"api.pay.example. SERVFAIL", "relay.mail.example. NXDOMAIN"}; !slices.Equal(got, want) {
		t.Errorf("new DNS failures %v, want %v", got, want)
	}
	if got, want := c.NewDNSFailures[0].What, "17 answers to shop/checkout, shop/frontend"; got != want {
		t.Errorf("new DNS failure says %q, want %q", got, want)
	}
	if got, want := names(c.NewDropReasons), []string{"CT_MAP_INSERTION_FAILED"}; !slices.Equal(got, want) {
		t.Errorf("new drop reasons %v, want %v", got, want)
	}
	if got, want := c.NewDropReasons[0].What, "12 dropped flows: shop/checkout -> shop/mail, shop/frontend -> shop/cart"; got != want {
		t.Errorf("new drop reason says %q, want %q", got, want)
	}
	if len(c.Appeared) != 1 || c.Appeared[0].Name != "shop/checkout -> shop/mail" {
		t.Fatalf("appeared %v, want the edge to mail", names(c.Appeared))
	}
	if a := c.Appeared[0]; !math.IsNaN(a.RPS[0]) || a.RPS[1] != 3 || a.ErrorRate[1] != 0.5 || a.What != "3 req/s; error rate 50.00%; failed connections 20.00%" {
		t.Errorf("appeared edge %+v: want after's numbers only", a)
	}
	if len(c.Vanished) != 1 || c.Vanished[0].Name != "shop/frontend -> shop/ads" || c.Vanished[0].RPS[0] != 4 || !math.IsNaN(c.Vanished[0].RPS[1]) {
		t.Errorf("vanished %+v, want the edge to ads with before's numbers", c.Vanished)
	}
	if len(c.Edges) != 0 {
		t.Errorf("edges %v changed; the one in both windows did not", names(c.Edges))
	}

	tb := c.Table()
	var kinds []string
	for _, r := range tb.Records() {
		kinds = append(kinds, r["change"].(string))
	}
	if want := []string{KindNewEdge, KindVanishedEdge, KindNewDropReason, KindNewDNSFailure, KindNewDNSFailure}; !slices.Equal(kinds, want) {
		t.Errorf("table rows %v, want %v", kinds, want)
	}
	r := tb.Records()[0]
	if r["rps_before"] != nil || r["rps_after"] != 3.0 || r["score"] != nil {
		t.Errorf("new edge's row %v: want no number before, rps 3 after, no score", r)
	}
}

func names(cs []Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}
