package schema

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"google.golang.org/protobuf/proto"
)

// Column describes one Parquet column of a row type M and how it is filled
// from, and written back into, the protobuf message.
//
// A mapped column owns a part of the message: on encode that part is stored in
// the column and removed from the row's residual (the "extra" column); on
// decode it is written back. A derived column is a convenience copy for SQL
// (e.g. app label, policy names) and is ignored on decode.
type Column[M proto.Message] struct {
	Name    string
	SQLType string // the type as DuckDB shows it
	Doc     string
	Derived bool

	arrowType arrow.DataType
	// paths are the proto fields the column holds (dotted field names, a
	// list's first element as name[0]); they are left out of the residual
	// whenever the column stored a value.
	paths []string
	// appendTo appends the value of m (or NULL) and reports whether a value
	// was stored.
	appendTo func(b array.Builder, m M) bool
	// setFrom writes row i of a (known to be non-NULL) into m.
	setFrom func(a arrow.Array, i int, m M) error
}

// at declares the proto fields a mapped column holds.
func (c Column[M]) at(paths ...string) Column[M] {
	c.paths = paths
	return c
}

// codec binds a Go value type to an Arrow type.
type codec[T any] struct {
	arrowType arrow.DataType
	sqlType   string
	app       func(b array.Builder, v T)
	at        func(a arrow.Array, i int) T
}

// col builds a mapped column: get returns the value and whether the message
// holds one; set writes a value back.
func col[M proto.Message, T any](c codec[T], name, doc string, get func(M) (T, bool), set func(M, T)) Column[M] {
	return Column[M]{
		Name: name, SQLType: c.sqlType, Doc: doc, arrowType: c.arrowType, appendTo: appender(c, get),
		setFrom: func(a arrow.Array, i int, m M) error {
			set(m, c.at(a, i))
			return nil
		},
	}
}

// derived builds a read-only column computed from the message.
func derived[M proto.Message, T any](c codec[T], name, doc string, get func(M) (T, bool)) Column[M] {
	return Column[M]{Name: name, SQLType: c.sqlType, Doc: doc, Derived: true, arrowType: c.arrowType, appendTo: appender(c, get)}
}

// appender appends get's value, or NULL when the message holds none.
func appender[M proto.Message, T any](c codec[T], get func(M) (T, bool)) func(array.Builder, M) bool {
	return func(b array.Builder, m M) bool {
		v, ok := get(m)
		if !ok {
			b.AppendNull()
			return false
		}
		c.app(b, v)
		return true
	}
}

