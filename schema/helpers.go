package schema

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// enumValue is a generated protobuf enum.
type enumValue interface {
	~int32
	String() string
}

// strCol stores a string; the empty string (proto3's "unset") is NULL.
func strCol[M proto.Message](name, doc string, get func(M) string, set func(M, string)) Column[M] {
	return col(cString, name, doc, func(m M) (string, bool) { v := get(m); return v, v != "" }, set)
}

// listCol stores a string list; an empty list is NULL.
func listCol[M proto.Message](name, doc string, get func(M) []string, set func(M, []string)) Column[M] {
	return col(cStrings, name, doc, func(m M) ([]string, bool) { v := get(m); return v, len(v) > 0 }, set)
}

// enumCol stores an enum by name, as Hubble's JSON shows it; the zero value
// (always an *_UNKNOWN name) is NULL. A number this build does not know is
// stored as its decimal string and read back as the same number.
func enumCol[M proto.Message, E enumValue](name, doc string, values map[string]int32, get func(M) E, set func(M, E)) Column[M] {
	name2str := func(m M) (string, bool) {
		v := get(m)
		return v.String(), v != 0
	}
	unknown := func(s string) error {
		// A name from a newer Cilium: dropping it silently would lose data.
		return fmt.Errorf("column %s: value %q is unknown to this flowtape (written by a newer one): upgrade flowtape to read it", name, s)
	}
	return Column[M]{Name: name, SQLType: cString.sqlType, Doc: doc, arrowType: cString.arrowType,
		appendTo: appender(cString, name2str),
		decoder: func(a arrow.Array) (func(M, int) error, bool) {
			if d, ok := a.(*array.Dictionary); ok {
				// Parse each name once per batch, not once per row.
				dict, ok1 := d.Dictionary().(*array.String)
				ix, ok2 := d.Indices().(*array.Int32)
				if ok1 && ok2 {
					idx := ix.Int32Values()
					vals := make([]int32, dict.Len())
					known := make([]bool, dict.Len())
					for k := range vals {
						vals[k], known[k] = parseEnum(values, dict.Value(k))
					}
					return func(m M, i int) error {
						k := idx[i]
						if !known[k] {
							return unknown(dict.Value(int(k)))
						}
						set(m, E(vals[k]))
						return nil
					}, true
				}
			}
			get, ok := stringValues(a)
			if !ok {
				return nil, false
			}
			return func(m M, i int) error {
				s := get(i)
				v, ok := parseEnum(values, s)
				if !ok {
					return unknown(s)
				}
				set(m, E(v))
				return nil
			}, true
		}}
}

func parseEnum(values map[string]int32, s string) (int32, bool) {
	if v, ok := values[s]; ok {
		return v, true
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}

// timeNanos converts a timestamp to Unix nanoseconds when that is exact.
func timeNanos(ts *timestamppb.Timestamp) (int64, bool) {
	if ts == nil || ts.Nanos < 0 || ts.Nanos >= 1e9 {
		return 0, false
	}
	const maxSec = math.MaxInt64/1_000_000_000 - 1
	if ts.Seconds > maxSec || ts.Seconds < -maxSec {
		return 0, false
	}
	return ts.Seconds*1e9 + int64(ts.Nanos), true
}

func nanosTime(ns int64) *timestamppb.Timestamp {
	sec, nsec := ns/1e9, ns%1e9
	if nsec < 0 {
		sec--
		nsec += 1e9
	}
	return &timestamppb.Timestamp{Seconds: sec, Nanos: int32(nsec)}
}

// timeCol stores a timestamp; NULL when absent. A timestamp that does not fit
// in int64 nanoseconds stays in the residual column.
func timeCol[M proto.Message](name, doc string, get func(M) *timestamppb.Timestamp, set func(M, *timestamppb.Timestamp)) Column[M] {
	return col(cTime, name, doc,
		func(m M) (int64, bool) { return timeNanos(get(m)) },
		func(m M, ns int64) { set(m, nanosTime(ns)) })
}

// labelValue returns the value of the first label with one of the keys
// (labels are "source:key=value", as Cilium formats them).
func labelValue(labels []string, keys ...string) string {
	for _, k := range keys {
		for _, l := range labels {
			_, kv, ok := strings.Cut(l, ":")
			if !ok {
				kv = l
			}
			key, val, ok := strings.Cut(kv, "=")
			if ok && key == k {
				return val
			}
		}
	}
	return ""
}

// UUIDBytes is the 16 bytes of a UUID in the canonical lowercase form
// Hubble writes (8-4-4-4-12 hex digits), as the uuid column stores them;
// false for any other text.
func UUIDBytes(s string) ([16]byte, bool) { return parseUUID(s) }

// parseUUID parses a UUID in the canonical lowercase form Hubble writes
// (8-4-4-4-12 hex digits); anything else is kept as text in the residual.
func parseUUID(s string) ([16]byte, bool) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := hexVal(s[i])
		lo, ok2 := hexVal(s[i+1])
		if !ok1 || !ok2 {
			return u, false
		}
		u[j] = hi<<4 | lo
		j++
		i += 2
	}
	return u, true
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

const hexDigits = "0123456789abcdef"

func formatUUID(u [16]byte) string {
	var b [36]byte
	j := 0
	for i, x := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hexDigits[x>>4], hexDigits[x&0xf]
		j += 2
	}
	return string(b[:])
}
