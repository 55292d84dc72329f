package main

import (
	"strings"
	"testing"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/tape"
)

// flowtape compact merges a session's small files and changes no answer.
func TestCompactCommand(t *testing.T) {
	dir := t.TempDir() + "/rec"
	d, err := tape.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The samples as one recorder session whose files end every 50 rows.
	s, err := tape.NewSink(tape.SinkOptions{Dir: dir, RecordingID: "0123abcd", Writer: "test", RotateRows: 50})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range testutil.SampleResponses(t) {
		if f := r.GetFlow(); f != nil {
			err = s.WriteFlow(f)
		} else {
			err = s.WriteEvent(r)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	d.Close()
	before, _ := tape.FindFiles(dir)
	analyses := func() string {
		var b strings.Builder
		for _, a := range []string{"services", "graph", "errors", "drops", "dns", "coverage"} {
			out, errOut, code := runCmd(t, "analyze", a, dir, "--format", "json")
			if code != 0 {
				t.Fatalf("analyze %s: exit %d: %s", a, code, errOut)
			}
			b.WriteString(out)
		}
		return b.String()
	}
	want := analyses()
	out, errOut, code := runCmd(t, "compact", dir)
	if code != 0 || !strings.HasPrefix(out, "compacted ") {
		t.Fatalf("compact: exit %d\n%s%s", code, out, errOut)
	}
	after, _ := tape.FindFiles(dir)
	if len(after.Flows) >= len(before.Flows) {
		t.Errorf("%d flow files after compact, %d before", len(after.Flows), len(before.Flows))
	}
	if got := analyses(); got != want {
		t.Errorf("the analyses changed with compaction:\n%s\nbefore:\n%s", got, want)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"compact", dir, "--grace", "-1s"}, 2, "invalid --grace -1s"},
		{[]string{"compact", t.TempDir() + "/nope"}, 1, "not a recording directory"},
		{[]string{"compact"}, 2, "accepts 1 arg"},
	} {
		wantOneLineError(t, tc.args, tc.code, tc.want)
	}
}
