package tape_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// A requests file keeps the rows it did not settle (open, or
// seen_by_server unknown) in row groups of their own: the summary path
// reads those alone, and DuckDB skips the others' columns (the incident's
// broken edge over 10M flows: 0.46 -> 0.14 s of CPU). Its row groups are
// full but for the last of each kind: not a full one and a remainder of a
// few rows for each time a batch fills a kind (53 row groups for the
// 1M-flow benchmark's 449k requests, where 30 hold them).
func TestUnsettledRequestsInRowGroupsOfTheirOwn(t *testing.T) {
	bin := testutil.FlowtapeBinary(t)
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 10, 0, 0, time.UTC)
	const groupRows = 10
	sink, err := tape.NewSink(tape.SinkOptions{Dir: dir, RecordingID: "cccccccc", Writer: "test", RowGroupRows: groupRows, NotLive: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range testutil.SimResponses(sim.Scenarios["incident"], 5, 0.5, start, start.Add(20*time.Minute)) {
		if err := sink.WriteFlow(r.GetFlow()); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	glob := strings.ReplaceAll(filepath.Join(dir, "requests", "*", "*", "*.parquet"), "'", "''")
	// each row with its row group, from the row groups' row counts
	q := `WITH g AS (SELECT DISTINCT file_name, row_group_id, row_group_num_rows AS n FROM parquet_metadata('` + glob + `')),
b AS (SELECT file_name, row_group_id, sum(n) OVER w - n AS lo, sum(n) OVER w AS hi FROM g
      WINDOW w AS (PARTITION BY file_name ORDER BY row_group_id)),
r AS (SELECT filename, file_row_number AS i, open OR seen_by_server IS NULL AS u
      FROM read_parquet('` + glob + `', filename = true, file_row_number = true)),
k AS (SELECT b.file_name, b.row_group_id, bool_or(u) AS any_u, bool_and(u) AS all_u
      FROM r JOIN b ON r.filename = b.file_name AND r.i >= b.lo AND r.i < b.hi GROUP BY ALL),
partial_groups AS (SELECT file_name, count(*) FILTER (n <> ` + strconv.Itoa(groupRows) + `) AS s FROM g GROUP BY ALL)
SELECT count(*) FILTER (any_u) || ' ' || count(*) FILTER (any_u AND NOT all_u) || ' ' || count(*)
    || ' ' || (SELECT max(s) FROM partial_groups) || ' ' || (SELECT count(*) FROM partial_groups) FROM k`
	out, err := exec.Command(bin, "query", dir, q, "--format", "csv").CombinedOutput()
	if err != nil {
		t.Fatalf("flowtape query: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var some, mixed, groups, short, files int
	if _, err := fmt.Sscan(lines[len(lines)-1], &some, &mixed, &groups, &short, &files); err != nil {
		t.Fatalf("query output %q: %v", out, err)
	}
	if some == 0 || some == groups {
		t.Fatalf("%d of %d row groups hold unsettled rows: want some, not all (the scenario's broken edge)", some, groups)
	}
	if mixed > 0 {
		t.Errorf("%d of the %d row groups with unsettled rows hold settled ones too", mixed, some)
	}
	if groups < 3*files+3 || short > 3 {
		t.Errorf("%d row groups in %d requests files, up to %d in a file of other than %d rows: want full groups but the last of each of three kinds",
			groups, files, short, groupRows)
	}
}
