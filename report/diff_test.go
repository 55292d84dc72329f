package report_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/report"
	"github.com/flowtape/flowtape/sim"
)

func open(t *testing.T, dir string) analyze.Runner {
	t.Helper()
	eng, err := analyze.Open(context.Background(), []string{dir}, analyze.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

// flowtape diff and the report's "what changed" are one comparison: the
// same windows, the same rows, the same sentence saying what was compared.
func TestWhatChangedIsTheReportsComparison(t *testing.T) {
	dir, _ := simRecording(t)
	eng := open(t, dir)
	baseline := &report.Window{Since: simStart, Until: simStart.Add(90 * time.Second)}
	for _, tc := range []struct {
		name string
		o    report.Options
		d    report.DiffOptions
	}{
		{"from the data", report.Options{}, report.DiffOptions{}},
		{"with a baseline", report.Options{Baseline: baseline}, report.DiffOptions{Baseline: baseline}},
		// a window that starts before the recording: the same comparison
		// (TestAWindowPastTheRecordingComparesItsFlows)
		{"from before the recording", report.Options{Since: simStart.Add(-30 * time.Minute)}, report.DiffOptions{Since: simStart.Add(-30 * time.Minute)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := build(t, dir, tc.o)
			c, err := report.WhatChanged(context.Background(), eng, []string{"incident-42"}, tc.d)
			if err != nil {
				t.Fatal(err)
			}
			if r.Changes == nil {
				t.Fatal("the report compared nothing")
			}
			if !reflect.DeepEqual(c.Table(), r.Changes.Table()) || c.Compared() != r.Changes.Compared() {
				t.Errorf("flowtape diff:\n%s\n%v\nthe report:\n%s\n%v", c.Compared(), c.Table(), r.Changes.Compared(), r.Changes.Table())
			}
			if len(c.Services) == 0 || len(c.NewDropReasons) == 0 {
				t.Errorf("nothing changed: %+v", c)
			}
		})
	}
}

// A window that reaches past the recording on either side compares what
// the recording holds: rates divide by the part the flows cover, so that a
// --since half an hour before it makes no baseline too quiet and no
// service of the incident a surge (nor a drop a rise).
func TestAWindowPastTheRecordingComparesItsFlows(t *testing.T) {
	dir, _ := simRecording(t)
	eng := open(t, dir)
	want, err := report.WhatChanged(context.Background(), eng, []string{"incident-42"}, report.DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []report.DiffOptions{
		{Since: simStart.Add(-30 * time.Minute)},
		{Until: simStart.Add(2 * time.Hour)},
		{Since: simStart.Add(-time.Hour), Until: simStart.Add(time.Hour)},
	} {
		got, err := report.WhatChanged(context.Background(), eng, []string{"incident-42"}, o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		if !reflect.DeepEqual(got.Table(), want.Table()) || got.Compared() != want.Compared() {
			t.Errorf("since %s until %s:\n%s\n%v\nwithout a window:\n%s\n%v", o.Since, o.Until, got.Compared(), got.Table(), want.Compared(), want.Table())
		}
	}
	// A --baseline that starts before the recording: narrowed to its first
	// flow, in diff and in the report alike.
	early := &report.Window{Since: simStart.Add(-time.Hour), Until: simStart.Add(90 * time.Second)}
	b1, err := report.WhatChanged(context.Background(), eng, []string{"incident-42"}, report.DiffOptions{Baseline: early})
	if err != nil {
		t.Fatal(err)
	}
	exact := &report.Window{Since: b1.Baseline.Since, Until: early.Until}
	b2, err := report.WhatChanged(context.Background(), eng, []string{"incident-42"}, report.DiffOptions{Baseline: exact})
	if err != nil {
		t.Fatal(err)
	}
	if b1.Baseline.Since.Before(simStart) || !reflect.DeepEqual(b1.Table(), b2.Table()) {
		t.Errorf("--baseline from an hour before the recording: %s\n%v\nfrom its first flow:\n%v", b1.Compared(), b1.Table(), b2.Table())
	}
	if r := build(t, dir, report.Options{Baseline: early}); r.Changes == nil || !reflect.DeepEqual(r.Changes.Table(), b1.Table()) {
		t.Errorf("the report's comparison with the early baseline differs from flowtape diff's")
	}
	// The report's window too: the same as without one, and so its rates.
	whole := build(t, dir, report.Options{})
	r := build(t, dir, report.Options{Since: simStart.Add(-30 * time.Minute), Until: simStart.Add(time.Hour)})
	if r.Window != whole.Window || !reflect.DeepEqual(r.Services, whole.Services) {
		t.Errorf("the report of a window past the recording covers %s, without one %s", r.Window, whole.Window)
	}
}

// Another recording as the baseline: a steady hour against the incident.
// The services the incident broke lead, the deny policy's drops are new,
// and the sentence names the baseline's recording.
func TestWhatChangedAgainstAnotherRecording(t *testing.T) {
	dir, truth := simRecording(t)
	steady := t.TempDir()
	testutil.WriteRecording(t, steady, "steady", testutil.SimResponses(sim.Scenarios["steady"], 3, 300, simStart.Add(-time.Hour), simStart.Add(-time.Hour+2*time.Minute)))
	c, err := report.WhatChanged(context.Background(), open(t, dir), []string{"incident-42"},
		report.DiffOptions{Since: truth, BaselineEngine: open(t, steady), BaselineFrom: []string{"last-hour"}})
	if err != nil {
		t.Fatal(err)
	}
	top := strings.Join(names(c.Services)[:min(6, len(c.Services))], " ")
	for _, want := range []string{"default/paymentservice", "default/cartservice"} {
		if !strings.Contains(top, want) {
			t.Errorf("%s is not among the top changes %s", want, top)
		}
	}
	if !strings.Contains(strings.Join(names(c.NewDropReasons), " "), "POLICY_DEN") {
		t.Errorf("new drop reasons %v lack the deny policy's", names(c.NewDropReasons))
	}
	if !strings.HasPrefix(c.Compared(), "Baseline: last-hour 2026-11-25T12:00:00") || !c.Baseline.Until.Before(simStart) || !c.Incident.Since.Equal(truth) {
		t.Errorf("compared %s: want the whole of last-hour against the incident from %s", c.Compared(), truth)
	}
}

// Without a baseline and without an incident in the timeline there is
// nothing to compare with, and the error says what to give.
func TestWhatChangedNeedsABaselineOrAnIncident(t *testing.T) {
	steady := t.TempDir()
	testutil.WriteRecording(t, steady, "steady", testutil.SimResponses(sim.Scenarios["steady"], 3, 300, simStart, simStart.Add(3*time.Minute)))
	_, err := report.WhatChanged(context.Background(), open(t, steady), []string{"steady"}, report.DiffOptions{})
	if err == nil || !strings.Contains(err.Error(), "no incident found") || !strings.Contains(err.Error(), "--baseline-recording") {
		t.Errorf("err = %v, want no incident found and what to give", err)
	}
}

// Windows over an hour, both ends given: the comparison reads every
// request (an engine reads the summaries for one analysis only, and
// coverage first keeps it on the exact path), and the incident's side
// leaves a baseline of the same recording out.
func TestWhatChangedOverLongWindows(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteRecording(t, dir, "steady", testutil.SimResponses(sim.Scenarios["steady"], 5, 4, simStart, simStart.Add(150*time.Minute)))
	baseline := &report.Window{Since: simStart, Until: simStart.Add(70 * time.Minute)}
	c, err := report.WhatChanged(context.Background(), open(t, dir), []string{"steady"},
		report.DiffOptions{Since: simStart, Until: simStart.Add(150 * time.Minute), Baseline: baseline})
	if err != nil {
		t.Fatal(err)
	}
	// (its end, seconds past the recording's last flow, narrowed to it)
	end := simStart.Add(150 * time.Minute)
	if !c.Incident.Since.After(baseline.Until) || c.Incident.Until.After(end) || c.Incident.Until.Before(end.Add(-time.Minute)) {
		t.Errorf("the incident's side %s overlaps the baseline %s, or does not end at the last flow before %s", c.Incident, baseline, end)
	}
	if len(c.Appeared)+len(c.Vanished) > 0 {
		t.Errorf("steady traffic: edges appeared %v, vanished %v", names(c.Appeared), names(c.Vanished))
	}
}
