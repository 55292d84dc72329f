package analyze_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// The types the schema reference documents are the ones DuckDB reads from
// the files flowtape writes, and timestamps keep nanoseconds.
func TestDuckDBReadsDocumentedTypes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flows.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := tape.NewFileWriter(schema.Flows, f, tape.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	resps := testutil.LoadResponses(t, testutil.Testdata("samples", "basic-sample-5-http-flows.json"))
	for _, r := range resps {
		if err := w.Write(r.GetFlow()); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	db := analyze.OpenDuckDB(t)
	rows, err := db.QueryContext(context.Background(), "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?))", path)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var n, typ string
		if err := rows.Scan(&n, &typ); err != nil {
			t.Fatal(err)
		}
		got[n] = typ
	}
	// Columns the files do not store have their type in the flows view.
	e, err := analyze.Open(context.Background(), []string{path}, analyze.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	view, err := e.Query(context.Background(), "SELECT column_name, column_type FROM (DESCRIBE flows)")
	if err != nil {
		t.Fatal(err)
	}
	inView := map[string]string{}
	for _, r := range view.Rows {
		inView[r[0].(string)] = r[1].(string)
	}
	for _, c := range schema.Reference() {
		if c.Table != schema.KindFlows {
			continue
		}
		typ := got[c.Name]
		if c.Computed {
			if _, stored := got[c.Name]; stored {
				t.Errorf("column %s: the file stores it, the reference says the views compute it", c.Name)
			}
			typ = inView[c.Name]
		}
		if typ != c.Type {
			t.Errorf("column %s: DuckDB reads %q, the reference says %q", c.Name, typ, c.Type)
		}
	}
	var ns int64
	if err := db.QueryRow("SELECT epoch_ns(max(time)) FROM read_parquet(?)", path).Scan(&ns); err != nil {
		t.Fatal(err)
	}
	if want := resps[4].GetFlow().GetTime().AsTime().UnixNano(); ns != want {
		t.Errorf("time = %d ns, want %d: precision lost", ns, want)
	}
}
