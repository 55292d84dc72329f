package tape

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Damaged files. What: a recording file whose footer or page arrow-go
// cannot read is an UnreadableError naming it, whichever reader meets it.
// Why: arrow-go's Parquet reader (v18.8.0) panics on some damaged bytes
// rather than failing: a page header whose type byte is changed (one
// flipped bit on disk or in a copy) leaves its data page header nil, which
// serializedPageReader.Next dereferences; a changed byte of the footer's
// schema can make an invalid logical type, which parsing the footer panics
// on. The readers of flows run in goroutines of their own (decode.go), and
// replay opens files on every request, where a panic ends the process: one
// damaged file would end a replay server with every client's stream, or an
// export, a reindex or an analysis's catalog with a Go stack trace instead
// of a line naming the file. The trade-off: only opening a file
// (openParquet) and reading a batch (eachBatch: arrow-go's page reading,
// with the zstd decoding flowtape gives it) are guarded, not the code that
// uses the batch, so that a bug there still panics as a bug rather than
// blaming the user's file. Guarded by TestReadersOfADamagedPage.

// openParquet opens Parquet file path and parses its footer; a file that
// cannot be opened so (missing, cut short, damaged) is an UnreadableError.
func openParquet(path string, opts ...file.ReadOption) (rdr *file.Reader, err error) {
	defer func() {
		if r := recover(); r != nil {
			slog.Debug("arrow-go panicked reading a footer", "file", path, "panic", r, "stack", string(debug.Stack()))
			rdr, err = nil, &UnreadableError{Path: path, Err: fmt.Errorf("a damaged footer (arrow-go: %v)", r)}
		}
	}()
	rdr, err = file.OpenParquetFile(path, false, opts...)
	if err != nil {
		return nil, &UnreadableError{Path: path, Err: err}
	}
	return rdr, nil
}

// errStopReading, returned by eachBatch's fn, ends the reading early
// without an error.
var errStopReading = errors.New("stop reading")

// eachBatch calls fn with each batch rr reads from file path, in order,
// until fn returns an error (errStopReading: stop, without one) or the
// rows end. A page arrow-go cannot read, or panics on, is an
// UnreadableError; fn is not guarded (see above). The batch is rr's: fn
// retains what it keeps.
func eachBatch(rr pqarrow.RecordReader, path string, fn func(arrow.RecordBatch) error) error {
	for {
		more, err := nextBatch(rr, path)
		if err != nil {
			return err
		}
		if !more {
			return readErr(rr, path)
		}
		if err := fn(rr.RecordBatch()); err != nil {
			if errors.Is(err, errStopReading) {
				return nil
			}
			return err
		}
	}
}

// nextBatch is rr.Next, with the panic arrow-go raises on a damaged page of
// file path as an UnreadableError.
func nextBatch(rr pqarrow.RecordReader, path string) (more bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			slog.Debug("arrow-go panicked reading a page", "file", path, "panic", r, "stack", string(debug.Stack()))
			more, err = false, &UnreadableError{Path: path, Err: fmt.Errorf("a damaged page (arrow-go: %v)", r)}
		}
	}()
	return rr.Next(), nil
}

// readErr is why rr stopped reading file path: nil at the end of its rows,
// or a page it could not read (a header that does not parse, data that
// does not decompress or fails zstd's checksum) as an UnreadableError. (A
// reader that stops for its context says so, should arrow-go's do.)
func readErr(rr pqarrow.RecordReader, path string) error {
	err := rr.Err()
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return nil
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return &UnreadableError{Path: path, Err: err}
}
