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

// Decode converts row i of rec back into a message. To decode many rows of
// a batch, bind the batch once (NewRowDecoder) instead.
func (t *Table[M]) Decode(rec arrow.RecordBatch, i int) (M, error) {
	var zero M
	cols := rec.Columns()
	if len(cols) != len(t.Columns) {
		return zero, fmt.Errorf("record has %d columns, schema %s has %d", len(cols), t.Kind, len(t.Columns))
	}
	d, err := t.newRowDecoder(cols, false)
	if err != nil {
		return zero, err
	}
	return d.Decode(i)
}

// RowDecoder decodes the rows of one record batch. What does not depend on
// the row (type assertions, dictionaries, which columns are all NULL) is
// worked out once, when it is made; after that it only reads, so that
// goroutines can decode rows of the same batch at once.
type RowDecoder[M proto.Message] struct {
	newMsg func() M
	first  int // the number of row 0 in errors: its position in the file
	// The residual: per row (extra), or as the templates of a dictionary's
	// values (templates, at index extraIdx[i]); both nil when no row has one.
	extra     func(i int) []byte
	templates []extraTemplate
	extraIdx  []int32
	nulls     nullMask // of extra
	cols      []boundColumn[M]
}

type boundColumn[M proto.Message] struct {
	set   func(m M, i int) error
	nulls nullMask
}

// extraTemplate is one distinct residual of a batch, decoded once if
// enough rows share it.
type extraTemplate struct {
	tmpl *template // nil: decode raw for each row
	raw  []byte
	err  error // decoding raw failed (when tried once for all rows)
}

// minTemplateUses is how many rows of a batch must share a residual for it
// to be decoded once as a template.
const minTemplateUses = 32

// nullMask is an array's validity bitmap, or none when it has no NULLs.
type nullMask struct {
	bits   []byte
	offset int
}

func nullMaskOf(a arrow.Array) nullMask {
	if a.NullN() == 0 {
		return nullMask{}
	}
	return nullMask{bits: a.NullBitmapBytes(), offset: a.Data().Offset()}
}

func (n nullMask) valid(i int) bool {
	if n.bits == nil {
		return true
	}
	i += n.offset
	return n.bits[i>>3]&(1<<(i&7)) != 0
}

// NewRowDecoder binds the columns of a batch read from a recording file: of
// any minor version (columns it lacks are NULL), strings and binary values
// plain or dictionary-encoded, as Parquet stores them. first is the
// position of the batch's row 0 in its file, for errors. A
// dictionary-encoded residual whose values repeat is decoded once per
// value, not once per row.
func (t *Table[M]) NewRowDecoder(rec arrow.RecordBatch, first int64) (*RowDecoder[M], error) {
	cols, err := t.columnsOf(rec)
	if err != nil {
		return nil, err
	}
	d, err := t.newRowDecoder(cols, true)
	if err != nil {
		return nil, err
	}
	d.first = int(first)
	return d, nil
}

// newRowDecoder binds a batch's columns, in t's order; a nil column is all
// NULL. With templates, a dictionary-encoded residual whose values repeat
// is decoded once per value, not once per row.
func (t *Table[M]) newRowDecoder(cols []arrow.Array, templates bool) (*RowDecoder[M], error) {
	d := &RowDecoder[M]{newMsg: t.newMsg}
	last := len(t.Columns) - 1
	for j, a := range cols {
		// Columns with no value in this batch cost nothing per row.
		if a == nil || (j != last && t.Columns[j].Derived) || a.NullN() == a.Len() {
			continue
		}
		if j == last {
			if err := d.bindExtra(a, templates); err != nil {
				return nil, err
			}
			continue
		}
		c := &t.Columns[j]
		set, ok := c.decoder(a)
		if !ok {
			return nil, fmt.Errorf("column %s has type %s, want %s", c.Name, a.DataType(), c.arrowType)
		}
		d.cols = append(d.cols, boundColumn[M]{set: set, nulls: nullMaskOf(a)})
	}
	return d, nil
}

