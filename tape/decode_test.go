package tape_test

import (
	"reflect"
	"testing"
	"time"
	"unsafe"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/sim"
)

// Rows whose residual protobuf is the same are built from one decoded copy
// of it. Each row must still own its messages and bytes: a consumer that
// changes one flow (a field mask, a shifted time) must not change another.
func TestDecodedRowsShareNoMutableData(t *testing.T) {
	src := sim.NewSource(sim.Scenarios["incident"], 3, 2000, time.Date(2026, 11, 25, 13, 1, 50, 0, time.UTC))
	flows := src.Take(5000)
	// The real samples, many times over, so that their residuals are
	// shared by enough rows of a batch to be decoded once.
	for _, name := range testutil.SampleFiles {
		for _, r := range testutil.LoadResponses(t, testutil.Testdata("samples", name)) {
			if f := r.GetFlow(); f != nil {
				for range 40 {
					flows = append(flows, proto.Clone(f).(*flowpb.Flow))
				}
			}
		}
	}
	got := roundTripGroups(t, schema.Flows, flows, 4096)
	testutil.SameMessages(t, "rows read back", got, flows)

	owner := map[unsafe.Pointer]int{}
	claim := func(row int, p unsafe.Pointer, what string) {
		if p == nil {
			return
		}
		if other, ok := owner[p]; ok && other != row {
			t.Fatalf("rows %d and %d share %s", other, row, what)
		}
		owner[p] = row
	}
	var walk func(row int, m protoreflect.Message)
	walk = func(row int, m protoreflect.Message) {
		claim(row, reflect.ValueOf(m.Interface()).UnsafePointer(), string(m.Descriptor().FullName()))
		claim(row, unsafe.Pointer(unsafe.SliceData(m.GetUnknown())), "unknown fields")
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsMap():
			case fd.IsList():
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					if fd.Message() != nil {
						walk(row, l.Get(i).Message())
					} else if fd.Kind() == protoreflect.BytesKind {
						claim(row, unsafe.Pointer(unsafe.SliceData(l.Get(i).Bytes())), string(fd.FullName()))
					}
				}
			case fd.Message() != nil:
				walk(row, v.Message())
			case fd.Kind() == protoreflect.BytesKind:
				claim(row, unsafe.Pointer(unsafe.SliceData(v.Bytes())), string(fd.FullName()))
			}
			return true
		})
	}
	for i, f := range got {
		walk(i, f.ProtoReflect())
	}
}
