package analyze

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// DuckDB reports some damaged pages without naming the file ("Invalid
// Error: ..."): blame finds it, and a flow file is a tape.UnreadableError,
// which the command gives the advice of every unreadable flow file. (The
// file here is cut short, which DuckDB reads safely: a damaged page header
// can crash it.)
func TestBlameNamesAnUnreadableFlowFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	testutil.WriteRecording(t, dir, "rec", testutil.SimResponses(sim.Scenarios["incident"], 3, 50, t0, t0.Add(10*time.Second)))
	e, err := Open(ctx, []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if len(e.files.Flows) != 1 {
		t.Fatalf("flow files: %v", e.files.Flows)
	}
	cut := e.files.Flows[0]
	st, err := os.Stat(cut)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(cut, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	duck := errors.New("query: Invalid Error: Variable-length int over 10 bytes")
	err = e.blame(ctx, duck)
	var ue *tape.UnreadableError
	if !errors.As(err, &ue) || ue.Path != cut || !strings.Contains(err.Error(), duck.Error()) {
		t.Errorf("blame: %v, want a tape.UnreadableError naming %s, with DuckDB's error", err, cut)
	}
}
