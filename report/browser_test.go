package report_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/flowtape/flowtape/report"
)

// chromium finds the browser: make test installs Debian's chromium.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if testing.Short() {
		t.Skip("no Chromium (make test installs it)")
	}
	t.Fatal("no Chromium found: make test installs it (apt-get install chromium)")
	return ""
}

// pageResult is what a page did in the browser.
type pageResult struct {
	Problems []string // console errors, uncaught exceptions, errors logged by the browser
	Requests []string // every URL asked for but the page's own file
	Sizes    map[string][2]float64
	Pwned    string // window.pwned, which hostile strings try to set
	Sorts    bool   // a click on the services table's requests header sorts it
	PDF      []byte // the page printed
	Opened   bool   // printing opened every <details> (the SQL appendix)
	PNG      []byte
}

// openPage loads a file in headless Chromium with the network cut off (all
// hosts unresolvable, a proxy that does not answer), waits for it to settle
// and reports what it did.
func openPage(t *testing.T, path string) pageResult {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 1000),
		// Chromium keeps its profile, and its singleton socket (in
		// TMPDIR), in the test's own directories, which the test removes.
		chromedp.UserDataDir(t.TempDir()), chromedp.Env("TMPDIR="+t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND"), chromedp.ProxyServer("http://127.0.0.1:9"),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()

	var mu sync.Mutex
	res := pageResult{Sizes: map[string][2]float64{}}
	pageURL := "file://" + abs
	if err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				var args []string
				for _, a := range e.Args {
					args = append(args, a.Description+string(a.Value))
				}
				res.Problems = append(res.Problems, "console "+string(e.Type)+": "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			res.Problems = append(res.Problems, "exception: "+msg)
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError || e.Entry.Level == cdplog.EntryLevelWarning {
				res.Problems = append(res.Problems, fmt.Sprintf("browser %s (%s): %s %s", e.Entry.Level, e.Entry.Source, e.Entry.Text, e.Entry.URL))
			}
		case *network.EventRequestWillBeSent:
			if u := e.Request.URL; u != pageURL {
				res.Requests = append(res.Requests, u)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(bctx, runtime.Enable, struct{}{}); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	for _, step := range []func() error{
		func() error { _, err := chromedp.Call(bctx, cdplog.Enable, struct{}{}); return err },
		func() error { _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); return err },
		func() error { return chromedp.Do(bctx, chromedp.Navigate(pageURL)) },
		func() error { return chromedp.Do(bctx, chromedp.WaitReady("body")) },
		// Let anything a hostile string might have scheduled run.
		func() error { time.Sleep(500 * time.Millisecond); return nil },
	} {
		if err := step(); err != nil {
			t.Fatalf("Chromium on %s: %v", path, err)
		}
	}
	sizes, err := chromedp.Run(bctx, chromedp.Evaluate[map[string][]float64](`(() => {
		const out = {};
		const put = (name, el) => { if (el) { const r = el.getBoundingClientRect(); out[name] = [r.width, r.height]; } };
		put("graph", document.querySelector("svg.graph"));
		document.querySelectorAll("svg.chart").forEach((el, i) => put("chart" + i, el));
		put("services", document.querySelector("#services ~ .scroll table"));
		return out;
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	pwned, err := chromedp.Run(bctx, chromedp.Evaluate[string](`String(window.pwned)`))
	if err != nil {
		t.Fatal(err)
	}
	sorts, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`(() => {
		const t = document.querySelector("#services ~ .scroll table");
		if (!t) { return false; }
		const heads = Array.from(t.tHead.rows[0].cells);
		const i = heads.findIndex(h => h.textContent === "requests");
		if (i < 0) { return false; }
		heads[i].click();
		const v = Array.from(t.tBodies[0].rows).map(r => parseFloat(r.cells[i].getAttribute("data-v"))).filter(x => !isNaN(x));
		for (let k = 1; k < v.length; k++) { if (v[k - 1] > v[k]) { return false; } }
		return v.length > 1;
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	pdf, err := chromedp.Call(bctx, page.PrintToPDF, page.PrintToPDFParams{})
	if err != nil {
		t.Fatal(err)
	}
	opened, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`(() => {
		const all = Array.from(document.querySelectorAll("details"));
		return all.length > 0 && all.every(d => d.open);
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for k, v := range sizes {
		if len(v) == 2 {
			res.Sizes[k] = [2]float64{v[0], v[1]}
		}
	}
	res.Pwned, res.PNG, res.Sorts, res.PDF, res.Opened = pwned, png, sorts, pdf.Data, opened
	return res
}

func writeHTML(t *testing.T, r *report.Report) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.html")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := report.WriteHTML(f, r); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// The HTML report of the simulated incident in a real browser, offline: it
// shows its graph and charts, logs no error and asks for nothing.
func TestHTMLReportInBrowser(t *testing.T) {
	dir, _ := simRecording(t)
	path := writeHTML(t, build(t, dir, report.Options{}))
	res := openPage(t, path)
	if len(res.Problems) > 0 {
		t.Errorf("the page logged problems:\n%s", strings.Join(res.Problems, "\n"))
	}
	if len(res.Requests) > 0 {
		t.Errorf("the page asked for %v: a report must need nothing but itself", res.Requests)
	}
	for _, name := range []string{"graph", "chart0", "chart1", "chart2", "chart3", "services"} {
		if s := res.Sizes[name]; s[0] <= 0 || s[1] <= 0 {
			t.Errorf("%s is %vx%v in the page, want a visible size", name, s[0], s[1])
		}
	}
	if !res.Sorts {
		t.Error("a click on the services table's requests header did not sort it")
	}
	if !res.Opened || len(res.PDF) == 0 {
		t.Errorf("printed (%d bytes of PDF), the SQL appendix was not opened", len(res.PDF))
	}
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), "report.pdf"), res.PDF, 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.ArtifactDir(), "report.png")
	if err := os.WriteFile(shot, res.PNG, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)
}

// Hostile strings in flows, in a real browser: nothing runs.
func TestHTMLReportRunsNoInjectedScript(t *testing.T) {
	path := writeHTML(t, build(t, injectionRecording(t), report.Options{}))
	res := openPage(t, path)
	if res.Pwned != "undefined" {
		t.Errorf("window.pwned = %q: a string from a flow ran as script", res.Pwned)
	}
	if len(res.Requests) > 0 {
		t.Errorf("the page asked for %v", res.Requests)
	}
	if len(res.Problems) > 0 {
		t.Errorf("the page logged problems:\n%s", strings.Join(res.Problems, "\n"))
	}
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), "hostile.png"), res.PNG, 0o644); err != nil {
		t.Fatal(err)
	}
}
