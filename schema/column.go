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
	// decoder binds an array of the column, once per batch, and returns
	// what writes its row i (known to be non-NULL) into m; false when the
	// array is not of the column's type. Binding once keeps type assertions
	// and dictionary lookups out of the per-row work.
	decoder func(a arrow.Array) (func(m M, i int) error, bool)
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
	// values binds an array of the codec's type, plain or, for strings and
	// binary, dictionary-encoded (as Parquet stores them), to its values.
	values func(a arrow.Array) (func(i int) T, bool)
}

// col builds a mapped column: get returns the value and whether the message
// holds one; set writes a value back.
func col[M proto.Message, T any](c codec[T], name, doc string, get func(M) (T, bool), set func(M, T)) Column[M] {
	return Column[M]{
		Name: name, SQLType: c.sqlType, Doc: doc, arrowType: c.arrowType, appendTo: appender(c, get),
		decoder: func(a arrow.Array) (func(M, int) error, bool) {
			get, ok := c.values(a)
			if !ok {
				return nil, false
			}
			return func(m M, i int) error {
				set(m, get(i))
				return nil
			}, true
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
		values: func(a arrow.Array) (func(int) [16]byte, bool) {
			u, ok := a.(*extensions.UUIDArray)
			if !ok {
				return nil, false
			}
			// The storage directly: UUIDArray.Value parses and checks each value.
			fb, ok := u.Storage().(*array.FixedSizeBinary)
			if !ok {
				return nil, false
			}
			return func(i int) [16]byte { return [16]byte(fb.Value(i)) }, true
		},
	}
	cString = codec[string]{
		arrowType: arrow.BinaryTypes.String, sqlType: "VARCHAR",
		app:    func(b array.Builder, v string) { b.(*array.StringBuilder).Append(v) },
		values: stringValues,
	}
	cBinary = codec[[]byte]{
		arrowType: arrow.BinaryTypes.Binary, sqlType: "BLOB",
		app: func(b array.Builder, v []byte) { b.(*array.BinaryBuilder).Append(v) },
		values: func(a arrow.Array) (func(int) []byte, bool) {
			get, ok := binaryValues(a)
			if !ok {
				return nil, false
			}
			// Copy: the value would otherwise pin the batch's whole buffer.
			return func(i int) []byte { return append([]byte(nil), get(i)...) }, true
		},
	}
	cBool = codec[bool]{
		arrowType: arrow.FixedWidthTypes.Boolean, sqlType: "BOOLEAN",
		app: func(b array.Builder, v bool) { b.(*array.BooleanBuilder).Append(v) },
		values: func(a arrow.Array) (func(int) bool, bool) {
			b, ok := a.(*array.Boolean)
			if !ok {
				return nil, false
			}
			return b.Value, true
		},
	}
	cInt32 = codec[int32]{
		arrowType: arrow.PrimitiveTypes.Int32, sqlType: "INTEGER",
		app:    func(b array.Builder, v int32) { b.(*array.Int32Builder).Append(v) },
		values: fixedValues[int32, *array.Int32],
	}
	cInt64 = codec[int64]{
		arrowType: arrow.PrimitiveTypes.Int64, sqlType: "BIGINT",
		app:    func(b array.Builder, v int64) { b.(*array.Int64Builder).Append(v) },
		values: fixedValues[int64, *array.Int64],
	}
	cUint32 = codec[uint32]{
		arrowType: arrow.PrimitiveTypes.Uint32, sqlType: "UINTEGER",
		app:    func(b array.Builder, v uint32) { b.(*array.Uint32Builder).Append(v) },
		values: fixedValues[uint32, *array.Uint32],
	}
	cUint64 = codec[uint64]{
		arrowType: arrow.PrimitiveTypes.Uint64, sqlType: "UBIGINT",
		app:    func(b array.Builder, v uint64) { b.(*array.Uint64Builder).Append(v) },
		values: fixedValues[uint64, *array.Uint64],
	}
	// Timestamps are nanoseconds since the Unix epoch, UTC. They are written
	// without the isAdjustedToUTC flag so that DuckDB reads them as
	// TIMESTAMP_NS and keeps nanosecond precision (its TIMESTAMPTZ has µs).
	cTime = codec[int64]{
		arrowType: &arrow.TimestampType{Unit: arrow.Nanosecond}, sqlType: "TIMESTAMP_NS",
		app: func(b array.Builder, v int64) { b.(*array.TimestampBuilder).Append(arrow.Timestamp(v)) },
		values: func(a arrow.Array) (func(int) int64, bool) {
			ts, ok := a.(*array.Timestamp)
			if !ok {
				return nil, false
			}
			vs := ts.TimestampValues()
			return func(i int) int64 { return int64(vs[i]) }, true
		},
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
		values: func(a arrow.Array) (func(int) []string, bool) {
			l, ok := a.(*array.List)
			if !ok {
				return nil, false
			}
			vals, ok := stringValues(l.ListValues())
			if !ok {
				return nil, false
			}
			return func(i int) []string {
				start, end := l.ValueOffsets(i)
				if start == end {
					return nil
				}
				out := make([]string, 0, end-start)
				for j := start; j < end; j++ {
					out = append(out, vals(int(j)))
				}
				return out
			}, true
		},
	}
	// Integer lists: a latency sketch's buckets and counts (summary).
	cInt32s    = listCodec(cInt32, "INTEGER[]")
	cUint64s   = listCodec(cUint64, "UBIGINT[]")
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
		values: func(a arrow.Array) (func(int) []KeyValue, bool) {
			l, ok := a.(*array.List)
			if !ok {
				return nil, false
			}
			st, ok := l.ListValues().(*array.Struct)
			if !ok || st.NumField() != 2 {
				return nil, false
			}
			ks, ok1 := stringValues(st.Field(0))
			vs, ok2 := stringValues(st.Field(1))
			if !ok1 || !ok2 {
				return nil, false
			}
			return func(i int) []KeyValue {
				start, end := l.ValueOffsets(i)
				if start == end {
					return nil
				}
				out := make([]KeyValue, 0, end-start)
				for j := int(start); j < int(end); j++ {
					out = append(out, KeyValue{Key: ks(j), Value: vs(j)})
				}
				return out
			}, true
		},
	}
)

