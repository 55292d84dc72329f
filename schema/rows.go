package schema

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// RowTable is a table of plain Go rows R: the tables flowtape derives from
// flows (see derived.go), which no protobuf message backs. Its columns are
// written only; engines read them back.
type RowTable[R any] struct {
	Kind    string
	Doc     string
	Columns []RowColumn[R]
	schema  *arrow.Schema
}

// RowColumn is one column of a RowTable.
type RowColumn[R any] struct {
	Name    string
	SQLType string // as DuckDB shows it
	Doc     string

	arrowType arrow.DataType
	appendTo  func(b array.Builder, r *R)
}

// field builds a column from a getter; ok false stores NULL.
func field[R, T any](c codec[T], name, doc string, get func(*R) (T, bool)) RowColumn[R] {
	return RowColumn[R]{Name: name, SQLType: c.sqlType, Doc: doc, arrowType: c.arrowType,
		appendTo: func(b array.Builder, r *R) {
			if v, ok := get(r); ok {
				c.app(b, v)
			} else {
				b.AppendNull()
			}
		}}
}

// strField stores a string; the empty string is NULL, as in flows' string
// columns, which derived strings come from.
func strField[R any](name, doc string, get func(*R) string) RowColumn[R] {
	return field(cString, name, doc, func(r *R) (string, bool) { v := get(r); return v, v != "" })
}

// triField stores a Tri: NULL, false or true.
func triField[R any](name, doc string, get func(*R) Tri) RowColumn[R] {
	return field(cBool, name, doc, func(r *R) (bool, bool) { v := get(r); return v == True, v != Null })
}

func newRowTable[R any](kind, doc string, cols []RowColumn[R]) *RowTable[R] {
	fields := make([]arrow.Field, len(cols))
	seen := map[string]bool{}
	for i, c := range cols {
		if seen[c.Name] {
			panic("schema: duplicate column " + c.Name + " in " + kind)
		}
		seen[c.Name] = true
		fields[i] = arrow.Field{Name: c.Name, Type: c.arrowType, Nullable: true}
	}
	return &RowTable[R]{Kind: kind, Doc: doc, Columns: cols, schema: arrow.NewSchema(fields, nil)}
}

// ArrowSchema is the Arrow schema of the table's record batches.
func (t *RowTable[R]) ArrowSchema() *arrow.Schema { return t.schema }

// Encode returns rows as one record batch; the caller releases it.
func (t *RowTable[R]) Encode(rows []R) arrow.RecordBatch {
	b := t.NewBuilder()
	defer b.Release()
	b.Append(rows...)
	return b.NewRecord()
}

// RowBuilder accumulates rows of a RowTable as Arrow columns (which copy
// the rows' strings).
type RowBuilder[R any] struct {
	t  *RowTable[R]
	rb *array.RecordBuilder
}

// NewBuilder returns a builder of t's rows.
func (t *RowTable[R]) NewBuilder() *RowBuilder[R] {
	return &RowBuilder[R]{t: t, rb: array.NewRecordBuilder(memory.DefaultAllocator, t.schema)}
}

// Append adds rows, a column at a time: each builder grows once.
func (b *RowBuilder[R]) Append(rows ...R) {
	bs := b.rb.Fields()
	for j := range b.t.Columns {
		bs[j].Reserve(len(rows))
		appendTo := b.t.Columns[j].appendTo
		for i := range rows {
			appendTo(bs[j], &rows[i])
		}
	}
}

// AppendRow adds one row, without copying it (as Append(r) would, into a
// slice of its own on the heap).
func (b *RowBuilder[R]) AppendRow(r *R) {
	bs := b.rb.Fields()
	for j := range b.t.Columns {
		b.t.Columns[j].appendTo(bs[j], r)
	}
}

// Len is the number of rows appended since the last NewRecord.
func (b *RowBuilder[R]) Len() int { return b.rb.Field(0).Len() }

// NewRecord returns the rows appended so far and resets the builder; the
// caller releases the record.
func (b *RowBuilder[R]) NewRecord() arrow.RecordBatch { return b.rb.NewRecordBatch() }

// Release frees the builder's buffers.
func (b *RowBuilder[R]) Release() { b.rb.Release() }

// Tri is a boolean that may be NULL, as SQL's.
type Tri uint8

// The values of a Tri.
const (
	Null Tri = iota
	False
	True
)

// TriOf is the Tri of a known boolean.
func TriOf(b bool) Tri {
	if b {
		return True
	}
	return False
}

// or is SQL's OR: true if either is true, NULL if either is NULL and
// neither true.
func (a Tri) or(b Tri) Tri {
	switch {
	case a == True || b == True:
		return True
	case a == Null || b == Null:
		return Null
	}
	return False
}

// not is SQL's NOT.
func (a Tri) not() Tri {
	switch a {
	case True:
		return False
	case False:
		return True
	}
	return Null
}

// anyOf is SQL's bool_or as an aggregate step: NULLs are skipped, and the
// result is NULL only when every value was.
func (a Tri) anyOf(b Tri) Tri {
	switch {
	case a == Null:
		return b
	case b == Null:
		return a
	}
	return a.or(b)
}
