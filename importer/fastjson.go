package importer

import (
	"encoding/base64"
	"errors"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// A fast path for the JSON Hubble writes. protojson is general and slow
// (it decodes through a token stream, and most of an import's time went
// there); this decoder reads the subset Hubble's messages use in one pass,
// straight into the message. Anything outside that subset (unknown or
// duplicate members, null, floats, maps, Any, exponents, odd timestamps,
// invalid UTF-8...) makes it give up, and the line goes to protojson, whose
// result and errors stand. FuzzFastDecode checks that whatever the fast
// path accepts, protojson decodes to the same message.

var errSlowPath = errors.New("not in the fast decoder's subset")

// fastUnmarshal decodes b into m, or returns errSlowPath (m is then in an
// undefined state and must be reset).
func fastUnmarshal(b []byte, m proto.Message) error {
	d := fastDecoder{b: b}
	if err := d.message(m.ProtoReflect()); err != nil {
		return err
	}
	d.space()
	if d.i != len(d.b) {
		return errSlowPath
	}
	return nil
}

type fastDecoder struct {
	b []byte
	i int
}

// fieldIndex maps JSON and proto names to fields, per message type.
var fieldIndex sync.Map // protoreflect.FullName -> map[string]protoreflect.FieldDescriptor

func fieldsOf(md protoreflect.MessageDescriptor) map[string]protoreflect.FieldDescriptor {
	if v, ok := fieldIndex.Load(md.FullName()); ok {
		return v.(map[string]protoreflect.FieldDescriptor)
	}
	m := map[string]protoreflect.FieldDescriptor{}
	fs := md.Fields()
	for i := 0; i < fs.Len(); i++ {
		fd := fs.Get(i)
		m[string(fd.Name())], m[fd.JSONName()] = fd, fd
	}
	fieldIndex.Store(md.FullName(), m)
	return m
}

func (d *fastDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *fastDecoder) peek() byte {
	d.space()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *fastDecoder) expect(c byte) error {
	if d.peek() != c {
		return errSlowPath
	}
	d.i++
	return nil
}

func (d *fastDecoder) message(m protoreflect.Message) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	fields := fieldsOf(m.Descriptor())
	var seen uint64 // field numbers < 64; others go to the slow path when repeated
	var seenHigh map[protoreflect.FieldNumber]bool
	if d.peek() == '}' {
		d.i++
		return nil
	}
	for {
		key, err := d.str()
		if err != nil {
			return err
		}
		fd := fields[string(key)]
		if fd == nil {
			return errSlowPath
		}
		if n := fd.Number(); n < 64 {
			if seen&(1<<n) != 0 {
				return errSlowPath
			}
			seen |= 1 << n
		} else {
			if seenHigh == nil {
				seenHigh = map[protoreflect.FieldNumber]bool{}
			}
			if seenHigh[n] {
				return errSlowPath
			}
			seenHigh[n] = true
		}
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() && m.WhichOneof(od) != nil {
			return errSlowPath
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		if err := d.field(m, fd); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return errSlowPath
		}
	}
}

func (d *fastDecoder) field(m protoreflect.Message, fd protoreflect.FieldDescriptor) error {
	if d.peek() == 'n' || fd.IsMap() {
		return errSlowPath // null, and maps: rare; protojson knows their rules
	}
	if !fd.IsList() {
		if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
			return d.submessage(m.Mutable(fd).Message(), fd.Message())
		}
		v, err := d.scalar(fd)
		if err != nil {
			return err
		}
		m.Set(fd, v)
		return nil
	}
	if err := d.expect('['); err != nil {
		return err
	}
	l := m.Mutable(fd).List()
	if d.peek() == ']' {
		d.i++
		return nil
	}
	for {
		if fd.Kind() == protoreflect.MessageKind {
			if d.peek() == 'n' {
				return errSlowPath
			}
			if err := d.submessage(l.AppendMutable().Message(), fd.Message()); err != nil {
				return err
			}
		} else {
			v, err := d.scalar(fd)
			if err != nil {
				return err
			}
			l.Append(v)
		}
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return nil
		default:
			return errSlowPath
		}
	}
}