// KeyValue is one HTTP header as stored in http_headers.
type KeyValue struct{ Key, Value string }

// fixedValues binds a primitive array to its values.
func fixedValues[T int32 | int64 | uint32 | uint64, A interface {
	arrow.Array
	Values() []T
}](a arrow.Array) (func(int) T, bool) {
	p, ok := a.(A)
	if !ok {
		return nil, false
	}
	vs := p.Values()
	return func(i int) T { return vs[i] }, true
}

// stringValues binds a string array, plain or dictionary-encoded. The
// strings share the array's memory (arrays are Go-allocated, see readMem):
// a dictionary's values are shared by all the rows that hold them, which
// is why string columns are read as dictionaries.
var stringValues = plainOrDictValues[string, *array.String]

// binaryValues binds a binary array, plain or dictionary-encoded; the
// values share the array's memory.
var binaryValues = plainOrDictValues[[]byte, *array.Binary]

// plainOrDictValues binds an array of type A, or a dictionary of A values.
func plainOrDictValues[T any, A interface {
	arrow.Array
	Value(int) T
}](a arrow.Array) (func(int) T, bool) {
	switch a := a.(type) {
	case A:
		return a.Value, true
	case *array.Dictionary:
		d, ok := a.Dictionary().(A)
		if !ok {
			return nil, false
		}
		if ix, ok := a.Indices().(*array.Int32); ok {
			idx := ix.Int32Values()
			return func(i int) T { return d.Value(int(idx[i])) }, true
		}
		return func(i int) T { return d.Value(a.GetValueIndex(i)) }, true
	}
	return nil, false
}

// listCodec is a codec of lists of c's values, written only (engines read
// them back).
func listCodec[T any](c codec[T], sqlType string) codec[[]T] {
	return codec[[]T]{
		arrowType: arrow.ListOf(c.arrowType), sqlType: sqlType,
		app: func(b array.Builder, v []T) {
			lb := b.(*array.ListBuilder)
			lb.Append(true)
			vb := lb.ValueBuilder()
			for _, x := range v {
				c.app(vb, x)
			}
		},
		values: func(a arrow.Array) (func(int) []T, bool) {
			l, ok := a.(*array.List)
			if !ok {
				return nil, false
			}
			get, ok := c.values(l.ListValues())
			if !ok {
				return nil, false
			}
			return func(i int) []T {
				start, end := l.ValueOffsets(i)
				out := make([]T, 0, end-start)
				for j := start; j < end; j++ {
					out = append(out, get(int(j)))
				}
				return out
			}, true
		},
	}
}
