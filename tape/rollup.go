package tape

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/flowtape/flowtape/schema"
)

// KindRollup is a rollup's kind (footer) and its directory in a
// recording: rollup/date=D/summary.parquet, the hour rows of a day's
// summary files (see analyze/rollup.go, which decides when to write one).
const KindRollup = "rollup"

// RollupSchema is a rollup's: the summary table's columns and the
// session (recording id) each row comes from.
func RollupSchema() *arrow.Schema {
	fields := append(schema.SummaryTable.ArrowSchema().Fields(), arrow.Field{Name: "session", Type: arrow.BinaryTypes.String, Nullable: true})
	return arrow.NewSchema(fields, nil)
}

// WriteRollup writes the hour rows of summary files (in the order given)
// into out, atomically, with footer metadata meta. It streams: a file's
// rows at a time. (Minute rows stay in the files: a window that cuts an
// hour reads that hour's files, a long one hour rows.)
func WriteRollup(ctx context.Context, out string, files []string, meta map[string]string) error {
	sch := RollupSchema()
	tmp := hiddenPath(out, tmpSuffix)
	d, err := createDerived(tmp, KindRollup, sch, derivedMeta(WriterOptions{Metadata: meta}))
	if err != nil {
		return err
	}
	for _, p := range files {
		if err := ctx.Err(); err != nil {
			d.discard()
			return err
		}
		if err := copyHours(ctx, d.bf, sch, p, SessionOf(p)); err != nil {
			d.discard()
			if ue := (*UnreadableError)(nil); errors.As(err, &ue) && ue.Path == p {
				return fmt.Errorf("roll up into %s: %w", out, err) // it names p
			}
			return fmt.Errorf("roll up %s into %s: %w", p, out, err)
		}
	}
	if err := d.finish(true); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("publish %s: %w", out, err)
	}
	return syncDirsOf([]string{out})
}

// copyHours appends the hour rows of summary file p to bf, with their
// session.
func copyHours(ctx context.Context, bf *batchFile, sch *arrow.Schema, p, session string) error {
	rdr, err := openParquet(p)
	if err != nil {
		return err
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, memory.DefaultAllocator)
	if err != nil {
		return err
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer rr.Release()
	grain := -1
	minutes := false // a minute row came: no hour row may follow
	return eachBatch(rr, p, func(rec arrow.RecordBatch) error {
		if grain < 0 {
			if idx := rec.Schema().FieldIndices("grain"); len(idx) == 1 {
				grain = idx[0]
			} else {
				return errors.New("no grain column: not a summary file of this flowtape")
			}
		}
		g, ok := rec.Column(grain).(*array.String)
		if !ok {
			return fmt.Errorf("grain is %s, want strings", rec.Column(grain).DataType())
		}
		// the hour rows are a prefix of the file
		k := 0
		for k < g.Len() && !minutes && g.Value(k) == schema.GrainHour {
			k++
		}
		for i := k; i < g.Len(); i++ {
			if g.Value(i) == schema.GrainHour {
				return errors.New("an hour row after a minute row: not a summary file of this flowtape")
			}
		}
		if k < g.Len() {
			minutes = true
		}
		if k == 0 {
			return nil
		}
		out := withSession(sch, rec.NewSlice(0, int64(k)), session)
		err := bf.writeBuffered(out)
		out.Release()
		return err
	})
}

// withSession is rec (released) in the rollup's schema, with its session:
// the columns' data as they are, typed as the rollup's fields (a list read
// back names its element otherwise than the writer's).
func withSession(sch *arrow.Schema, rec arrow.RecordBatch, session string) arrow.RecordBatch {
	defer rec.Release()
	cols := make([]arrow.Array, 0, sch.NumFields())
	for i, f := range sch.Fields()[:sch.NumFields()-1] {
		c := rec.Column(i)
		if !arrow.TypeEqual(c.DataType(), f.Type) {
			data := c.Data()
			c = array.MakeFromData(array.NewData(f.Type, data.Len(), data.Buffers(), data.Children(), data.NullN(), data.Offset()))
			defer c.Release()
		}
		cols = append(cols, c)
	}
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	for range rec.NumRows() {
		b.Append(session)
	}
	s := b.NewArray()
	defer s.Release()
	return array.NewRecordBatch(sch, append(cols, s), rec.NumRows())
}

// RollupDir is where a recording keeps the rollup of a day (YYYY-MM-DD).
func RollupDir(dir, day string) string {
	return filepath.Join(dir, KindRollup, "date="+day)
}