func (d *RowDecoder[M]) bindExtra(a arrow.Array, templates bool) error {
	d.nulls = nullMaskOf(a)
	if da, ok := a.(*array.Dictionary); ok && templates {
		dict, ok1 := da.Dictionary().(*array.Binary)
		ix, ok2 := da.Indices().(*array.Int32)
		if ok1 && ok2 && dict.Len() <= a.Len() {
			idx := ix.Int32Values()
			uses := make([]int32, dict.Len())
			for i, k := range idx {
				if d.nulls.valid(i) {
					uses[k]++
				}
			}
			d.extraIdx = idx
			d.templates = make([]extraTemplate, dict.Len())
			for k := range d.templates {
				e := &d.templates[k]
				e.raw = dict.Value(k)
				// A template costs some copies' worth to make: a residual
				// that few rows share is decoded for each of them.
				if uses[k] < minTemplateUses {
					continue
				}
				m := d.newMsg()
				if e.err = proto.Unmarshal(e.raw, m); e.err == nil {
					e.tmpl = newTemplate(m)
				}
			}
			return nil
		}
	}
	get, ok := binaryValues(a)
	if !ok {
		return fmt.Errorf("column %s has type %s, want %s", ExtraColumn, a.DataType(), cBinary.arrowType)
	}
	d.extra = get
	return nil
}

// Decode converts row i back into a message: the residual first, then the
// columns' values on top of it (into the messages the residual created).
func (d *RowDecoder[M]) Decode(i int) (M, error) {
	m, err := d.residual(i)
	if err != nil {
		return m, fmt.Errorf("row %d: decode %s column: %w", d.first+i, ExtraColumn, err)
	}
	for j := range d.cols {
		c := &d.cols[j]
		if !c.nulls.valid(i) {
			continue
		}
		if err := c.set(m, i); err != nil {
			return m, fmt.Errorf("row %d: %w", d.first+i, err)
		}
	}
	return m, nil
}

func (d *RowDecoder[M]) residual(i int) (M, error) {
	switch {
	case d.extraIdx != nil && d.nulls.valid(i):
		e := &d.templates[d.extraIdx[i]]
		if e.tmpl != nil {
			return e.tmpl.build().Interface().(M), nil
		}
		m := d.newMsg()
		if e.err != nil {
			return m, e.err
		}
		return m, proto.Unmarshal(e.raw, m)
	case d.extra != nil && d.nulls.valid(i):
		m := d.newMsg()
		return m, proto.Unmarshal(d.extra(i), m)
	}
	return d.newMsg(), nil
}

// columnsOf returns the columns of rec in t's order, nil for those rec
// lacks (an older minor version, or not read); they are rec's, not retained.
func (t *Table[M]) columnsOf(rec arrow.RecordBatch) ([]arrow.Array, error) {
	sch := rec.Schema()
	cols := make([]arrow.Array, len(t.Columns))
	for i, c := range t.Columns {
		idx := sch.FieldIndices(c.Name)
		if len(idx) == 0 {
			continue
		}
		a := rec.Column(idx[0])
		if !sameValues(a.DataType(), c.arrowType) {
			return nil, fmt.Errorf("column %s has type %s, want %s", c.Name, a.DataType(), c.arrowType)
		}
		cols[i] = a
	}
	return cols, nil
}

// sameValues reports whether arrays of type got hold values of type want:
// the same type, but for strings and binary that may be dictionary-encoded.
func sameValues(got, want arrow.DataType) bool {
	if d, ok := got.(*arrow.DictionaryType); ok {
		switch want.ID() {
		case arrow.STRING, arrow.BINARY:
			return arrow.TypeEqual(d.ValueType, want)
		}
		return false
	}
	switch w := want.(type) {
	case *arrow.ListType:
		g, ok := got.(*arrow.ListType)
		return ok && sameValues(g.Elem(), w.Elem())
	case *arrow.StructType:
		g, ok := got.(*arrow.StructType)
		if !ok || g.NumFields() != w.NumFields() {
			return false
		}
		for k := range w.Fields() {
			if g.Field(k).Name != w.Field(k).Name || !sameValues(g.Field(k).Type, w.Field(k).Type) {
				return false
			}
		}
		return true
	}
	return arrow.TypeEqual(got, want)
}
