// Package printer renders tabular results in every output format flowtape
// offers (--format table|json|csv|markdown), so that all commands print alike.
package printer

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Formats is the list of tabular formats, for flag help and validation.
var Formats = []string{"table", "json", "csv", "markdown"}

// Table is a result: column names and rows of values.
type Table struct {
	Columns []string
	Rows    [][]any
}

// CheckFormat returns a one-line error for an unknown format.
func CheckFormat(format string, allowed ...string) error {
	if len(allowed) == 0 {
		allowed = Formats
	}
	for _, f := range allowed {
		if f == format {
			return nil
		}
	}
	return fmt.Errorf("unknown --format %q: use one of %s", format, strings.Join(allowed, ", "))
}

// Print writes t to w in format.
func Print(w io.Writer, format string, t Table) error {
	switch format {
	case "table", "":
		return printTable(w, t)
	case "json":
		return printJSON(w, t)
	case "csv":
		return printCSV(w, t)
	case "markdown":
		return printMarkdown(w, t)
	}
	return CheckFormat(format)
}

// Cell prints a value as the table and Markdown print it: floats with at
// most three decimals (three significant digits where those would print
// 0), lists of strings joined with commas, NULL as
// nothing (CSV prints floats exact).
func Cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		if x != 0 && math.Abs(x) < 0.0005 { // (false for NaN)
			// three decimals would print 0 (or -0): an error rate of
			// 0.0004 is errors, not none; three significant digits
			decimals := 2 - int(math.Floor(math.Log10(math.Abs(x))))
			return strings.TrimRight(strconv.FormatFloat(x, 'f', decimals, 64), "0")
		}
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", x), "0"), ".")
	case []string:
		return strings.Join(x, ",")
	default:
		return fmt.Sprint(x)
	}
}

func printTable(w io.Writer, t Table) error {
	var buf strings.Builder
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	upper := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		upper[i] = strings.ToUpper(c)
	}
	fmt.Fprintln(tw, strings.Join(upper, "\t"))
	for _, r := range t.Rows {
		cells := make([]string, len(r))
		for i, v := range r {
			cells[i] = strings.ReplaceAll(Cell(v), "\t", " ")
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Padding after the last cell is noise for diff and copy-paste.
	lines := strings.SplitAfter(buf.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(strings.TrimSuffix(l, "\n"), " ")
		if strings.HasSuffix(l, "\n") {
			lines[i] += "\n"
		}
	}
	_, err := io.WriteString(w, strings.Join(lines, ""))
	return err
}

// printJSON writes an array of objects keyed by column name.
func printJSON(w io.Writer, t Table) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(t.Records())
}

// Records are the rows as objects keyed by column name.
func (t Table) Records() []map[string]any {
	out := make([]map[string]any, 0, len(t.Rows))
	for _, r := range t.Rows {
		m := make(map[string]any, len(r))
		for i, v := range r {
			m[t.Columns[i]] = v
		}
		out = append(out, m)
	}
	return out
}

// printCSV writes the rows for scripts: floats exact (the shortest
// decimal that reads back as the same float), as JSON gives them, where a
// table rounds them for the eye (an error rate of 0.000531 is no 0.001
// for a script that compares it with a threshold of 0.001).
func printCSV(w io.Writer, t Table) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(t.Columns); err != nil {
		return err
	}
	for _, r := range t.Rows {
		cells := make([]string, len(r))
		for i, v := range r {
			if x, ok := v.(float64); ok {
				cells[i] = strconv.FormatFloat(x, 'f', -1, 64)
				continue
			}
			cells[i] = Cell(v)
		}
		if err := cw.Write(cells); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// MarkdownText keeps text (from flows: anyone can put anything in a URL or
// a pod name) inside its table cell and from being read as HTML or as a
// link where the Markdown is rendered. Emphasis and code spans would only
// change how text looks, and escaping them would garble names such as
// drop_reason_desc, so they are left alone.
var MarkdownText = strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ", "&", "&amp;", "<", "&lt;", ">", "&gt;", "](", `]\(`).Replace

func printMarkdown(w io.Writer, t Table) error {
	var b strings.Builder
	b.WriteString("| " + strings.Join(t.Columns, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat(" --- |", len(t.Columns)) + "\n")
	for _, r := range t.Rows {
		cells := make([]string, len(r))
		for i, v := range r {
			cells[i] = MarkdownText(Cell(v))
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Select returns t with only the named columns, in that order; names t
// lacks are left out.
func (t Table) Select(names ...string) Table {
	idx := map[string]int{}
	for i, c := range t.Columns {
		idx[c] = i
	}
	var out Table
	var keep []int
	for _, n := range names {
		if i, ok := idx[n]; ok {
			out.Columns = append(out.Columns, n)
			keep = append(keep, i)
		}
	}
	for _, r := range t.Rows {
		row := make([]any, len(keep))
		for j, i := range keep {
			row[j] = r[i]
		}
		out.Rows = append(out.Rows, row)
	}
	return out
}
