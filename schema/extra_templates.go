package schema

import (
	"bytes"
	"reflect"
	"unsafe"

	"google.golang.org/protobuf/proto"
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

// newTemplate compiles a deep copy of m. It returns nil for a message it
// cannot copy exactly (a map, a field it does not know how to treat): rows
// then decode the residual as before.
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
	if u := p.Interface().(proto.Message).ProtoReflect().GetUnknown(); len(u) > 0 {
		tp.unknown = u
	}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			switch sf.Name {
			case "state", "sizeCache", "unknownFields":
				// Per-type state, a size only Marshal sets (a decoded
				// message has none), and unknown fields, copied in build.
				continue
			}
			return nil, false
		}
		f := e.Field(i)
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
		case reflect.Map, reflect.Struct, reflect.Array, reflect.Chan, reflect.Func, reflect.UnsafePointer:
			return nil, false
		default:
			// Scalars: the shallow copy has them.
			tp.scalars = tp.scalars || !f.IsZero()
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
