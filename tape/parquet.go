package tape

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"google.golang.org/protobuf/proto"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/schema"
)

// MetaRecordingID is the Parquet key-value metadata key of the recording
// id of the session that wrote a file (also part of its name).
const MetaRecordingID = "flowtape.recording_id"

// WriterOptions tune a Parquet file writer. The zero value is usable.
type WriterOptions struct {
	// Writer names the program, e.g. "flowtape 0.1.0"; stored as metadata.
	Writer string
	// RowGroupRows is the number of rows buffered before a row group is
	// written (default defaults.RowGroupRows). Smaller groups flush sooner
	// and prune finer; larger ones compress better.
	RowGroupRows int
	// Metadata is extra key-value metadata for the file footer.
	Metadata map[string]string
	// CompressionLevel is the zstd level of the pages (default
	// defaults.CompressionLevel).
	CompressionLevel int
}

// FileWriter writes rows of one table to a Parquet stream (zstd, dictionary
// encoding, statistics on, so that readers prune by time).
type FileWriter[M proto.Message] struct {
	enc          *schema.Encoder[M]
	fw           *batchFile
	rowGroupRows int
	batchRows    int // rows encoded at a time (a row group is filled from batches)
	rows         int64
	// tap, when set, gets every batch of rows the writer encodes (a live
	// segment hands each batch to its piece, see live.go, so that rows
	// are encoded from protobuf once).
	tap     func(arrow.RecordBatch) error
	pending int // rows in the open row group
	// derive, when set, gets every batch of rows too, after the file (the
	// derived files of a flow file, see derived.go).
	derive func(arrow.RecordBatch) error
}

// NewFileWriter starts a Parquet stream of t's rows on w.
func NewFileWriter[M proto.Message](t *schema.Table[M], w io.Writer, o WriterOptions) (*FileWriter[M], error) {
	o.RowGroupRows = defaults.Positive(o.RowGroupRows, defaults.RowGroupRows)
	fw, err := newBatchFile(t.ArrowSchema(), t.Kind, w, o)
	if err != nil {
		return nil, err
	}
	return &FileWriter[M]{enc: t.NewEncoder(nil), fw: fw, rowGroupRows: o.RowGroupRows,
		batchRows: min(o.RowGroupRows, defaults.EncodeBatchRows)}, nil
}

// Write buffers one row; every defaults.EncodeBatchRows rows are encoded
// into the open row group, which is written out when full.
func (w *FileWriter[M]) Write(m M) error {
	if err := w.enc.Append(m); err != nil {
		return err
	}
	w.rows++
	if w.enc.Len() >= w.batchRows {
		return w.Flush()
	}
	return nil
}

// Rows is the number of rows written so far, buffered ones included.
func (w *FileWriter[M]) Rows() int64 { return w.rows }

// Buffered is the number of rows not yet written out in a row group.
func (w *FileWriter[M]) Buffered() int { return w.enc.Len() + w.pending }

// Flush encodes the buffered rows into the open row group, which ends
// when full, and hands them to the tap and derive, if set.
func (w *FileWriter[M]) Flush() error {
	if w.enc.Len() == 0 {
		return nil
	}
	rec := w.enc.NewRecord()
	defer rec.Release()
	if err := w.fw.writeBuffered(rec); err != nil {
		return err
	}
	// pqarrow ends the open row group when a batch no longer fits, not when
	// it is full: a full group is still open (buffered) until the next.
	if w.pending += int(rec.NumRows()); w.pending > w.rowGroupRows {
		w.pending = (w.pending-1)%w.rowGroupRows + 1
	}
	if w.tap != nil {
		if err := w.tap(rec); err != nil {
			return err
		}
	}
	if w.derive != nil {
		return w.derive(rec)
	}
	return nil
}

// writeRecord writes a batch another writer encoded as a row group (a
// live piece's: written out at once, it holds no memory and counts in
// openBytes until the piece is published).
func (w *FileWriter[M]) writeRecord(rec arrow.RecordBatch) error {
	if err := w.fw.write(rec); err != nil {
		return err
	}
	w.rows += rec.NumRows()
	return nil
}

// Close flushes, writes the footer and closes the underlying writer.
func (w *FileWriter[M]) Close() error {
	defer w.enc.Release()
	ferr := w.Flush()
	cerr := w.fw.close()
	return errors.Join(ferr, cerr)
}

// batchFile writes record batches of one Arrow schema as a Parquet stream
// with flowtape's properties and footer metadata: the file writer of every
// kind, flows and events (FileWriter) and the derived kinds.
type batchFile struct {
	fw *pqarrow.FileWriter
}

func newBatchFile(sch *arrow.Schema, kind string, w io.Writer, o WriterOptions) (*batchFile, error) {
	if o.Writer == "" {
		o.Writer = "flowtape"
	}
	o.RowGroupRows = defaults.Positive(o.RowGroupRows, defaults.RowGroupRows)
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(defaults.Positive(o.CompressionLevel, defaults.CompressionLevel)),
		parquet.WithDictionaryDefault(true),
		parquet.WithStats(true),
		parquet.WithCreatedBy(o.Writer),
		parquet.WithMaxRowGroupLength(int64(o.RowGroupRows)),
		parquet.WithDataPageSize(defaults.DataPageBytes),
		// Times are nearly sorted: deltas beat a dictionary.
		parquet.WithDictionaryFor("time", false),
		parquet.WithEncodingFor("time", parquet.Encodings.DeltaBinaryPacked),
	}
	for _, c := range uniqueColumns {
		opts = append(opts, parquet.WithDictionaryFor(c, false))
	}
	props := parquet.NewWriterProperties(opts...)
	fw, err := pqarrow.NewFileWriter(sch, w, props, pqarrow.NewArrowWriterProperties())
	if err != nil {
		return nil, fmt.Errorf("start parquet file: %w", err)
	}
	meta := map[string]string{schema.MetaSchemaVersion: schema.Version, schema.MetaWriter: o.Writer, schema.MetaKind: kind}
	for k, v := range o.Metadata {
		meta[k] = v
	}
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		if err := fw.AppendKeyValueMetadata(k, meta[k]); err != nil {
			return nil, fmt.Errorf("parquet metadata %s: %w", k, err)
		}
	}
	return &batchFile{fw: fw}, nil
}

