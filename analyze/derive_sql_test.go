package analyze_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/schema"
)

// Go derives, when it writes a file, what the SQL of flowtape computed
// over the flows before (testdata/oracle): the path of a URL (ft_path),
// and here, against the oracle's own SQL, the workload a pod name
// implies.
func TestDerivationMatchesTheSQL(t *testing.T) {
	ctx := context.Background()
	db := analyze.OpenDuckDB(t)
	macros, _, err := oracleSQL()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{analyze.VariablesSQL(), macros, oracleNames[:strings.Index(oracleNames, "CREATE OR REPLACE VIEW")]} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	one := func(q, arg string) string {
		t.Helper()
		var v sql.NullString
		if err := db.QueryRowContext(ctx, q, arg).Scan(&v); err != nil {
			t.Fatalf("%s %q: %v", q, arg, err)
		}
		return v.String
	}
	for _, url := range []string{
		"http://frontend:80/cart?x=1#top", "http://productcatalogservice:3550/hipstershop.ProductCatalogService/ListProducts",
		"https://a.b/", "http://host", "/just/a/path?q", "no-scheme.example/x#f", "http://h:1/p?", "http://h:1/?q", "", "?",
		"http://h/a%2Fb", "http://h/ü/ä?ö", "ftp://user:pw@h/x", "http://h//double",
	} {
		if got, want := schema.URLPath(url), one("SELECT ft_path(?)", url); got != want {
			t.Errorf("URLPath(%q) = %q, ft_path %q", url, got, want)
		}
	}
	for _, pod := range []string{
		"productpage-v1-6b746f74dc-ffh56", "kube-dns-b4f5c58c7-7qmtw", "node-local-dns-6jnx9", "redis-0", "web-12",
		"cilium-x7k2p", "my-pod", "nginx", "a-b", "cron-28347561-abcde", "old-1234567890-bcdfg", "x-abcde", "x-bcdfg",
		"-bcdfg", "bcdfg-", "a--bcdfg", "app-v2-5d9f8b7c6-xx2zz", "db-cluster-2", "job-9zz99", "zk-aaaa",
	} {
		if got, want := schema.InferWorkload(pod), one("SELECT oracle_inferred(?)", pod); got != want {
			t.Errorf("InferWorkload(%q) = %q, the oracle's SQL %q", pod, got, want)
		}
	}
}
