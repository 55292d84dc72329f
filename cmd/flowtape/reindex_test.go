package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowtape/flowtape/schema"
)

// A derived file missing, damaged or of a newer version is one line
// naming it and what to run; after that, the analyses give what they gave
// before, never a number of fewer files. A recording without derived
// tables at all (written by flowtape before them) gets them with reindex.
func TestDerivedFilesBadInputAndReindex(t *testing.T) {
	dir := importSamples(t)
	want, errOut, code := runCmd(t, "analyze", "services", dir, "--format", "json")
	if code != 0 || len(want) < 100 {
		t.Fatalf("analyze services: exit %d, %s%s", code, want, errOut)
	}
	kindFile := func(d, kind string) string {
		t.Helper()
		files, err := filepath.Glob(filepath.Join(d, kind, "*", "*", "*.parquet"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no %s files in %s: %v", kind, d, err)
		}
		return files[0]
	}
	copyOf := func() string {
		t.Helper()
		d := filepath.Join(t.TempDir(), "rec")
		if err := os.CopyFS(d, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tc := range []struct {
		name  string
		edit  func(d string) (named string)
		want  []string
		force bool // the footers are fine: reindex --force
	}{
		{"missing", func(d string) string {
			p := kindFile(d, schema.KindRequests)
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			return p
		}, []string{"is missing"}, false},
		{"truncated", func(d string) string {
			p := kindFile(d, schema.KindConnections)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b[:len(b)/2], 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, []string{"not a readable Parquet file"}, false},
		{"newer", func(d string) string {
			p := kindFile(d, schema.KindTraffic)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			// The footer's derived version, as a newer flowtape writes it:
			// the value after the key (a length of 1, then the digit).
			i := bytes.LastIndex(b, []byte(schema.MetaDerivedVersion))
			j := i + bytes.Index(b[i:], []byte{1, byte('0' + schema.DerivedVersion)})
			b[j+1] = '9'
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, []string{"newer flowtape (derived version 9", "use that flowtape"}, false},
		{"damaged page", func(d string) string {
			p := kindFile(d, schema.KindTraffic)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			// the pages, not the footer (its length, then PAR1, ends the file)
			footer := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
			for i := 4; i < len(b)-8-footer; i += 7 {
				b[i] ^= 0x5a
			}
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, []string{"is damaged", "reindex --force"}, true},
		{"none", func(d string) string {
			for _, kind := range schema.DerivedKinds {
				if err := os.RemoveAll(filepath.Join(d, kind)); err != nil {
					t.Fatal(err)
				}
			}
			return d
		}, []string{"no derived tables"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := copyOf()
			named := tc.edit(d)
			for _, analysis := range []string{"services", "coverage", "timeline"} {
				// (the exact path: the summaries' would not read the damaged page)
				_, errOut, code := runCmd(t, "analyze", analysis, d, "--summaries", "never")
				msg := strings.TrimSpace(errOut)
				ok := code == 1 && !strings.Contains(msg, "\n") && strings.Contains(msg, named) &&
					(strings.Contains(msg, "flowtape reindex "+d) || tc.force && strings.Contains(msg, "flowtape reindex --force "+d))
				for _, w := range tc.want {
					ok = ok && strings.Contains(msg, w)
				}
				if !ok {
					t.Errorf("analyze %s: exit %d, %q; want exit 1 and one line naming %s, %q and flowtape reindex", analysis, code, msg, named, tc.want)
				}
			}
			// The flows alone still answer.
			if out, errOut, code := runCmd(t, "query", d, "SELECT count(*) AS n FROM flows", "--format", "csv"); code != 0 || !strings.Contains(out, "768") {
				t.Errorf("query of the flows: exit %d, %s%s", code, out, errOut)
			}
			args := []string{"reindex", d}
			if tc.force {
				args = append(args, "--force")
			}
			if out, errOut, code := runCmd(t, args...); code != 0 || !strings.Contains(out, "reindexed "+d) {
				t.Fatalf("reindex: exit %d, %s%s", code, out, errOut)
			}
			got, errOut, code := runCmd(t, "analyze", "services", d, "--format", "json")
			if code != 0 || got != want {
				t.Errorf("after reindex: exit %d, %s\n%s\nwant\n%s", code, errOut, got, want)
			}
			// Reindexed, nothing is left to do.
			if out, _, _ := runCmd(t, "reindex", d); !strings.Contains(out, "of 0 flow files") {
				t.Errorf("reindex again: %s; want nothing to do", out)
			}
		})
	}
}