// uniqueColumns hold values that seldom repeat: flows' and requests'
// uuid, and requests' X-Request-Id and pairing hashes (call_key differs
// in every row; request_id and proxy_key come at most twice, from a
// call's client and server proxies). A dictionary of them only costs: CPU
// to hash every value, and bytes for indices beside a dictionary about as
// large as the plain values (requests: 10.1 against 8 bytes per key
// before compression).
var uniqueColumns = []string{"uuid", "request_id", "call_key", "proxy_key"}

// write writes a batch as row groups of its own.
func (f *batchFile) write(rec arrow.RecordBatch) error {
	if err := f.fw.Write(rec); err != nil {
		return fmt.Errorf("write row group: %w", err)
	}
	return nil
}

// writeBuffered adds a batch to the open row group.
func (f *batchFile) writeBuffered(rec arrow.RecordBatch) error {
	if err := f.fw.WriteBuffered(rec); err != nil {
		return fmt.Errorf("write row group: %w", err)
	}
	return nil
}

// close writes the footer and closes the underlying writer.
func (f *batchFile) close() error { return f.fw.Close() }

// setMeta adds key-value metadata to the footer, before close.
func (f *batchFile) setMeta(meta map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		if err := f.fw.AppendKeyValueMetadata(k, meta[k]); err != nil {
			return err
		}
	}
	return nil
}

// FileInfo is what a Parquet file's footer says about a recording file.
type FileInfo struct {
	Kind          string
	SchemaVersion string
	Writer        string
	Rows          int64
	RowGroups     int
	Metadata      map[string]string
}

// ReadFile calls fn for every row of the Parquet file at path, in file order.
// It refuses files of another row kind or an unsupported schema version.
func ReadFile[M proto.Message](ctx context.Context, t *schema.Table[M], path string, fn func(M) error) (FileInfo, error) {
	rdr, info, err := openFile(t, path)
	if err != nil {
		return info, err
	}
	defer rdr.Close()
	var fnErr error
	err = ignoreStop(readRows(ctx, t, rdr, path, nil, false, func(m M) bool {
		fnErr = fn(m)
		return fnErr == nil
	}))
	return info, errors.Join(err, fnErr)
}

// UnreadableError is a recording file that Parquet cannot open, cut
// short (a copy that did not finish, a full disk) or damaged, or one with
// a page that cannot be read (damaged.go).
type UnreadableError struct {
	Path string
	Err  error
}

func (e *UnreadableError) Error() string {
	return e.Path + ": not a readable Parquet file: " + e.Err.Error()
}
func (e *UnreadableError) Unwrap() error { return e.Err }

// ErrCutShort is a file that ends before its Parquet footer (or is
// empty); ErrNotParquet, one that does not begin as Parquet does.
var (
	ErrCutShort   = errors.New("it ends before its Parquet footer")
	ErrNotParquet = errors.New("it does not begin as a Parquet file")
)

// CheckParquet checks that a file begins and ends as a Parquet file does
// (its magic at both ends), reading 8 bytes: a file cut short lacks the
// footer, which Parquet writes last. It does not read the footer. The
// error does not name the file; it is ErrCutShort or ErrNotParquet where
// the file could be read.
func CheckParquet(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() < 12 {
		return fmt.Errorf("%w: %d bytes, too short for Parquet", ErrCutShort, st.Size())
	}
	head, tail := make([]byte, 4), make([]byte, 4)
	if _, err := f.ReadAt(head, 0); err != nil {
		return err
	}
	if _, err := f.ReadAt(tail, st.Size()-4); err != nil {
		return err
	}
	switch {
	case string(head) != "PAR1":
		return ErrNotParquet
	case string(tail) != "PAR1":
		return ErrCutShort
	}
	return nil
}

// Stat reads the footer of a recording file.
func Stat(path string) (FileInfo, error) {
	rdr, err := openParquet(path)
	if err != nil {
		return FileInfo{}, err
	}
	defer rdr.Close()
	info, err := fileInfo(rdr)
	if err != nil {
		return info, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

func fileInfo(rdr *file.Reader) (FileInfo, error) {
	md := rdr.MetaData()
	info := FileInfo{Rows: md.NumRows, RowGroups: rdr.NumRowGroups(), Metadata: map[string]string{}}
	kv := md.KeyValueMetadata()
	for i, k := range kv.Keys() {
		info.Metadata[k] = kv.Values()[i]
	}
	info.Kind = info.Metadata[schema.MetaKind]
	info.SchemaVersion = info.Metadata[schema.MetaSchemaVersion]
	info.Writer = info.Metadata[schema.MetaWriter]
	if err := schema.CheckVersion(info.SchemaVersion); err != nil {
		return info, err
	}
	return info, nil
}
