package report

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/flowtape/flowtape/printer"
)

//go:embed templates/report.html
var templates embed.FS

var page = template.Must(template.ParseFS(templates, "templates/report.html"))

// sortScript sorts a table by the column whose header is clicked (by
// data-v where cells have it, numbers, else by text), and opens the
// appendix for printing.
const sortScript = `document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var key = function (row) {
        var c = row.cells[col];
        var v = c.getAttribute("data-v");
        return v === null ? c.textContent : parseFloat(v);
      };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (typeof x === "number" && typeof y === "number") { return asc ? x - y : y - x; }
        return asc ? String(x).localeCompare(String(y)) : String(y).localeCompare(String(x));
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
// Printed, the SQL appendix is open.
window.addEventListener("beforeprint", function () {
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
});`

// csp lets the page run only its own script and fetch nothing: even text
// from flows that escaped escaping could not run or call out.
var csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-" + scriptHash() + "'"

func scriptHash() string {
	h := sha256.Sum256([]byte(sortScript))
	return base64.StdEncoding.EncodeToString(h[:])
}

type htmlTable struct {
	Columns []string
	Rows    []htmlRow
}

type htmlRow struct {
	Class string
	Cells []htmlCell
}

type htmlCell struct {
	Text string
	Num  bool
	Sort string
}

// WriteHTML writes the report as one self-contained HTML page.
func WriteHTML(w io.Writer, r *Report) error {
	var charts []template.HTML
	for _, c := range timelineSVGs(r.Timeline, r.Incident) {
		charts = append(charts, template.HTML(c)) //nolint:gosec // built with every string escaped (esc)
	}
	data := map[string]any{
		"R":        r,
		"CSP":      csp,
		"Span":     r.Window.Until.Sub(r.Window.Since).Round(time.Millisecond).String(),
		"Charts":   charts,
		"Graph":    template.HTML(graphSVG(r.Graph)), //nolint:gosec // built with every string escaped (esc)
		"Coverage": toHTMLTable(r.Summary.Coverage),
		"Services": toHTMLTable(r.Services),
		"Errors":   toHTMLTable(r.Errors),
		"Drops":    toHTMLTable(r.Drops),
		"DNS":      toHTMLTable(r.DNS),
		"Dirs":     strings.Join(r.Recordings, " "),
		"Script":   template.JS(sortScript), //nolint:gosec // a constant
	}
	if err := page.Execute(w, data); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	return nil
}

func toHTMLTable(t printer.Table) htmlTable {
	out := htmlTable{Columns: t.Columns}
	health := -1
	for i, c := range t.Columns {
		if c == "health" {
			health = i
		}
	}
	for _, row := range t.Rows {
		var hr htmlRow
		if health >= 0 {
			hr.Class = toString(row[health])
		}
		for _, v := range row {
			hr.Cells = append(hr.Cells, htmlCellOf(v))
		}
		out.Rows = append(out.Rows, hr)
	}
	return out
}

func htmlCellOf(v any) htmlCell {
	c := htmlCell{Text: printer.Cell(v)}
	switch x := v.(type) {
	case float64:
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			c.Num, c.Sort = true, strconv.FormatFloat(x, 'g', -1, 64)
		}
	case int64, int32, int, uint64, uint32:
		c.Num, c.Sort = true, c.Text
	}
	return c
}
