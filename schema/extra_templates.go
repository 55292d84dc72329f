package schema

// Residual templates copy generated protobuf message structs with reflect
// and unsafe instead of decoding them again: that is +28% replay
// throughput, and it rests on how protobuf-go lays out the structs it
// generates, not on any API it promises. This file holds all of those
// assumptions; nothing else in flowtape reaches past the protobuf API.
//
//  1. A generated (open struct API) message is a struct whose exported
//     fields all carry a `protobuf` or `protobuf_oneof` tag, and whose only
//     unexported fields are state (protoimpl.MessageState), sizeCache
//     (protoimpl.SizeCache) and unknownFields (protoimpl.UnknownFields).
//     compileTemplate refuses any other struct: extensions, weak fields,
//     the opaque API's hidden fields, an unknown XXX_ field.
//  2. state holds nothing of one message: a pointer to its type's
//     MessageInfo, set once. A shallow struct copy may share it.
//  3. sizeCache is only a cache of Marshal's, zero in a decoded message (a
//     message with one is refused); the shallow copy has the zero.
//  4. unknownFields is the raw unknown bytes; the copy gets a clone of them
//     through the API (SetUnknown).
//  5. A singular message field is a *M, nil when unset; a repeated message
//     field a []*M. build writes such fields through unsafe.Pointer at
//     their reflect offsets, which holds for any Go struct field of those
//     types.
//  6. A field with explicit presence (proto2 optional, proto3 optional,
//     editions) is a pointer to its scalar, except bytes: a []byte, nil
//     when unset. Implicit presence scalars are plain values.
//  7. A oneof is an interface field holding a pointer to a wrapper struct
//     of one exported field: the member's value.
//  8. A repeated scalar field is a slice of its Go type; a map field a Go
//     map (refused unless nil: the copy would share it).
//
// TestTemplateEqualsUnmarshal and the tests after it check the copies
// against proto.Unmarshal for every kind of field; newTemplate checks each
// template once more with proto.Equal before rows use it. The build itself
// fails on a protobuf-go of another minor version, and the tests on any
// other release than verifiedProtobufGo (see below).

import (
	"bytes"
	"math"
	"reflect"
	"unsafe"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/runtime/protoimpl"
)

// The protobuf-go release the assumptions above were verified against: the
// tests fail on any other (TestTemplatesVerifiedProtobufGo compares it with
// go.mod), and the build on any other minor version.
const (
	verifiedProtobufGo      = "v1.36.12"
	verifiedProtobufGoMinor = 36
)

// reverifyResidualTemplatesForNewProtobufGo is what a build against another
// protobuf-go says, at one of the assertions below: "cannot use ... (value
// of type [1]struct{}) as reverifyResidualTemplatesForNewProtobufGo value".
// It fails on a google.golang.org/protobuf that is not v1.36.x, the minor
// release the templates were verified against (protoimpl.MaxVersion is the
// runtime's minor version), or whose unexported message fields changed type.
// Re-verify before moving verifiedProtobufGo and verifiedProtobufGoMinor:
//   - read what changed in the generated structs and in how the runtime
//     treats them (git log v1.36.12..NEW -- internal/impl
//     cmd/protoc-gen-go/internal_gengo runtime/protoimpl) against the
//     assumptions listed at the top of this file;
//   - go test ./schema ./tape (TestTemplate*, TestDecodedRowsShareNoMutableData).
//
// If an assumption no longer holds and cannot be made to, delete this file
// and let bindExtra decode every residual with proto.Unmarshal.
type reverifyResidualTemplatesForNewProtobufGo [0]struct{}

const (
	protobufGoMinorDrift = protoimpl.MaxVersion - verifiedProtobufGoMinor
	// state is one pointer (its MessageInfo), assumption 2.
	messageStateDrift = int(unsafe.Sizeof(protoimpl.MessageState{})) - int(unsafe.Sizeof(uintptr(0)))
)

// A zero drift, squared, is the only length that is not an error.
var (
	_ reverifyResidualTemplatesForNewProtobufGo = [protobufGoMinorDrift * protobufGoMinorDrift]struct{}{}
	_ reverifyResidualTemplatesForNewProtobufGo = [messageStateDrift * messageStateDrift]struct{}{}
	// The size cache is an int32 and unknown fields a []byte (assumptions 3, 4).
	_ protoimpl.UnknownFields = []byte(nil)
	_ protoimpl.SizeCache     = int32(0)
)

