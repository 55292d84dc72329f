package main

import (
	"encoding/json"
	"io"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/flowtape/flowtape/internal/testutil"
)

// The recorder build (-tags recorder) links neither DuckDB nor the
// analyses, builds without cgo (the image is static), and has exactly the
// recorder's verbs: what keeps a recorder on every node small.
func TestRecorderBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	list := exec.Command("go", "list", "-deps", "-tags", "recorder", "./cmd/flowtape")
	list.Dir = testutil.Root()
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list -tags recorder: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, no := range []string{"github.com/duckdb/duckdb-go/v2", "github.com/flowtape/flowtape/analyze", "github.com/flowtape/flowtape/report",
		"github.com/flowtape/flowtape/replay", "github.com/flowtape/flowtape/sim", "github.com/ClickHouse/clickhouse-go/v2"} {
		if slices.Contains(deps, no) {
			t.Errorf("the recorder build links %s", no)
		}
	}
	for _, yes := range []string{"github.com/flowtape/flowtape/record", "github.com/flowtape/flowtape/tape"} {
		if !slices.Contains(deps, yes) {
			t.Errorf("the recorder build lacks %s", yes)
		}
	}

	bin := testutil.FlowtapeRecorderBinary(t)
	help, err := exec.Command(bin, "--help").Output()
	if err != nil {
		t.Fatal(err)
	}
	var verbs []string
	_, cmds, _ := strings.Cut(string(help), "Available Commands:")
	cmds, _, _ = strings.Cut(cmds, "\n\n")
	for _, m := range regexp.MustCompile(`(?m)^  (\S+)`).FindAllStringSubmatch(cmds, -1) {
		if m[1] != "help" && m[1] != "completion" {
			verbs = append(verbs, m[1])
		}
	}
	if !slices.Equal(verbs, recorderVerbs) {
		t.Errorf("the recorder build's verbs: %v, want %v", verbs, recorderVerbs)
	}
	b, err := exec.Command(bin, "version", "--format", "json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v []map[string]any
	if err := json.Unmarshal(b, &v); err != nil || len(v) != 1 || v[0]["build"] != "recorder" {
		t.Errorf("flowtape version --format json of the recorder build: %s (%v)", b, err)
	}
	// Every other verb of the full build (this test's) says where it is.
	for _, c := range newRootCmd(io.Discard, io.Discard).Commands() {
		verb := c.Name()
		if slices.Contains(recorderVerbs, verb) || verb == "help" || verb == "completion" {
			continue
		}
		msg, err := exec.Command(bin, verb, "--help").CombinedOutput()
		if err == nil || !strings.Contains(string(msg), verb+" is not in the recorder build") {
			t.Errorf("flowtape %s in the recorder build: %v, %s", verb, err, msg)
		}
	}
}
