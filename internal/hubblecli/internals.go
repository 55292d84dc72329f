package hubblecli

import (
	"reflect"
	"runtime"
	"strings"

	"github.com/cilium/cilium/hubble/cmd/common/conn"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Every use of the hubble CLI's internals is here. They are not API: a new
// Cilium may change them, and internals_test.go then fails naming the
// Cilium version (go.mod pins the one these were written against).

// tlsOptionFuncs are the hubble CLI's gRPC dial options that set up TLS
// (--tls, client certificates, server name). Its other options add
// interceptors that compare the server's version with the CLI's own,
// which flowtape is not; they are told apart by their function names.
func tlsOptionFuncs() []conn.GRPCOptionFunc {
	var out []conn.GRPCOptionFunc
	for _, fn := range conn.GRPCOptionFuncs {
		if strings.Contains(funcName(fn), "TLS") {
			out = append(out, fn)
		}
	}
	return out
}

func funcName(fn any) string {
	return runtime.FuncForPC(reflect.ValueOf(fn).Pointer()).Name()
}

// filterValueType is the type of the values of hubble observe's filter
// flags (--namespace, --verdict, ...): one type dispatches them all.
const filterValueType = "*observe.filterDispatch"

// isFilterFlag tells hubble observe's filter flags from its output and
// connection flags: by the type of their values, and --allowlist and
// --denylist by name.
func isFilterFlag(f *pflag.Flag) bool {
	return typeName(f.Value) == filterValueType || f.Name == "allowlist" || f.Name == "denylist"
}

func typeName(v any) string { return reflect.TypeOf(v).String() }

// resetOutputOptions clears what a run of hubble observe leaves in its
// package variables (the default field masks it adds), so that every run
// of the command starts alike.
func resetOutputOptions(observe *cobra.Command) error {
	if fm, ok := fieldMaskFlag(observe); ok {
		return fm.Replace(nil)
	}
	return nil
}

func fieldMaskFlag(observe *cobra.Command) (pflag.SliceValue, bool) {
	f := observe.Flags().Lookup("field-mask")
	if f == nil {
		return nil, false
	}
	fm, ok := f.Value.(pflag.SliceValue)
	return fm, ok
}
