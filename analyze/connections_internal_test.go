package analyze

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// attemptsOnce reads the attempts with arrow-go, which panics on some
// damaged pages (a nil dereference in its page reader): no panic leaves
// it, and the file is then no file of single attempts (the general
// definition reads it in DuckDB, which says what is wrong). The damaged
// file is not given to DuckDB here: a page header damaged so may crash it.
func TestAttemptsOnceOfADamagedFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	sink, err := tape.NewSink(tape.SinkOptions{Dir: dir, RecordingID: "rec", Writer: "test", NotLive: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range testutil.SimResponses(sim.Scenarios["incident"], 9, 300, t0, t0.Add(40*time.Second)) {
		if f := r.GetFlow(); f != nil {
			if err := sink.WriteFlow(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "connections", "*", "*", "*.parquet"))
	if err != nil || len(files) != 1 {
		t.Fatalf("connections files: %v, %v", files, err)
	}
	if !attemptsOnce(ctx, files[0], map[int64]struct{}{}) {
		t.Fatal("the intact file's attempts are not each once: the test proves nothing")
	}
	valid, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	pages := len(valid) - 8 - int(binary.LittleEndian.Uint32(valid[len(valid)-8:]))
	scratch := filepath.Join(t.TempDir(), "attempts.parquet")
	for i := 4; i < pages; i++ {
		b := bytes.Clone(valid)
		b[i] ^= 0xff
		if err := os.WriteFile(scratch, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if panics(func() {
			_ = tape.ReadColumns(ctx, scratch, []string{"attempt"}, func(arrow.RecordBatch) error { return nil })
		}) {
			if attemptsOnce(ctx, scratch, map[int64]struct{}{}) {
				t.Errorf("byte %d changed: arrow-go panics, and attemptsOnce says each attempt is once", i)
			}
			return
		}
	}
	t.Log("no byte of the pages makes arrow-go panic: nothing to recover from")
}

func panics(f func()) (did bool) {
	defer func() { did = recover() != nil }()
	f()
	return false
}
