package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/flowtape/flowtape/printer"
)

var mdText = printer.MarkdownText

// WriteMarkdown writes the report for a postmortem document: tables, the
// timeline as a table of the incident's buckets, and the graph as Mermaid.
func WriteMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	const day = "2006-01-02 15:04:05.000"
	span := r.Window.Until.Sub(r.Window.Since).Round(time.Millisecond)
	fmt.Fprintf(&b, "# %s\n\n", mdText(r.Title))
	fmt.Fprintf(&b, "%s to %s UTC (%s); recordings: %s\n\n", r.Window.Since.UTC().Format(day), r.Window.Until.UTC().Format(day), span,
		mdText(strings.Join(r.Recordings, ", ")))

	b.WriteString("## 1. Summary\n\n")
	if !r.Summary.Complete {
		b.WriteString("> **Incomplete recording.**")
		for _, n := range r.Summary.Notes {
			b.WriteString(" " + mdText(n))
		}
		b.WriteString("\n\n")
	} else {
		for _, n := range r.Summary.Notes {
			fmt.Fprintf(&b, "> %s\n\n", mdText(n))
		}
	}
	if r.Incident != nil {
		fmt.Fprintf(&b, "> **Incident from %s UTC** (buckets of %s): %s.\n\n", r.Incident.Start.UTC().Format("15:04:05"), r.Bucket, mdText(r.Incident.Why))
	}
	l7 := "none: L3/L4 flows only (connections, drops and verdicts are shown instead of requests)"
	if r.Summary.L7 {
		l7 = fmt.Sprintf("yes: %d HTTP/gRPC requests", r.Summary.Requests)
	}
	lost := "none"
	if r.Summary.LostEvents > 0 {
		lost = fmt.Sprintf("%d (%s), %s to %s", r.Summary.LostEvents, mdText(r.Summary.LostBySource), r.Summary.FirstLost, r.Summary.LastLost)
	}
	fmt.Fprintf(&b, "- Nodes: %d\n- Flows: %d\n- L7 visibility: %s\n- Lost events: %s\n- Complete: %v\n\n", r.Summary.Nodes, r.Summary.Flows, l7, lost, r.Summary.Complete)
	if err := table(&b, r.Summary.Coverage); err != nil {
		return err
	}

	rows, more := timelineRows(r)
	fmt.Fprintf(&b, "## 2. Timeline\n\nPer %s bucket", r.Bucket)
	if r.Incident != nil {
		fmt.Fprintf(&b, "; the incident's buckets (%s) are marked ◀, after the last bucket before them.\n\n", mdText(r.Incident.Why))
	} else {
		b.WriteString("; no bucket departed from the baseline. The buckets with traffic:\n\n")
	}
	layout := "15:04:05"
	if r.Window.Until.Sub(r.Window.Since) >= 24*time.Hour {
		layout = "2006-01-02 15:04"
	}
	b.WriteString("| bucket | requests | errors | error rate | p99 ms | drops | policy denies | lost events | |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, i := range rows {
		p := r.Timeline[i]
		mark := ""
		if r.Incident != nil && i >= r.Incident.Bucket {
			mark = "◀"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %d | %d | %d | %s |\n", p.Start.UTC().Format(layout), p.Requests, p.Errors,
			pct(p.ErrorRate), num(p.P99ms), p.Drops, p.PolicyDenies, p.LostEvents, mark)
	}
	if more > 0 {
		fmt.Fprintf(&b, "\n%d more buckets: `flowtape analyze timeline %s --bucket %s --since %s --until %s` prints every one; the HTML report charts them.\n\n",
			more, strings.Join(r.Recordings, " "), r.Bucket, r.Window.Since.UTC().Format(time.RFC3339Nano), r.Window.Until.UTC().Format(time.RFC3339Nano))
	} else {
		b.WriteString("\n")
	}

	b.WriteString("## 3. Dependency graph\n\n```mermaid\n")
	if err := printer.PrintGraph(&b, "mermaid", r.Graph); err != nil {
		return err
	}
	b.WriteString("```\n\n")

	b.WriteString("## 4. Services\n\n")
	if err := table(&b, r.Services); err != nil {
		return err
	}

	b.WriteString("## 5. What changed\n\n")
	if c := r.Changes; c != nil {
		fmt.Fprintf(&b, "%s\n\n", mdText(c.Compared()))
		for _, part := range []struct {
			title string
			rows  []Change
		}{{"Services", c.Services}, {"Edges", c.Edges}} {
			fmt.Fprintf(&b, "### %s\n\n", part.title)
			if len(part.rows) == 0 {
				fmt.Fprintf(&b, "No %s changed noticeably.\n\n", strings.ToLower(part.title))
				continue
			}
			b.WriteString("| name | what changed | score |\n| --- | --- | --- |\n")
			for _, ch := range part.rows {
				fmt.Fprintf(&b, "| %s | %s | %.1f |\n", mdText(ch.Name), mdText(ch.What), ch.Score)
			}
			b.WriteString("\n")
		}
		for _, l := range c.Lists() {
			if len(l.Items) > 0 {
				fmt.Fprintf(&b, "**%s:**\n\n", l.Title)
				for _, ch := range l.Items {
					fmt.Fprintf(&b, "- %s", mdText(ch.Name))
					if ch.What != "" {
						fmt.Fprintf(&b, ": %s", mdText(ch.What))
					}
					b.WriteString("\n")
				}
				b.WriteString("\n")
			}
		}
	} else {
		b.WriteString("Nothing to compare with: no incident was found in the timeline and no `--baseline` was given.\n\n")
	}

	b.WriteString("## 6. Top errors, drops and DNS failures\n\n")
	for _, s := range []struct {
		title, none string
		t           printer.Table
	}{{"Errors", "No failing requests or connections.", r.Errors}, {"Drops and policy denies", "No drops.", r.Drops},
		{"DNS failures", "No failed DNS answers.", r.DNS}} {
		fmt.Fprintf(&b, "### %s\n\n", s.title)
		if len(s.t.Rows) == 0 {
			b.WriteString(s.none + "\n\n")
			continue
		}
		if err := table(&b, s.t); err != nil {
			return err
		}
	}

	b.WriteString("## 7. Appendix: the SQL of each section\n\n")
	b.WriteString("Each section is a built-in analysis: `flowtape analyze NAME DIR... FLAGS` prints it again, `flowtape analyze NAME --sql` prints its SQL, and `flowtape query` runs that SQL.\n\n")
	for _, s := range r.Sections {
		cmd := "flowtape analyze " + s.Analysis + " " + strings.Join(r.Recordings, " ")
		if s.Params != "" {
			cmd += " " + s.Params
		}
		fmt.Fprintf(&b, "<details><summary>%s: <code>%s</code></summary>\n\n```sql\n%s```\n\n</details>\n\n", mdText(s.Title), mdText(cmd), strings.ReplaceAll(s.SQL, "```", "`` `"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func table(b *strings.Builder, t printer.Table) error {
	if err := printer.Print(b, "markdown", t); err != nil {
		return err
	}
	b.WriteString("\n")
	return nil
}

// mdTimelineRows is how many buckets the Markdown timeline lists.
const mdTimelineRows = 12

// timelineRows picks the buckets the Markdown timeline lists: the last one
// before the incident and the incident's first ones, or without an
// incident the first buckets with traffic; more is how many it leaves out.
func timelineRows(r *Report) (rows []int, more int) {
	var want []int
	for i, p := range r.Timeline {
		switch {
		case r.Incident != nil:
			if i >= r.Incident.Bucket-1 && i <= max(r.Incident.End, r.Incident.Bucket) {
				want = append(want, i)
			}
		case p.Flows > 0 || p.LostEvents > 0:
			want = append(want, i)
		}
	}
	if len(want) > mdTimelineRows {
		return want[:mdTimelineRows], len(want) - mdTimelineRows
	}
	return want, 0
}
