package tape_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	observerpb "github.com/cilium/cilium/api/v1/observer"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// A damaged page of a flow file is an error naming the file, for every
// reader of flows (replay and export read through Scan, analyses' catalogs
// and reindex through ReadColumns), never a panic: arrow-go panics on some
// damaged page headers (see damaged.go), and the readers decode in
// goroutines of their own, where a panic would end the process; it
// panics on some damaged footers too. A page whose data no longer
// decompresses (or fails zstd's checksum) is the same error. So are the
// summary files a rollup reads.
func TestReadersOfADamagedPage(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	simSession(t, src, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), 1, 300, 100000)
	files, err := tape.FindFiles(src)
	if err != nil || len(files.Flows) != 1 {
		t.Fatalf("flow files: %v, %v", files.Flows, err)
	}
	rel, err := filepath.Rel(src, files.Flows[0])
	if err != nil {
		t.Fatal(err)
	}
	named := func(t *testing.T, what string, err error, path string) {
		t.Helper()
		var ue *tape.UnreadableError
		if !errors.As(err, &ue) || ue.Path != path {
			t.Errorf("%s: %v, want a tape.UnreadableError naming %s", what, err, path)
		}
	}
	for _, c := range []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"a page header arrow-go panics on", func(t *testing.T, path string) {
			testutil.DamagePageHeader(t, path, "time")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !testutil.ArrowPanics(b) {
				t.Fatal("arrow-go does not panic on the damaged header: the case proves nothing")
			}
		}},
		{"a footer arrow-go panics on", func(t *testing.T, path string) {
			testutil.DamageFooter(t, path)
		}},
		{"a page whose data fails zstd's checksum", func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, end := testutil.FirstPage(t, path, "time")
			b[end-1] ^= 0xff
			if testutil.ArrowPanics(b) {
				t.Fatal("arrow-go panics on this damage: the case is the one above")
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, src)
			path := filepath.Join(dir, rel)
			c.damage(t, path)
			if c.name == "a footer arrow-go panics on" {
				_, err := tape.Stat(path)
				named(t, "Stat", err, path)
			}
			err := tape.Scan(ctx, tape.Files{Flows: []string{path}}, tape.Window{}, func(*observerpb.GetFlowsResponse) error { return nil })
			named(t, "Scan", err, path)
			named(t, "ReadColumns", tape.ReadColumns(ctx, path, schema.DeriveColumns, func(arrow.RecordBatch) error { return nil }), path)
			_, err = tape.Reindex(ctx, dir, tape.ReindexOptions{Writer: "test", Force: true})
			named(t, "Reindex", err, path)
		})
	}

	t.Run("a summary file's page header arrow-go panics on", func(t *testing.T) {
		sums, err := filepath.Glob(filepath.Join(src, schema.KindSummary, "*", "*", "*.parquet"))
		if err != nil || len(sums) != 1 {
			t.Fatalf("summary files: %v, %v", sums, err)
		}
		rel, err := filepath.Rel(src, sums[0])
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(copyDir(t, src), rel)
		testutil.DamagePageHeader(t, path, "grain")
		if b, err := os.ReadFile(path); err != nil || !testutil.ArrowPanics(b) {
			t.Fatalf("arrow-go does not panic on the damaged header (%v): the case proves nothing", err)
		}
		err = tape.WriteRollup(ctx, filepath.Join(t.TempDir(), "rollup.parquet"), []string{path}, nil)
		named(t, "WriteRollup", err, path)
	})
}
