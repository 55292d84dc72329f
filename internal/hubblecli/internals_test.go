package hubblecli

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/cilium/hubble/cmd/common/conn"
	"github.com/cilium/cilium/hubble/cmd/observe"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/flowtape/flowtape/internal/testutil"
)

// ciliumVersion is the Cilium this test binary is built with.
func ciliumVersion(t *testing.T) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/cilium/cilium" {
				return d.Version
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(testutil.Root(), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`github.com/cilium/cilium (v\S+)`).FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return "(unknown)"
}

// What internals.go assumes of the hubble CLI, held against the Cilium this
// build uses: when an upgrade changes it, this fails naming the version,
// before a user finds flowtape dialing without TLS or missing a filter.
func TestHubbleCLIInternals(t *testing.T) {
	v := ciliumVersion(t)

	// TLS: the CLI's TLS option is found by its function's name, and it is
	// the only one found.
	var all, found []string
	for _, fn := range conn.GRPCOptionFuncs {
		all = append(all, funcName(fn))
	}
	for _, fn := range tlsOptionFuncs() {
		found = append(found, funcName(fn))
	}
	if len(found) != 1 || !strings.HasSuffix(found[0], "/conn.grpcOptionTLS") {
		t.Errorf("cilium %s: the hubble CLI's gRPC dial options are %v; internals.go takes those named *TLS* and found %v, "+
			"not just conn.grpcOptionTLS: see which of them set up TLS now", v, all, found)
	}

	// Filters: hubble observe's filter flags are told apart by the type of
	// their values; its other flags are not filters.
	cmd := observe.New(viper.New())
	var filterFlags, others []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if isFilterFlag(f) {
			filterFlags = append(filterFlags, f.Name)
		} else {
			others = append(others, f.Name)
		}
	})
	for _, want := range []string{"namespace", "pod", "from-pod", "to-pod", "verdict", "http-status", "label", "not",
		"type", "protocol", "node-name", "traffic-direction", "drop-reason-desc", "cel-expression", "allowlist", "denylist"} {
		if !slices.Contains(filterFlags, want) {
			t.Errorf("cilium %s: --%s of hubble observe is not taken as a filter flag (values of type %s): its filter flags are now %v",
				v, want, filterValueType, filterFlags)
		}
	}
	for _, notFilter := range []string{"output", "follow", "last", "since", "until", "field-mask", "print-raw-filters"} {
		if slices.Contains(filterFlags, notFilter) {
			t.Errorf("cilium %s: --%s of hubble observe is taken as a filter flag", v, notFilter)
		}
	}

	// Output options: the default field masks a run leaves behind are reset
	// through the --field-mask list flag.
	if _, ok := fieldMaskFlag(cmd); !ok {
		t.Errorf("cilium %s: hubble observe has no --field-mask list flag; internals.go resets it between runs", v)
	}
}