// submessage decodes a message, and the well-known types Hubble uses
// (Timestamp, and wrappers as plain values).
func (d *fastDecoder) submessage(m protoreflect.Message, md protoreflect.MessageDescriptor) error {
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		s, err := d.str()
		if err != nil {
			return err
		}
		sec, nanos, ok := parseTimestamp(s)
		if !ok {
			return errSlowPath
		}
		ts := m.Interface().(*timestamppb.Timestamp)
		ts.Seconds, ts.Nanos = sec, nanos
		return nil
	case "google.protobuf.UInt32Value", "google.protobuf.Int32Value", "google.protobuf.BoolValue",
		"google.protobuf.UInt64Value", "google.protobuf.Int64Value", "google.protobuf.StringValue":
		fd := md.Fields().ByNumber(1)
		v, err := d.scalar(fd)
		if err != nil {
			return err
		}
		m.Set(fd, v)
		return nil
	}
	if md.FullName().Parent() == "google.protobuf" {
		return errSlowPath // Any, Struct, Duration, ...: protojson's
	}
	return d.message(m)
}

func (d *fastDecoder) scalar(fd protoreflect.FieldDescriptor) (protoreflect.Value, error) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		s, err := d.str()
		if err != nil {
			return protoreflect.Value{}, err
		}
		return protoreflect.ValueOfString(string(s)), nil
	case protoreflect.BoolKind:
		switch {
		case d.lit("true"):
			return protoreflect.ValueOfBool(true), nil
		case d.lit("false"):
			return protoreflect.ValueOfBool(false), nil
		}
	case protoreflect.EnumKind:
		if d.peek() == '"' {
			s, err := d.str()
			if err != nil {
				return protoreflect.Value{}, err
			}
			if ev := fd.Enum().Values().ByName(protoreflect.Name(s)); ev != nil {
				return protoreflect.ValueOfEnum(ev.Number()), nil
			}
			return protoreflect.Value{}, errSlowPath
		}
		n, ok := d.integer(math.MinInt32, math.MaxInt32)
		if ok {
			return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), nil
		}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if n, ok := d.quotedOrNot(math.MinInt32, math.MaxInt32); ok {
			return protoreflect.ValueOfInt32(int32(n)), nil
		}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		if n, ok := d.quotedOrNot(0, math.MaxUint32); ok {
			return protoreflect.ValueOfUint32(uint32(n)), nil
		}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if n, ok := d.quotedOrNot(math.MinInt64, math.MaxInt64); ok {
			return protoreflect.ValueOfInt64(n), nil
		}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if u, ok := d.quotedUint64(); ok {
			return protoreflect.ValueOfUint64(u), nil
		}
	case protoreflect.BytesKind:
		s, err := d.str()
		if err != nil {
			return protoreflect.Value{}, err
		}
		// protojson accepts standard and URL base64, padded or not;
		// only the standard padded form is taken here.
		b, err := base64.StdEncoding.DecodeString(string(s))
		if err == nil {
			return protoreflect.ValueOfBytes(b), nil
		}
	}
	return protoreflect.Value{}, errSlowPath
}

func (d *fastDecoder) lit(s string) bool {
	if d.peek() != s[0] || len(d.b)-d.i < len(s) || string(d.b[d.i:d.i+len(s)]) != s {
		return false
	}
	end := d.i + len(s)
	if end < len(d.b) && isIdent(d.b[end]) {
		return false
	}
	d.i = end
	return true
}

func isIdent(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' || c == '+'
}

// digits returns the plain integer text at the cursor: an optional '-'
// and digits without leading zeros.
func (d *fastDecoder) digits(b []byte, i int) (int, bool) {
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	ds := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == ds || (b[ds] == '0' && i-ds > 1) || i-start > 20 {
		return 0, false
	}
	return i, true
}