// A template is a decoded residual ("extra") that rows copy instead of
// decoding it again. Most rows of a batch share one of a few residuals (the
// empty messages on the way to their columns' fields, a policy or two), and
// a copy allocates the same messages as proto.Unmarshal at a fraction of
// its cost: it is compiled, for one residual, into the assignments that
// make a deep copy of it, with reflect but no walk of empty fields.
type template struct {
	typ     reflect.Type  // the message struct
	src     reflect.Value // the decoded message (the struct)
	msgs    []msgField    // message fields, the most common: set without reflect
	lists   []msgList     // lists of messages, likewise
	fixes   []fieldCopy   // the other fields a shallow copy of src must not share
	unknown []byte
	scalars bool // src has fields the fixes do not set (else a zero struct will do)
}

// msgField is a field that points to a message, at offset off.
type msgField struct {
	off   uintptr
	child *template
}

// msgList is a list of messages at offset off, copied into a new array.
type msgList struct {
	off      uintptr
	arr      reflect.Type // [n]*M
	children []*template
}

// fieldCopy replaces a field of a shallow copy with a copy of its own.
type fieldCopy struct {
	field int
	copy  func(dst reflect.Value)
}

var protoMessage = reflect.TypeFor[proto.Message]()

// internalFields are the unexported fields of a generated message, with
// their types (assumptions 1 to 4).
var internalFields = map[string]reflect.Type{
	"state":         reflect.TypeFor[protoimpl.MessageState](),
	"sizeCache":     reflect.TypeFor[protoimpl.SizeCache](),
	"unknownFields": reflect.TypeFor[protoimpl.UnknownFields](),
}

// newTemplate compiles a deep copy of m, decoded by proto.Unmarshal. It
// returns nil for a message it cannot copy exactly (a map that is set, a
// field or a struct it does not know how to treat): rows then decode the
// residual as before.
func newTemplate(m proto.Message) *template {
	tp, ok := compileTemplate(reflect.ValueOf(m))
	if !ok {
		return nil
	}
	// Belt and braces: the copy must be the message, or it is not used.
	if !proto.Equal(tp.build().Interface().(proto.Message), m) {
		return nil
	}
	return tp
}

// compileTemplate compiles a copy of *p, a generated message struct.
func compileTemplate(p reflect.Value) (*template, bool) {
	if p.Kind() != reflect.Pointer || p.IsNil() || p.Elem().Kind() != reflect.Struct || !p.Type().Implements(protoMessage) {
		return nil, false
	}
	e := p.Elem()
	t := e.Type()
	tp := &template{typ: t, src: e}
	// Non-nil, even empty: the shallow copy must not share its array.
	if u := p.Interface().(proto.Message).ProtoReflect().GetUnknown(); u != nil {
		tp.unknown = u
	}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		f := e.Field(i)
		if !sf.IsExported() {
			if internalFields[sf.Name] != sf.Type {
				return nil, false
			}
			// Per-type state, a size only Marshal sets (none in a decoded
			// message), and unknown fields, copied in build.
			if sf.Name == "sizeCache" && f.Int() != 0 {
				return nil, false
			}
			continue
		}
		if sf.Tag.Get("protobuf") == "" && sf.Tag.Get("protobuf_oneof") == "" {
			return nil, false
		}
		var cp func(reflect.Value)
		switch f.Kind() {
		case reflect.Pointer:
			if f.IsNil() {
				continue
			}
			if f.Elem().Kind() != reflect.Struct {
				// A proto3 optional scalar.
				v := f.Elem()
				cp = func(dst reflect.Value) {
					n := reflect.New(v.Type())
					n.Elem().Set(v)
					dst.Set(n)
				}
				break
			}
			child, ok := compileTemplate(f)
			if !ok {
				return nil, false
			}
			tp.msgs = append(tp.msgs, msgField{off: sf.Offset, child: child})
			continue
		case reflect.Interface:
			// A oneof: a pointer to a wrapper struct of one field.
			if f.IsNil() {
				continue
			}
			w := f.Elem()
			if w.Kind() != reflect.Pointer || w.IsNil() || w.Elem().Kind() != reflect.Struct || w.Elem().NumField() != 1 {
				return nil, false
			}
			wt, inner := w.Elem().Type(), w.Elem().Field(0)
			if !wt.Field(0).IsExported() {
				return nil, false
			}
			var val func() reflect.Value
			switch inner.Kind() {
			case reflect.Pointer:
				if inner.IsNil() {
					val = func() reflect.Value { return inner }
					break
				}
				child, ok := compileTemplate(inner)
				if !ok {
					return nil, false
				}
				val = child.build
			case reflect.Slice:
				if inner.Type().Elem().Kind() != reflect.Uint8 {
					return nil, false
				}
				val = func() reflect.Value { return cloneBytes(inner) }
			case reflect.Map, reflect.Interface, reflect.Struct, reflect.Array, reflect.Chan, reflect.Func, reflect.UnsafePointer:
				return nil, false
			default:
				val = func() reflect.Value { return inner }
			}
			cp = func(dst reflect.Value) {
				n := reflect.New(wt)
				n.Elem().Field(0).Set(val())
				dst.Set(n)
			}
		case reflect.Slice:
			if f.IsNil() {
				continue
			}
			if el := sf.Type.Elem(); el.Kind() == reflect.Pointer && f.Len() > 0 {
				l := msgList{off: sf.Offset, arr: reflect.ArrayOf(f.Len(), el)}
				for k := range f.Len() {
					c, ok := compileTemplate(f.Index(k))
					if !ok {
						return nil, false
					}
					l.children = append(l.children, c)
				}
				tp.lists = append(tp.lists, l)
				continue
			}
			c, ok := sliceCopy(f)
			if !ok {
				return nil, false
			}
			cp = c
		case reflect.Map:
			// The copy would share it; an unset one is nil in the copy too.
			if !f.IsNil() {
				return nil, false
			}
			continue
		case reflect.Struct, reflect.Array, reflect.Chan, reflect.Func, reflect.UnsafePointer:
			return nil, false
		default:
			// Scalars: the shallow copy has them.
			tp.scalars = tp.scalars || !zeroBits(f)
			continue
		}
		tp.fixes = append(tp.fixes, fieldCopy{field: i, copy: cp})
	}
	return tp, true
}

