package schema

import (
	"fmt"
	"reflect"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/protobuf/proto"
)

// ExtraColumn is the residual column: the protobuf encoding of everything in
// a message that no mapped column holds, including fields unknown to this
// build (a newer Cilium). It is what makes the format lossless.
const ExtraColumn = "extra"

// Table is a row type: its columns, in order, and how to make an empty message.
type Table[M proto.Message] struct {
	Kind    string // KindFlows or KindEvents
	Columns []Column[M]
	newMsg  func() M

	schema *arrow.Schema
	index  map[string]int
	mask   *maskNode
	plan   *plan
}

func newTable[M proto.Message](kind string, newMsg func() M, cols []Column[M]) *Table[M] {
	cols = append(cols, Column[M]{
		Name: ExtraColumn, SQLType: cBinary.sqlType, arrowType: cBinary.arrowType,
		Doc: "Protobuf encoding of the fields not held by the other columns (rare fields, and fields unknown to this flowtape); NULL when there are none. Makes the row lossless.",
	})
	t := &Table[M]{Kind: kind, Columns: cols, newMsg: newMsg, index: map[string]int{}, mask: newMaskNode()}
	md := newMsg().ProtoReflect().Descriptor()
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		// Panics here are programming errors in the table, caught by any test.
		if _, dup := t.index[c.Name]; dup {
			panic("schema: duplicate column " + c.Name)
		}
		if !c.Derived && c.Name != ExtraColumn && len(c.paths) == 0 {
			panic("schema: mapped column " + c.Name + " declares no proto field")
		}
		for _, p := range c.paths {
			if err := t.mask.addPath(md, p, i); err != nil {
				panic("schema: column " + c.Name + ": " + err.Error())
			}
		}
		t.index[c.Name] = i
		fields[i] = arrow.Field{Name: c.Name, Type: c.arrowType, Nullable: true}
	}
	t.schema = arrow.NewSchema(fields, nil)
	p, err := compile(newMsg().ProtoReflect().Type(), t.mask)
	if err != nil {
		panic("schema: " + err.Error())
	}
	t.plan = p
	return t
}

// ArrowSchema is the Arrow schema of the table's record batches.
func (t *Table[M]) ArrowSchema() *arrow.Schema { return t.schema }

// ColumnIndex returns the position of a column, or -1.
func (t *Table[M]) ColumnIndex(name string) int {
	if i, ok := t.index[name]; ok {
		return i
	}
	return -1
}

// Encoder accumulates messages as Arrow columns.
type Encoder[M proto.Message] struct {
	t    *Table[M]
	rb   *array.RecordBuilder
	bs   []array.Builder
	held []bool
	buf  []byte
}

// NewEncoder returns an encoder for t.
func (t *Table[M]) NewEncoder(mem memory.Allocator) *Encoder[M] {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	rb := array.NewRecordBuilder(mem, t.schema)
	return &Encoder[M]{t: t, rb: rb, bs: rb.Fields(), held: make([]bool, len(t.Columns))}
}

// Append adds one message as a row. It does not modify m.
func (e *Encoder[M]) Append(m M) error {
	cols := e.t.Columns
	last := len(cols) - 1
	for i := 0; i < last; i++ {
		c := &cols[i]
		e.held[i] = c.appendTo(e.bs[i], m) && !c.Derived
	}
	eb := e.bs[last].(*array.BinaryBuilder)
	var err error
	rest := e.t.plan.residual(reflect.ValueOf(m), e.held).Interface().(proto.Message)
	e.buf, err = marshalOpts.MarshalAppend(e.buf[:0], rest)
	if err != nil {
		eb.AppendNull()
		return fmt.Errorf("encode residual fields: %w", err)
	}
	if len(e.buf) == 0 {
		eb.AppendNull()
	} else {
		eb.Append(e.buf)
	}
	return nil
}

// Len is the number of rows appended since the last NewRecord.
func (e *Encoder[M]) Len() int { return e.bs[0].Len() }

// NewRecord returns the rows appended so far as a record batch and resets the
// encoder. The caller releases the record.
func (e *Encoder[M]) NewRecord() arrow.RecordBatch { return e.rb.NewRecordBatch() }

// Release frees the encoder's buffers.
func (e *Encoder[M]) Release() { e.rb.Release() }

// Decode converts row i of rec back into a message.
func (t *Table[M]) Decode(rec arrow.RecordBatch, i int) (M, error) {
	m := t.newMsg()
	cols := rec.Columns()
	if len(cols) != len(t.Columns) {
		return m, fmt.Errorf("record has %d columns, schema %s has %d", len(cols), t.Kind, len(t.Columns))
	}
	last := len(t.Columns) - 1
	if extra := cols[last]; extra.IsValid(i) {
		if err := proto.Unmarshal(extra.(*array.Binary).Value(i), m); err != nil {
			return m, fmt.Errorf("row %d: decode %s column: %w", i, ExtraColumn, err)
		}
	}
	for j := 0; j < last; j++ {
		c := &t.Columns[j]
		if c.Derived || !cols[j].IsValid(i) {
			continue
		}
		if err := c.setFrom(cols[j], i, m); err != nil {
			return m, fmt.Errorf("row %d: %w", i, err)
		}
	}
	return m, nil
}

// ColumnsFor projects rec (which may come from a file with more or fewer
// columns, e.g. a newer minor version) onto this table's column order.
// Columns missing from rec become all-NULL.
func (t *Table[M]) ColumnsFor(rec arrow.RecordBatch, mem memory.Allocator) (arrow.RecordBatch, error) {
	if rec.Schema().Equal(t.schema) {
		rec.Retain()
		return rec, nil
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	cols := make([]arrow.Array, len(t.Columns))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, c := range t.Columns {
		idx := rec.Schema().FieldIndices(c.Name)
		if len(idx) == 0 {
			cols[i] = array.MakeArrayOfNull(mem, c.arrowType, int(rec.NumRows()))
			continue
		}
		a := rec.Column(idx[0])
		if !arrow.TypeEqual(a.DataType(), c.arrowType) {
			return nil, fmt.Errorf("column %s has type %s, want %s", c.Name, a.DataType(), c.arrowType)
		}
		a.Retain()
		cols[i] = a
	}
	return array.NewRecordBatch(t.schema, cols, rec.NumRows()), nil
}