func (d *fastDecoder) integer(lo, hi int64) (int64, bool) {
	d.space()
	end, ok := d.digits(d.b, d.i)
	if !ok || (end < len(d.b) && isIdent(d.b[end])) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(d.b[d.i:end]), 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, false
	}
	d.i = end
	return n, true
}

func (d *fastDecoder) quotedOrNot(lo, hi int64) (int64, bool) {
	if d.peek() != '"' {
		return d.integer(lo, hi)
	}
	s, err := d.str()
	if err != nil {
		return 0, false
	}
	end, ok := d.digits(s, 0)
	if !ok || end != len(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, false
	}
	return n, true
}

func (d *fastDecoder) quotedUint64() (uint64, bool) {
	quoted := d.peek() == '"'
	var s []byte
	if quoted {
		var err error
		if s, err = d.str(); err != nil {
			return 0, false
		}
	} else {
		end, ok := d.digits(d.b, d.i)
		if !ok || (end < len(d.b) && isIdent(d.b[end])) {
			return 0, false
		}
		s, d.i = d.b[d.i:end], end
	}
	if end, ok := d.digits(s, 0); !ok || end != len(s) || s[0] == '-' {
		return 0, false
	}
	u, err := strconv.ParseUint(string(s), 10, 64)
	return u, err == nil
}

// str reads a JSON string. Without escapes it returns the input's bytes;
// escapes are decoded into a new slice. Invalid UTF-8, control characters
// and lone surrogates go to the slow path (protojson rejects or repairs
// them by its own rules).
func (d *fastDecoder) str() ([]byte, error) {
	if d.peek() != '"' {
		return nil, errSlowPath
	}
	d.i++
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			if !utf8.Valid(s) {
				return nil, errSlowPath
			}
			return s, nil
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			return nil, errSlowPath
		}
		d.i++
	}
	return nil, errSlowPath
}

func (d *fastDecoder) escaped(start int) ([]byte, error) {
	out := append([]byte(nil), d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			if !utf8.Valid(out) {
				return nil, errSlowPath
			}
			return out, nil
		case c < 0x20:
			return nil, errSlowPath
		case c != '\\':
			out = append(out, c)
			d.i++
			continue
		}
		if d.i+1 >= len(d.b) {
			return nil, errSlowPath
		}
		e := d.b[d.i+1]
		d.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return nil, errSlowPath
			}
			if utf16.IsSurrogate(r) {
				if d.i+1 >= len(d.b) || d.b[d.i] != '\\' || d.b[d.i+1] != 'u' {
					return nil, errSlowPath
				}
				d.i += 2
				r2, ok := d.hex4()
				if !ok {
					return nil, errSlowPath
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return nil, errSlowPath
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, errSlowPath
		}
	}
	return nil, errSlowPath
}

func (d *fastDecoder) hex4() (rune, bool) {
	if d.i+4 > len(d.b) {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	d.i += 4
	return r, true
}

// parseTimestamp reads the form Hubble writes, YYYY-MM-DDTHH:MM:SS[.f]Z
// with 1 to 9 fraction digits; other RFC 3339 forms take the slow path.
func parseTimestamp(s []byte) (int64, int32, bool) {
	if len(s) < 20 || s[len(s)-1] != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, 0, false
	}
	num := func(b []byte) (int, bool) {
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(s[0:4])
	month, ok2 := num(s[5:7])
	day, ok3 := num(s[8:10])
	hour, ok4 := num(s[11:13])
	minute, ok5 := num(s[14:16])
	sec, ok6 := num(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || year < 1 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return 0, 0, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	if t.Day() != day { // e.g. February 30
		return 0, 0, false
	}
	var nanos int
	if rest := s[19 : len(s)-1]; len(rest) > 0 {
		if rest[0] != '.' || len(rest) < 2 || len(rest) > 10 {
			return 0, 0, false
		}
		n, ok := num(rest[1:])
		if !ok {
			return 0, 0, false
		}
		for i := len(rest) - 1; i < 9; i++ {
			n *= 10
		}
		nanos = n
	}
	return t.Unix(), int32(nanos), true
}
