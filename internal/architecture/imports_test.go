package architecture

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/flowtape/flowtape/internal/testutil"
)

const module = "github.com/flowtape/flowtape/"

// rule says which of the project's packages a package may import (allow,
// when set) or must not (deny). Packages are module-relative; a trailing
// "/..." matches a package and every package below it.
type rule struct {
	pkg         string
	allow, deny []string
	why         string
}

var rules = []rule{
	{pkg: "schema", allow: []string{}, why: "the row format knows no disk, transport or engine"},
	{pkg: "tape", allow: []string{"schema", "internal/..."}, why: "the store knows only the row format"},
	{pkg: "record", deny: []string{"importer", "analyze", "replay", "report"}, why: "two independent sources; recording never waits on analysis"},
	{pkg: "importer", deny: []string{"record", "analyze", "replay", "report"}, why: "two independent sources"},
	{pkg: "analyze", deny: []string{"record", "importer", "replay", "report"}, why: "analysis works on files alone"},
	{pkg: "replay", deny: []string{"record", "importer", "analyze", "report"}, why: "replay works on files alone"},
	{pkg: "sim", deny: []string{"record", "tape", "importer", "analyze", "replay", "report"}, why: "the simulator is independent of its clients, and the truth must not come from the analyzer"},
	{pkg: "report", deny: []string{"schema", "tape", "record", "importer", "replay"}, why: "the report reads rows only through analyze"},
	{pkg: "printer", allow: []string{}, why: "output formats know no data source"},
}

func matches(pattern, pkg string) bool {
	if p, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == p || strings.HasPrefix(pkg, p+"/")
	}
	return pkg == pattern
}

// imports lists every package of the module with the project's packages
// its non-test files import, as go list reads them.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", "./...")
	cmd.Dir = testutil.Root()
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		name, ok := strings.CutPrefix(p.ImportPath, module)
		if !ok {
			continue
		}
		var own []string
		for _, imp := range p.Imports {
			if o, ok := strings.CutPrefix(imp, module); ok {
				own = append(own, o)
			}
		}
		pkgs[name] = own
	}
	return pkgs
}

// The import rules of the README hold for the product's code (tests may
// use anything: they wire real recorders to real analyses).
func TestImportRules(t *testing.T) {
	pkgs := imports(t)
	for _, r := range rules {
		imps, ok := pkgs[r.pkg]
		if !ok {
			t.Errorf("no package %s: the rules name packages that are gone", r.pkg)
			continue
		}
		for _, imp := range imps {
			if r.allow != nil && !slices.ContainsFunc(r.allow, func(a string) bool { return matches(a, imp) }) {
				t.Errorf("%s imports %s; it may import only %v (%s)", r.pkg, imp, r.allow, r.why)
			}
			if slices.ContainsFunc(r.deny, func(d string) bool { return matches(d, imp) }) {
				t.Errorf("%s imports %s, which it must not (%s)", r.pkg, imp, r.why)
			}
		}
	}
	// cmd only wires: no package imports a command.
	for pkg, imps := range pkgs {
		if slices.ContainsFunc(imps, func(i string) bool { return strings.HasPrefix(i, "cmd/") }) {
			t.Errorf("%s imports a command", pkg)
		}
	}
}
