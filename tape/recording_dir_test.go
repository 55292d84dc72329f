package tape_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowtape/flowtape/tape"
)

// The commands that change a recording (recover, compact, reindex) refuse
// a directory that is not one, naming it, before they lock it: pointed at
// an empty directory or a recording's parent, they neither report having
// done nothing nor leave a lock file behind. A directory a recorder was
// killed in before it wrote a row (only its lock) is still recovered.
func TestCommandsRefuseADirectoryThatIsNoRecording(t *testing.T) {
	ops := map[string]func(dir string) error{
		"recover": func(dir string) error { _, err := tape.Recover(dir, "test"); return err },
		"compact": func(dir string) error {
			_, err := tape.Compact(context.Background(), dir, tape.CompactOptions{Writer: "test"})
			return err
		},
		"reindex": func(dir string) error {
			_, err := tape.Reindex(context.Background(), dir, tape.ReindexOptions{Writer: "test"})
			return err
		},
	}
	cases := []struct {
		name    string
		missing bool     // the directory does not exist
		files   []string // made in it; a trailing / makes a directory
		want    string   // in the error
	}{
		{"empty", false, nil, "not a flowtape recording"},
		{"other files", false, []string{"a.txt", "notes/"}, "not a flowtape recording"},
		{"a recording's parent", false, []string{"incident-42/"}, "not a flowtape recording"},
		{"missing", true, nil, "does not exist"},
	}
	for op, run := range ops {
		for _, c := range cases {
			t.Run(op+"/"+c.name, func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "rec")
				if !c.missing {
					if err := os.Mkdir(dir, 0o700); err != nil {
						t.Fatal(err)
					}
				}
				for _, f := range c.files {
					p := filepath.Join(dir, f)
					var err error
					if strings.HasSuffix(f, "/") {
						err = os.Mkdir(p, 0o700)
					} else {
						err = os.WriteFile(p, []byte("x"), 0o600)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				err := run(dir)
				if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), dir) {
					t.Fatalf("%s %s: error %v, want one naming the directory and saying %q", op, c.name, err, c.want)
				}
				if _, err := os.Stat(filepath.Join(dir, ".lock")); err == nil {
					t.Errorf("%s %s: left a lock file in a directory that is no recording", op, c.name)
				}
			})
		}
	}
	// Only the lock of a recorder killed at its start: nothing to recover,
	// and no error.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".lock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := tape.Recover(dir, "test"); err != nil || st.Files != 0 {
		t.Errorf("recover of a directory holding only a recorder's lock: %+v, %v", st, err)
	}
}
