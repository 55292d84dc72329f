package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/sim"
)

// flowtape diff over the simulator's incident, as a user runs it: the
// services the incident broke lead the ranking, the deny policy's drops
// are a new drop reason, the table shows what a terminal fits and -o wide
// and json the numbers before and after, and stderr says what was
// compared with what.
func TestDiffCommand(t *testing.T) {
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	scen := sim.Scenarios["incident"]
	dir := t.TempDir()
	testutil.WriteRecording(t, dir, "incident", testutil.SimResponses(scen, 7, 300, start, start.Add(4*time.Minute)))
	steady := t.TempDir()
	testutil.WriteRecording(t, steady, "steady", testutil.SimResponses(sim.Scenarios["steady"], 3, 300, start.Add(-time.Hour), start.Add(-time.Hour+2*time.Minute)))
	incident := start.Add(scen.IncidentAt).Format(time.RFC3339)

	for _, tc := range []struct {
		name       string
		args       []string
		comparedTo string
	}{
		{"the window before the incident", nil, "Baseline: the window before the incident 2026-11-25T13:00:00Z"},
		{"--baseline", []string{"--baseline", "2026-11-25T13:00:00Z..2026-11-25T13:01:30Z"}, "Baseline (--baseline) 2026-11-25T13:00:00Z to 2026-11-25T13:01:30Z"},
		{"--baseline-recording", []string{"--baseline-recording", steady, "--since", incident}, "Baseline: " + steady + " 2026-11-25T12:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := runCmd(t, append([]string{"diff", dir, "-o", "json"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if !strings.Contains(stderr, tc.comparedTo) {
				t.Errorf("stderr %q does not say %q", stderr, tc.comparedTo)
			}
			var rows []map[string]any
			if err := json.Unmarshal([]byte(out), &rows); err != nil {
				t.Fatalf("json: %v\n%s", err, out)
			}
			var services, dropReasons []string
			for _, r := range rows {
				switch r["change"] {
				case "service":
					services = append(services, r["name"].(string))
					if _, ok := r["error_rate_before"]; !ok {
						t.Errorf("json row %v lacks the numbers before", r)
					}
				case "new drop reason":
					dropReasons = append(dropReasons, r["name"].(string))
				}
			}
			top := strings.Join(services[:min(6, len(services))], " ")
			for _, want := range []string{"default/paymentservice", "default/cartservice"} {
				if !strings.Contains(top, want) {
					t.Errorf("%s is not among the top changes %s", want, top)
				}
			}
			if !strings.Contains(strings.Join(dropReasons, " "), "POLICY_DEN") {
				t.Errorf("new drop reasons %v lack the deny policy's", dropReasons)
			}
		})
	}
	for format, header := range map[string]string{
		"table": "CHANGE  ", "wide": "ERROR_RATE_BEFORE", "csv": "change,name,what,score,error_rate_before", "markdown": "| change | name |"} {
		out, stderr, code := runCmd(t, "diff", dir, "-o", format)
		if code != 0 {
			t.Fatalf("-o %s: exit %d: %s", format, code, stderr)
		}
		first := firstLine(out)
		if !strings.Contains(first, header) || (format == "table" && strings.Contains(first, "BEFORE")) {
			t.Errorf("-o %s: header %q, want %q", format, first, header)
		}
	}
}

func TestDiffBadInput(t *testing.T) {
	dir, _ := sampleRecording(t, "basic-sample-10-flows.json")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad format", []string{"diff", dir, "-o", "dot"}, exitUsage, `--format "dot"`},
		{"bad baseline", []string{"diff", dir, "--baseline", "yesterday"}, exitUsage, "give SINCE..UNTIL"},
		{"top 0", []string{"diff", dir, "--top", "0"}, exitUsage, "--top 0"},
		{"backwards", []string{"diff", dir, "--since", "2026-11-25T13:00:00Z", "--until", "2026-11-25T12:00:00Z"}, exitUsage, "is not before --until"},
		{"no incident", []string{"diff", dir}, exitError, "no incident found"},
		{"empty baseline", []string{"diff", dir, "--baseline", "2020-01-01T00:00:00Z..2020-01-01T01:00:00Z"}, exitError,
			"--baseline 2020-01-01T00:00:00Z to 2020-01-01T01:00:00Z: " + dir + ": no flows in the window"},
		{"empty incident side", []string{"diff", dir, "--since", "2020-01-01T00:00:00Z", "--until", "2020-01-01T01:00:00Z"}, exitError, "no flows in the window"},
		{"baseline covers all", []string{"diff", dir, "--baseline", "2021-01-01T00:00:00Z..2022-01-01T00:00:00Z"}, exitError, "covers the whole window"},
		{"missing baseline recording", []string{"diff", dir, "--baseline-recording", filepath.Join(dir, "nope")}, exitError, "--baseline-recording"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantOneLineError(t, tc.args, tc.code, tc.want) })
	}
}