var (
	// UUIDs are 16 bytes (Parquet's UUID type) instead of 36 characters:
	// random, they do not compress, and are most of a flow's size otherwise.
	cUUID = codec[[16]byte]{
		arrowType: extensions.NewUUIDType(), sqlType: "UUID",
		app: func(b array.Builder, v [16]byte) { b.(*extensions.UUIDBuilder).AppendBytes(v) },
		at:  func(a arrow.Array, i int) [16]byte { return a.(*extensions.UUIDArray).Value(i) },
	}
	cString = codec[string]{
		arrowType: arrow.BinaryTypes.String, sqlType: "VARCHAR",
		app: func(b array.Builder, v string) { b.(*array.StringBuilder).Append(v) },
		at:  func(a arrow.Array, i int) string { return a.(*array.String).Value(i) },
	}
	cBinary = codec[[]byte]{
		arrowType: arrow.BinaryTypes.Binary, sqlType: "BLOB",
		app: func(b array.Builder, v []byte) { b.(*array.BinaryBuilder).Append(v) },
		at: func(a arrow.Array, i int) []byte {
			// Copy: the Arrow buffer is released with the record batch.
			return append([]byte(nil), a.(*array.Binary).Value(i)...)
		},
	}
	cBool = codec[bool]{
		arrowType: arrow.FixedWidthTypes.Boolean, sqlType: "BOOLEAN",
		app: func(b array.Builder, v bool) { b.(*array.BooleanBuilder).Append(v) },
		at:  func(a arrow.Array, i int) bool { return a.(*array.Boolean).Value(i) },
	}
	cInt32 = codec[int32]{
		arrowType: arrow.PrimitiveTypes.Int32, sqlType: "INTEGER",
		app: func(b array.Builder, v int32) { b.(*array.Int32Builder).Append(v) },
		at:  func(a arrow.Array, i int) int32 { return a.(*array.Int32).Value(i) },
	}
	cUint32 = codec[uint32]{
		arrowType: arrow.PrimitiveTypes.Uint32, sqlType: "UINTEGER",
		app: func(b array.Builder, v uint32) { b.(*array.Uint32Builder).Append(v) },
		at:  func(a arrow.Array, i int) uint32 { return a.(*array.Uint32).Value(i) },
	}
	cUint64 = codec[uint64]{
		arrowType: arrow.PrimitiveTypes.Uint64, sqlType: "UBIGINT",
		app: func(b array.Builder, v uint64) { b.(*array.Uint64Builder).Append(v) },
		at:  func(a arrow.Array, i int) uint64 { return a.(*array.Uint64).Value(i) },
	}
	// Timestamps are nanoseconds since the Unix epoch, UTC. They are written
	// without the isAdjustedToUTC flag so that DuckDB reads them as
	// TIMESTAMP_NS and keeps nanosecond precision (its TIMESTAMPTZ has µs).
	cTime = codec[int64]{
		arrowType: &arrow.TimestampType{Unit: arrow.Nanosecond}, sqlType: "TIMESTAMP_NS",
		app: func(b array.Builder, v int64) { b.(*array.TimestampBuilder).Append(arrow.Timestamp(v)) },
		at:  func(a arrow.Array, i int) int64 { return int64(a.(*array.Timestamp).Value(i)) },
	}
	cStrings = codec[[]string]{
		arrowType: arrow.ListOf(arrow.BinaryTypes.String), sqlType: "VARCHAR[]",
		app: func(b array.Builder, v []string) {
			lb := b.(*array.ListBuilder)
			lb.Append(true)
			vb := lb.ValueBuilder().(*array.StringBuilder)
			for _, s := range v {
				vb.Append(s)
			}
		},
		at: func(a arrow.Array, i int) []string {
			l := a.(*array.List)
			start, end := l.ValueOffsets(i)
			if start == end {
				return nil
			}
			vals := l.ListValues().(*array.String)
			out := make([]string, 0, end-start)
			for j := start; j < end; j++ {
				out = append(out, vals.Value(int(j)))
			}
			return out
		},
	}
	cKeyValues = codec[[]KeyValue]{
		arrowType: arrow.ListOf(arrow.StructOf(
			arrow.Field{Name: "key", Type: arrow.BinaryTypes.String},
			arrow.Field{Name: "value", Type: arrow.BinaryTypes.String},
		)),
		sqlType: `STRUCT("key" VARCHAR, "value" VARCHAR)[]`,
		app: func(b array.Builder, v []KeyValue) {
			lb := b.(*array.ListBuilder)
			lb.Append(true)
			sb := lb.ValueBuilder().(*array.StructBuilder)
			kb := sb.FieldBuilder(0).(*array.StringBuilder)
			vb := sb.FieldBuilder(1).(*array.StringBuilder)
			for _, kv := range v {
				sb.Append(true)
				kb.Append(kv.Key)
				vb.Append(kv.Value)
			}
		},
		at: func(a arrow.Array, i int) []KeyValue {
			l := a.(*array.List)
			start, end := l.ValueOffsets(i)
			if start == end {
				return nil
			}
			st := l.ListValues().(*array.Struct)
			ks := st.Field(0).(*array.String)
			vs := st.Field(1).(*array.String)
			out := make([]KeyValue, 0, end-start)
			for j := int(start); j < int(end); j++ {
				out = append(out, KeyValue{Key: ks.Value(j), Value: vs.Value(j)})
			}
			return out
		},
	}
)

// KeyValue is one HTTP header as stored in http_headers.
type KeyValue struct{ Key, Value string }
