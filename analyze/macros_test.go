package analyze_test

import (
	"context"
	"testing"

	"github.com/flowtape/flowtape/analyze"
)

// services counts its dropped packets by reason in one aggregate, summing
// each reason's rows in a list (ft_sum_by_key, then ft_counts_list): the
// string must be the one ft_counts_of gives over rows grouped by reason
// first, as the drops view's counts were: most first, ties by name, each
// reason once.
func TestSummedCountsAsCountsOf(t *testing.T) {
	ctx := context.Background()
	db := analyze.OpenDuckDB(t)
	macros, err := analyze.SQL.ReadFile("sql/macros.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, string(macros)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, rows string // rows: VALUES (reason, n)
		want       string
	}{
		{"one reason over rows", "('POLICY_DENY', 3), ('POLICY_DENY', 4)", "POLICY_DENY=7"},
		{"most first", "('A', 1), ('B', 5), ('A', 1), ('C', 2)", "B=5,A=2,C=2"},
		{"ties by name", "('Z', 2), ('M', 1), ('M', 1), ('A', 2)", "A=2,M=2,Z=2"},
		{"big counts", "('X', 9000000000), ('Y', 1), ('X', 9000000000)", "X=18000000000,Y=1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var summed, grouped string
			q := `WITH r(reason, n) AS (VALUES ` + c.rows + `)
SELECT ft_counts_list(ft_sum_by_key(list({k: reason, n: n::BIGINT}))),
    (SELECT ft_counts_of(reason, n) FROM (SELECT reason, sum(n)::BIGINT AS n FROM r GROUP BY reason))
FROM r`
			if err := db.QueryRowContext(ctx, q).Scan(&summed, &grouped); err != nil {
				t.Fatal(err)
			}
			if summed != c.want || grouped != c.want {
				t.Errorf("summed in a list %q, grouped first %q; want %q", summed, grouped, c.want)
			}
		})
	}
}