// sliceCopy compiles the copy of a repeated field's (non-nil) slice.
func sliceCopy(f reflect.Value) (func(reflect.Value), bool) {
	st := f.Type()
	n := f.Len()
	switch el := st.Elem(); {
	case el.Kind() == reflect.Uint8:
		return func(dst reflect.Value) { dst.Set(cloneBytes(f)) }, true
	case el.Kind() == reflect.Slice && el.Elem().Kind() == reflect.Uint8:
		return func(dst reflect.Value) {
			s := reflect.MakeSlice(st, n, n)
			for k := range n {
				s.Index(k).Set(cloneBytes(f.Index(k)))
			}
			dst.Set(s)
		}, true
	case el.Kind() == reflect.String || el.Kind() == reflect.Bool ||
		el.Kind() >= reflect.Int && el.Kind() <= reflect.Float64:
		return func(dst reflect.Value) {
			s := reflect.MakeSlice(st, n, n)
			reflect.Copy(s, f)
			dst.Set(s)
		}, true
	}
	return nil, false
}

// zeroBits reports whether scalar v is all zero bits, as in a zero struct:
// a -0.0 is not (reflect.Value.IsZero says it is), and protobuf keeps it.
func zeroBits(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		return math.Float64bits(v.Float()) == 0
	}
	return v.IsZero()
}

func cloneBytes(b reflect.Value) reflect.Value {
	if b.IsNil() {
		return b
	}
	c := reflect.New(b.Type()).Elem()
	c.SetBytes(bytes.Clone(b.Bytes()))
	return c
}

// build returns a new copy of the template's message, as a pointer.
func (tp *template) build() reflect.Value {
	p := reflect.New(tp.typ)
	e := p.Elem()
	if tp.scalars {
		e.Set(tp.src)
	}
	// A pointer stored through unsafe.Pointer has the write barrier any
	// pointer store has: this is reflect's Set without its checks, which
	// cost as much as the allocations.
	base := p.UnsafePointer()
	for _, f := range tp.msgs {
		*(*unsafe.Pointer)(unsafe.Add(base, f.off)) = f.child.build().UnsafePointer()
	}
	for _, l := range tp.lists {
		// A []*M is laid out as a []unsafe.Pointer.
		arr := unsafe.Slice((*unsafe.Pointer)(reflect.New(l.arr).UnsafePointer()), len(l.children))
		for k, c := range l.children {
			arr[k] = c.build().UnsafePointer()
		}
		*(*[]unsafe.Pointer)(unsafe.Add(base, l.off)) = arr
	}
	for i := range tp.fixes {
		tp.fixes[i].copy(e.Field(tp.fixes[i].field))
	}
	if tp.unknown != nil {
		p.Interface().(proto.Message).ProtoReflect().SetUnknown(bytes.Clone(tp.unknown))
	}
	return p
}
