package chdb_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/flowtape/flowtape/internal/chdb"
	"github.com/flowtape/flowtape/internal/testutil"
)

// A session's directory (clickhouse-embedded-<uuid> in the temp
// directory) is gone once the session is closed, and a query after Close
// starts a new session: every flowtape --engine chdb used to leave one.
func TestCloseRemovesTheSessionDirectory(t *testing.T) {
	testutil.NeedCHDB(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where chDB makes it
	sessions := func() []string {
		m, err := filepath.Glob(filepath.Join(tmp, "clickhouse-embedded-*"))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for i := range 2 {
		out, err := chdb.Query(t.Context(), "SELECT 40 + 2", "CSV")
		if err != nil || string(out) != "42\n" {
			t.Fatalf("query %d: %q, %v", i, out, err)
		}
		if got := sessions(); len(got) != 1 {
			t.Fatalf("query %d: session directories %v, want one", i, got)
		}
		chdb.Close()
		if got := sessions(); len(got) != 0 {
			entries, _ := os.ReadDir(got[0])
			t.Fatalf("after Close %d: %v remain (%d entries)", i, got, len(entries))
		}
	}
}
