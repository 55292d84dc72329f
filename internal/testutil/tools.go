package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	toolMu    sync.Mutex
	toolPaths = map[string]string{}
)

// tools are the real programs tests run, each built from a separate module
// under tools/ (so that flowtape's go.mod carries none of their
// dependencies): the module's directory, its package, and the environment
// variable that overrides the path.
var tools = map[string]struct{ mod, pkg, env string }{
	"hubble":       {"hubble", "github.com/cilium/cilium/hubble", "FLOWTAPE_HUBBLE"},
	"hubble-relay": {"hubble", "github.com/cilium/cilium/hubble-relay", "FLOWTAPE_HUBBLE_RELAY"},
	"versitygw":    {"s3", "github.com/versity/versitygw/cmd/versitygw", "FLOWTAPE_VERSITYGW"},
}

// Tool returns the path of a real program ("hubble", "hubble-relay", or
// "versitygw", an S3 server), built from its module under tools/ into bin/
// the first time a test needs it. FLOWTAPE_HUBBLE, FLOWTAPE_HUBBLE_RELAY and
// FLOWTAPE_VERSITYGW override the path.
// The build is locked across test processes, so parallel packages build once.
func Tool(t testing.TB, name string) string {
	t.Helper()
	toolMu.Lock()
	defer toolMu.Unlock()
	if p, ok := toolPaths[name]; ok {
		return p
	}
	tool, ok := tools[name]
	if !ok {
		t.Fatalf("unknown tool %q", name)
	}
	if p := os.Getenv(tool.env); p != "" {
		toolPaths[name] = p
		return p
	}
	p, err := buildTool(name)
	if err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	toolPaths[name] = p
	return p
}

func buildTool(name string) (string, error) {
	bin := filepath.Join(Root(), "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(bin, ".tools.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	out := filepath.Join(bin, name)
	tool := tools[name]
	mod := filepath.Join(Root(), "tools", tool.mod)
	// Rebuild when the pinned version changed; go build is quick when cached.
	if st, err := os.Stat(out); err == nil {
		if gm, err := os.Stat(filepath.Join(mod, "go.mod")); err == nil && st.ModTime().After(gm.ModTime()) {
			return out, nil
		}
	}
	cmd := exec.Command("go", "build", "-o", out, tool.pkg)
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w\n%s", err, b)
	}
	return out, nil
}

// builtBinary is one build of cmd/flowtape per test process.
type builtBinary struct {
	once sync.Once
	path string
	err  error
}

var flowtapeBuild, recorderBuild builtBinary

// FlowtapeBinary builds cmd/flowtape once per test process, for tests that
// need real processes (signals, crashes).
func FlowtapeBinary(t testing.TB) string {
	t.Helper()
	return flowtapeBuild.get(t, "flowtape", nil)
}

// FlowtapeRecorderBinary builds the recorder build of cmd/flowtape (-tags
// recorder, without cgo, as its image is) once per test process.
func FlowtapeRecorderBinary(t testing.TB) string {
	t.Helper()
	return recorderBuild.get(t, "flowtape-recorder", []string{"CGO_ENABLED=0"}, "-tags", "recorder")
}

// get builds the binary into bin/test/ of this checkout (git-ignored), not a
// temporary directory: a DuckDB build is over 300 MB, and a directory per
// test process was never removed (no package here has a TestMain to do it),
// so a few days of test runs filled the disk. One file per build kind per
// checkout is bounded. Each process builds once and renames its build into
// place, so packages testing in parallel never exec a half-written binary;
// they build the same source, so which of their builds a later exec runs
// does not matter (tests of a checkout being edited meanwhile may run the
// newer build). A build whose process was killed before its rename is
// removed by the next one that finds it an hour old.
func (bb *builtBinary) get(t testing.TB, name string, env []string, args ...string) string {
	t.Helper()
	bb.once.Do(func() {
		bb.path, bb.err = buildInto(filepath.Join(Root(), "bin", "test"), name, env, args)
	})
	if bb.err != nil {
		t.Fatalf("build %s: %v", name, bb.err)
	}
	return bb.path
}

func buildInto(dir, name string, env, args []string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	stale, _ := filepath.Glob(filepath.Join(dir, "."+name+".*"))
	for _, p := range stale {
		if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) > time.Hour {
			os.Remove(p)
		}
	}
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	f.Close()
	cmd := exec.Command("go", append(append([]string{"build"}, args...), "-o", tmp, "./cmd/flowtape")...)
	cmd.Dir = Root()
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("%w\n%s", err, b)
	}
	path := filepath.Join(dir, name)
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return path, nil
}
