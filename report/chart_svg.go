package report

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// A timeline chart is one small SVG per measure, on a shared time axis,
// with the incident's buckets shaded: requests, error rate, p99 latency and
// drops, bucket by bucket.

type measure struct {
	title string
	unit  func(float64) string
	of    func(Point) float64 // NaN: no value in the bucket
	color string
	bars  bool
}

var measures = []measure{
	{"Requests per bucket", func(v float64) string { return num(v) }, func(p Point) float64 { return float64(p.Requests) }, "#1565c0", true},
	{"Error rate", func(v float64) string { return pct(v) }, func(p Point) float64 { return p.ErrorRate }, "#c62828", false},
	{"p99 latency (ms)", func(v float64) string { return num(v) + " ms" }, func(p Point) float64 { return p.P99ms }, "#6a1b9a", false},
	{"Dropped flows per bucket", func(v float64) string { return num(v) }, func(p Point) float64 { return float64(p.Drops) }, "#ef6c00", true},
}

const (
	chartW, chartH       = 900.0, 150.0
	chartLeft, chartRite = 70.0, 10.0
	chartTop, chartBot   = 22.0, 24.0
)

// timelineSVGs draws the charts, the incident's buckets shaded.
func timelineSVGs(tl []Point, inc *Incident) []string {
	var out []string
	for _, m := range measures {
		out = append(out, chartSVG(m, tl, inc))
	}
	return out
}

func chartSVG(m measure, tl []Point, inc *Incident) string {
	n := len(tl)
	plotW := chartW - chartLeft - chartRite
	plotH := chartH - chartTop - chartBot
	top := 0.0
	for _, p := range tl {
		if v := m.of(p); !math.IsNaN(v) {
			top = max(top, v)
		}
	}
	empty := top == 0
	if empty {
		top = 1
	}
	bw := plotW / float64(max(n, 1))
	xAt := func(i int) float64 { return chartLeft + float64(i)*bw }
	yAt := func(v float64) float64 { return chartTop + plotH - v/top*plotH }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s">`,
		chartW, chartH, chartW, chartH, esc(m.title))
	fmt.Fprintf(&b, `<text x="%.0f" y="14" class="chart-title">%s</text>`, chartLeft, esc(m.title))
	if inc != nil {
		end := max(inc.End, inc.Bucket)
		fmt.Fprintf(&b, `<rect class="incident" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>incident: %s</title></rect>`,
			xAt(inc.Bucket), chartTop, float64(end-inc.Bucket+1)*bw, plotH, esc(inc.Why))
		fmt.Fprintf(&b, `<line class="incident-start" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, xAt(inc.Bucket), xAt(inc.Bucket), chartTop, chartTop+plotH)
	}
	// Axes: the top value and zero; first, middle and last bucket times.
	fmt.Fprintf(&b, `<line class="axis" x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f"/>`, chartLeft, chartLeft+plotW, chartTop+plotH, chartTop+plotH)
	if !empty {
		fmt.Fprintf(&b, `<text class="tick" x="%.0f" y="%.1f" text-anchor="end">%s</text>`, chartLeft-4, chartTop+8, esc(m.unit(top)))
	}
	fmt.Fprintf(&b, `<text class="tick" x="%.0f" y="%.1f" text-anchor="end">0</text>`, chartLeft-4, chartTop+plotH)
	if n > 0 {
		layout := "15:04:05"
		if tl[n-1].Start.Sub(tl[0].Start) >= 24*time.Hour {
			layout = "01-02 15:04"
		}
		for _, i := range []int{0, n / 2, n - 1} {
			anchor := map[bool]string{true: "start", false: "middle"}[i == 0]
			if i == n-1 && n > 1 {
				anchor = "end"
			}
			fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%.0f" text-anchor="%s">%s</text>`, xAt(i)+bw/2, chartH-6, anchor, tl[i].Start.UTC().Format(layout))
		}
	}
	if m.bars {
		for i, p := range tl {
			v := m.of(p)
			if math.IsNaN(v) || v == 0 {
				continue
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`,
				xAt(i)+bw*0.1, yAt(v), math.Max(bw*0.8, 0.5), chartTop+plotH-yAt(v), m.color, p.Start.UTC().Format(time.RFC3339), esc(m.unit(v)))
		}
	} else {
		var path strings.Builder
		pen := false
		for i, p := range tl {
			v := m.of(p)
			if math.IsNaN(v) {
				pen = false
				continue
			}
			cmd := "L"
			if !pen {
				cmd = "M"
			}
			fmt.Fprintf(&path, "%s%.1f,%.1f ", cmd, xAt(i)+bw/2, yAt(v))
			pen = true
		}
		if path.Len() > 0 {
			fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="1.8"/>`, strings.TrimSpace(path.String()), m.color)
		}
		// Points to hover where buckets are wide enough to aim at, and
		// always those with no neighbour to draw a line to.
		for i, p := range tl {
			v := m.of(p)
			lone := (i == 0 || math.IsNaN(m.of(tl[i-1]))) && (i == len(tl)-1 || math.IsNaN(m.of(tl[i+1])))
			if !math.IsNaN(v) && (bw >= 4 || lone) {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2" fill="%s"><title>%s: %s</title></circle>`,
					xAt(i)+bw/2, yAt(v), m.color, p.Start.UTC().Format(time.RFC3339), esc(m.unit(v)))
			}
		}
	}
	b.WriteString(`</svg>`)
	return b.String()
}
