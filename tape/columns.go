package tape

import (
	"context"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// ReadColumns calls fn with batches of the named columns of a recording
// file, in the order of names, without decoding rows into messages: for
// summaries that need a few columns of many rows. String columns come as
// dictionary arrays (indices into each batch's dictionary), as they are
// stored, so a summary can count values without copying them. A name the
// file lacks (an older minor version) comes as a NULL column.
func ReadColumns(ctx context.Context, path string, names []string, fn func(arrow.RecordBatch) error) error {
	rdr, info, err := openAny(path)
	if err != nil {
		return err
	}
	defer rdr.Close()
	sch := rdr.MetaData().Schema
	props := pqarrow.ArrowReadProperties{BatchSize: 64 << 10}
	// A column's leaves: one, or several for a list of structs
	// (http_headers' keys and values).
	var leaves []int
	for i := 0; i < sch.NumColumns(); i++ {
		if !slices.Contains(names, sch.Column(i).ColumnPath()[0]) {
			continue
		}
		leaves = append(leaves, i)
		if sch.Column(i).PhysicalType() == parquet.Types.ByteArray {
			props.SetReadDict(i, true)
		}
	}
	fr, err := pqarrow.NewFileReader(rdr, props, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(leaves) == 0 {
		return fnNulls(fn, names, info.Rows)
	}
	rr, err := fr.GetRecordReader(ctx, leaves, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer rr.Release()
	return eachBatch(rr, path, func(b arrow.RecordBatch) error {
		rec, err := inNameOrder(b, names)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		err = fn(rec)
		rec.Release()
		return err
	})
}

// openAny opens a recording file of either kind, checking its version.
func openAny(path string) (*file.Reader, FileInfo, error) {
	rdr, err := openParquet(path)
	if err != nil {
		return nil, FileInfo{}, err
	}
	info, err := fileInfo(rdr)
	if err != nil {
		rdr.Close()
		return nil, info, fmt.Errorf("%s: %w", path, err)
	}
	return rdr, info, nil
}

// inNameOrder puts a batch's columns in the order of names, with NULL
// columns for names it lacks.
func inNameOrder(rec arrow.RecordBatch, names []string) (arrow.RecordBatch, error) {
	n := rec.NumRows()
	cols := make([]arrow.Array, len(names))
	fields := make([]arrow.Field, len(names))
	for i, name := range names {
		if idx := rec.Schema().FieldIndices(name); len(idx) > 0 {
			cols[i] = rec.Column(idx[0])
			cols[i].Retain()
			fields[i] = rec.Schema().Field(idx[0])
			continue
		}
		cols[i] = array.NewNull(int(n))
		fields[i] = arrow.Field{Name: name, Type: arrow.Null, Nullable: true}
	}
	out := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, n)
	for _, c := range cols {
		c.Release()
	}
	return out, nil
}

func fnNulls(fn func(arrow.RecordBatch) error, names []string, rows int64) error {
	const batch = 64 << 10
	for done := int64(0); done < rows; done += batch {
		n := min(batch, rows-done)
		cols := make([]arrow.Array, len(names))
		fields := make([]arrow.Field, len(names))
		for i, name := range names {
			cols[i] = array.NewNull(int(n))
			fields[i] = arrow.Field{Name: name, Type: arrow.Null, Nullable: true}
		}
		rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, n)
		for _, c := range cols {
			c.Release()
		}
		err := fn(rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return nil
}
