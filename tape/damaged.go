package tape

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"

	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Damaged pages. What: a file whose page arrow-go cannot read is an
// UnreadableError naming it, whichever reader meets it. Why: arrow-go's
// Parquet reader (v18.8.0) panics on some damaged pages rather than
// failing: a page header whose type byte is changed (one flipped bit on
// disk or in a copy) leaves its data page header nil, and
// serializedPageReader.Next dereferences it. The readers of flows run in
// goroutines of their own (decode.go), where a panic ends the process: one
// damaged file would end a replay server with every client's stream, or
// an export, a reindex or an analysis's catalog with a Go stack trace
// instead of a line naming the file. The trade-off: only reading a batch
// is guarded (nextBatch), not the code that uses the batch, so that a bug
// of flowtape's still panics as a bug rather than blaming the user's
// file. Guarded by TestReadersOfADamagedPage.

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
// the context's error, or a page it could not read (a checksum that does
// not match, data that does not decompress) as an UnreadableError.
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
