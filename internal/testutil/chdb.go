package testutil

import (
	"os"
	"testing"

	"github.com/flowtape/flowtape/internal/chdb"
)

// NeedCHDB skips a test without libchdb.so, unless the run requires it
// (make test installs it and sets FLOWTAPE_REQUIRE_CHDB=1): then its
// absence fails the test.
func NeedCHDB(t testing.TB) {
	t.Helper()
	if _, err := chdb.Find(); err != nil {
		if os.Getenv("FLOWTAPE_REQUIRE_CHDB") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}
