package analyze_test

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/tape"
)

// Where every row of derived_connections is an attempt of its own, the
// engine reads connections_single.sql's connections instead of the view's
// general ones (analyze/connections.go): the same rows, and so the same
// analyses. Each case is a shape of recording, and single says whether
// the engine may take the variant: where it may, the two definitions are
// compared; where it may not, that it does not (with the SYN at one
// instant, the variant would give 2 connections where the view gives 1).
func TestConnectionsSingleGivesTheViewsRows(t *testing.T) {
	t.Parallel() // beside TestClickHouseMatchesDuckDB: it changes no package state
	ctx := context.Background()
	sim40 := simFlows(t, 40*time.Second)
	var first20 []*flowpb.Flow
	for _, f := range sim40 {
		if f.GetTime().AsTime().Before(edgeT0.Add(20 * time.Second)) {
			first20 = append(first20, f)
		}
	}
	var samples []*flowpb.Flow
	for _, r := range testutil.SampleResponses(t) {
		if f := r.GetFlow(); f != nil {
			samples = append(samples, f)
		}
	}
	later := steadyFlows(edgeT0.Add(time.Hour), 30*time.Second, 100)
	for _, tc := range []struct {
		name   string
		write  func(t *testing.T, dir string)
		bucket time.Duration
		single bool
	}{
		{"one file, its connections opened in it", func(t *testing.T, dir string) {
			sinkRecording(t, dir, tape.SinkOptions{}, sim40, 0)
		}, 10 * time.Second, true},
		{"two files, each connection opened in its own", func(t *testing.T, dir string) {
			sinkRecording(t, dir, tape.SinkOptions{}, append(append([]*flowpb.Flow{}, sim40...), later...), 0)
		}, 10 * time.Minute, true},
		{"two sessions of the same flows (the view keeps each row once; the files hold each attempt twice)", func(t *testing.T, dir string) {
			sinkRecording(t, dir, tape.SinkOptions{RecordingID: "a"}, sim40, 0)
			sinkRecording(t, dir, tape.SinkOptions{RecordingID: "b"}, sim40, 0)
		}, 10 * time.Second, false},
		{"two sessions, one ended before the other: an attempt in both, cut", func(t *testing.T, dir string) {
			sinkRecording(t, dir, tape.SinkOptions{RecordingID: "a"}, sim40, 0)
			sinkRecording(t, dir, tape.SinkOptions{RecordingID: "b"}, first20, 0)
		}, 10 * time.Second, false},
		{"connections that go on in the next file", func(t *testing.T, dir string) {
			sinkRecording(t, dir, tape.SinkOptions{RotateRows: 700}, sim40, 0)
		}, 10 * time.Second, false},
		{"a file derived on its own: attempts unknown", func(t *testing.T, dir string) {
			writeSession(t, dir, "alone", sim40)
		}, 10 * time.Second, false},
		{"one file, a SYN at the instant its connection's row before it ended", func(t *testing.T, dir string) {
			// the writer names both attempts alike (by the SYN's time)
			var g edgeFlows
			c, s := "10.0.0.1", "10.0.0.2"
			sinkRecording(t, dir, tape.SinkOptions{}, []*flowpb.Flow{
				g.tcp(time.Millisecond, "a", c, 40000, s, 80, true, false, false, "client", "server"),
				g.tcp(time.Millisecond, "a", c, 40000, s, 80, false, true, false, "client", "server"),
				g.tcp(time.Millisecond, "a", c, 40000, s, 80, true, false, false, "client", "server"),
				g.tcp(2*time.Second, "a", s, 80, c, 40000, true, true, true, "server", "client"),
			}, 0)
		}, 10 * time.Second, false},
		{"the real samples", func(t *testing.T, dir string) {
			sinkRecording(t, dir, tape.SinkOptions{}, samples, 0)
		}, 24 * time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.write(t, dir)
			open := func(view bool) *analyze.Engine {
				e, err := analyze.Open(ctx, []string{dir}, analyze.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { e.Close() })
				if view {
					e.ViewConnections()
				}
				return e
			}
			got, want := open(false), open(true)
			wantRows, err := want.Query(ctx, "SELECT * FROM connections ORDER BY ALL")
			if err != nil {
				t.Fatal(err)
			}
			gotRows, err := got.Query(ctx, "SELECT * FROM connections ORDER BY ALL")
			if err != nil {
				t.Fatal(err)
			}
			if got.SingleConnections() != tc.single || want.SingleConnections() {
				t.Fatalf("connections_single.sql read: %v, want %v (and by the engine told not to: %v)",
					got.SingleConnections(), tc.single, want.SingleConnections())
			}
			if len(wantRows.Rows) == 0 {
				t.Fatal("no connections: the comparison proves nothing")
			}
			if !reflect.DeepEqual(gotRows, wantRows) {
				t.Errorf("connections differ: %d rows, want %d", len(gotRows.Rows), len(wantRows.Rows))
			}
			for _, name := range []string{"services", "graph", "errors", "timeline"} {
				p := analyze.Params{Bucket: tc.bucket}
				w, err := want.Run(ctx, name, p)
				if err != nil {
					t.Fatal(err)
				}
				g, err := got.Run(ctx, name, p)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(g, w) {
					t.Errorf("%s differs", name)
				}
			}
		})
	}
}

// A damaged connections file where the variant would apply: the general
// definition reads it, and DuckDB's error names it and what to run.
// (TestAttemptsOnceOfADamagedFile: what arrow-go panics on.)
func TestConnectionsSingleOfADamagedFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sinkRecording(t, dir, tape.SinkOptions{}, simFlows(t, 40*time.Second), 0)
	files, err := filepath.Glob(filepath.Join(dir, "connections", "*", "*", "*.parquet"))
	if err != nil || len(files) != 1 {
		t.Fatalf("connections files: %v, %v", files, err)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// the pages, not the footer (its length, then PAR1, ends the file)
	footer := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
	for i := 4; i < len(b)-8-footer; i += 7 {
		b[i] ^= 0x5a
	}
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := analyze.Open(ctx, []string{dir}, analyze.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = e.Run(ctx, "services", analyze.Params{Summaries: analyze.SummariesNever})
	if err == nil || !strings.Contains(err.Error(), files[0]) || !strings.Contains(err.Error(), "flowtape reindex") {
		t.Errorf("services: %v; want an error naming %s and flowtape reindex", err, files[0])
	}
}
