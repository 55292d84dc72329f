package importer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// JSON from a newer Cilium has members this build has no field for, so
// their protobuf numbers and types are unknown. So that import and export
// lose nothing, such a member is kept as an unknown protobuf field of the
// flow (or event) it came with, under a field number no Cilium message
// uses, holding the member as JSON with its path; export puts it back where
// it was. In a recording it lives in the lossless `extra` column.

// unknownJSONField is the protobuf field number of kept JSON members: the
// largest valid number, far from any Cilium field.
const unknownJSONField protowire.Number = protowire.MaxValidNumber

// member is one JSON member this build does not know.
type member struct {
	// Path is where the member's object is in the GetFlowsResponse JSON
	// that export writes: proto field names, and list indices.
	Path  []string        `json:"path"`
	Name  string          `json:"name"`
	Value json.RawMessage `json:"value"`
}

// splitUnknown returns the JSON object in line without the members md
// (recursively) does not know, and those members.
func splitUnknown(line []byte, md protoreflect.MessageDescriptor, prefix []string) ([]byte, []member, error) {
	var out []member
	known, err := strip(line, md, prefix, &out)
	if err != nil {
		return nil, nil, err
	}
	return known, out, nil
}

func strip(raw json.RawMessage, md protoreflect.MessageDescriptor, path []string, out *[]member) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		// Not an object (null, or a type error protojson will report).
		return raw, nil
	}
	// A map keeps the last of duplicate keys; protojson refuses them.
	seen := map[string]bool{}
	var dup string
	_ = topLevelKeys(raw, func(k []byte) {
		if seen[string(k)] {
			dup = string(k)
		}
		seen[string(k)] = true
	})
	if dup != "" {
		return nil, fmt.Errorf("duplicate field %q", dup)
	}
	fields := md.Fields()
	for k, v := range obj {
		fd := fields.ByJSONName(k)
		if fd == nil {
			fd = fields.ByName(protoreflect.Name(k))
		}
		if fd == nil || unknownEnumName(fd, v) {
			*out = append(*out, member{Path: append([]string(nil), path...), Name: k, Value: v})
			delete(obj, k)
			continue
		}
		sub := fd.Message()
		if sub == nil || strings.HasPrefix(string(sub.FullName()), "google.protobuf.") {
			continue
		}
		p := append(append([]string(nil), path...), string(fd.Name()))
		var err error
		switch {
		case fd.IsMap():
			if vd := fd.MapValue().Message(); vd != nil {
				obj[k], err = stripEach(v, func(key string, e json.RawMessage) (json.RawMessage, error) {
					return strip(e, vd, append(p, key), out)
				})
			}
		case fd.IsList():
			obj[k], err = stripList(v, func(i int, e json.RawMessage) (json.RawMessage, error) {
				return strip(e, sub, append(p, strconv.Itoa(i)), out)
			})
		default:
			obj[k], err = strip(v, sub, p, out)
		}
		if err != nil {
			return nil, err
		}
	}
	return json.Marshal(obj)
}

// unknownEnumName reports an enum value (or list of them) holding a name
// this build does not know: a newer Cilium's drop reason, say.
func unknownEnumName(fd protoreflect.FieldDescriptor, v json.RawMessage) bool {
	ed := fd.Enum()
	if ed == nil || fd.IsMap() {
		return false
	}
	var names []string
	if fd.IsList() {
		var l []json.RawMessage
		if json.Unmarshal(v, &l) != nil {
			return false
		}
		for _, e := range l {
			var n string
			if json.Unmarshal(e, &n) == nil {
				names = append(names, n)
			}
		}
	} else {
		var n string
		if json.Unmarshal(v, &n) != nil {
			return false
		}
		names = []string{n}
	}
	for _, n := range names {
		if ed.Values().ByName(protoreflect.Name(n)) == nil {
			return true
		}
	}
	return false
}

func stripEach(raw json.RawMessage, fn func(string, json.RawMessage) (json.RawMessage, error)) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return raw, nil
	}
	for k, v := range m {
		var err error
		if m[k], err = fn(k, v); err != nil {
			return nil, err
		}
	}
	return json.Marshal(m)
}

func stripList(raw json.RawMessage, fn func(int, json.RawMessage) (json.RawMessage, error)) (json.RawMessage, error) {
	var l []json.RawMessage
	if err := json.Unmarshal(raw, &l); err != nil || l == nil {
		return raw, nil
	}
	for i, v := range l {
		var err error
		if l[i], err = fn(i, v); err != nil {
			return nil, err
		}
	}
	return json.Marshal(l)
}

// keepUnknown appends the members to m's unknown fields.
func keepUnknown(m proto.Message, ms []member) {
	r := m.ProtoReflect()
	b := r.GetUnknown()
	for _, mb := range ms {
		v, _ := json.Marshal(mb)
		b = protowire.AppendTag(b, unknownJSONField, protowire.BytesType)
		b = protowire.AppendBytes(b, v)
	}
	r.SetUnknown(b)
}

// keptMembers returns the members kept in m's unknown fields.
func keptMembers(m proto.Message) []member {
	var out []member
	b := m.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return out
		}
		b = b[n:]
		if num == unknownJSONField && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return out
			}
			var mb member
			if json.Unmarshal(v, &mb) == nil {
				out = append(out, mb)
			}
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return out
		}
		b = b[n:]
	}
	return out
}

// injectMembers puts kept members back into doc, a JSON object.
func injectMembers(doc []byte, ms []member) ([]byte, error) {
	for _, mb := range ms {
		var err error
		if doc, err = inject(doc, mb.Path, mb.Name, mb.Value); err != nil {
			return nil, fmt.Errorf("restore member %s at %s: %w", mb.Name, strings.Join(mb.Path, "."), err)
		}
	}
	return doc, nil
}

func inject(doc json.RawMessage, path []string, name string, value json.RawMessage) (json.RawMessage, error) {
	doc = bytes.TrimSpace(doc)
	if len(doc) > 0 && doc[0] == '[' && len(path) > 0 {
		var l []json.RawMessage
		if err := json.Unmarshal(doc, &l); err != nil {
			return nil, err
		}
		i, err := strconv.Atoi(path[0])
		if err != nil || i < 0 {
			return nil, fmt.Errorf("bad list index %q", path[0])
		}
		for len(l) <= i {
			l = append(l, json.RawMessage("{}"))
		}
		if l[i], err = inject(l[i], path[1:], name, value); err != nil {
			return nil, err
		}
		return marshalJSON(l)
	}
	obj := map[string]json.RawMessage{}
	if len(doc) > 0 && string(doc) != "null" {
		if err := json.Unmarshal(doc, &obj); err != nil {
			return nil, err
		}
	}
	if len(path) == 0 {
		obj[name] = value
		return marshalJSON(obj)
	}
	child, ok := obj[path[0]]
	if !ok {
		child = json.RawMessage("{}")
		if len(path) > 1 {
			if _, err := strconv.Atoi(path[1]); err == nil {
				child = json.RawMessage("[]")
			}
		}
	}
	var err error
	if obj[path[0]], err = inject(child, path[1:], name, value); err != nil {
		return nil, err
	}
	return marshalJSON(obj)
}

// marshalJSON is json.Marshal without HTML escaping (< and & stay as they
// are, as protojson writes them); keys of objects come out sorted.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
