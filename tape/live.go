package tape

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/protobuf/proto"

	"github.com/flowtape/flowtape/schema"
)

// A live recording is readable while it is written. A segment's file is
// published only when it ends (minutes, or 256 MB, later); until then the
// rows of each flush are also published as a small file of their own, a
// piece of the segment, named after it:
//
//	NAME.p000001.parquet, NAME.p000002.parquet, ...  until NAME.parquet exists
//
// A piece is written beside the segment at each flush, after the WAL is
// synced (so a piece never holds a row the WAL could lose), to a hidden
// .tmp name and renamed in: a reader never sees half a piece. Pieces are
// not synced to disk: the WAL is what survives a crash, and recovery
// replaces a crashed segment's pieces with its file (after a power loss a
// piece may be torn; reading it fails naming it, and recover mends it).
//
// Readers (FindFiles) take a piece only while its segment's file is not
// there: once NAME.parquet is published, it holds every row of its pieces,
// and they are skipped. So a reader counts every flushed row once: in
// pieces before the segment ends, in the segment's file after. The pieces
// of an ended segment stay on disk for defaults.LiveGrace, for readers
// that listed them just before (a query over a listing takes seconds);
// the writer then removes them, or removes them all when it closes, and
// Recover removes those of the files it publishes.
//
// Rows are encoded from protobuf once: the batch of each flush goes both
// to the segment's file (into its open row group) and to the piece. The
// price is a second Parquet encoding of each batch (BenchmarkSinkLive
// measures it); import sessions write no pieces.

const pieceMarker = ".p"

// pieceName is the name of a segment's n-th piece.
func pieceName(final string, n int) string {
	return strings.TrimSuffix(final, parquetSuffix) + fmt.Sprintf("%s%06d%s", pieceMarker, n, parquetSuffix)
}

// IsPiece reports whether a file is a live segment's piece.
func IsPiece(path string) bool {
	_, ok := pieceOf(path)
	return ok
}

// pieceOf returns the segment file a piece belongs to; ok is false for a
// path that is not a piece.
func pieceOf(path string) (final string, ok bool) {
	base := strings.TrimSuffix(path, parquetSuffix)
	i := strings.LastIndex(base, pieceMarker)
	if i < 0 || len(base)-i != len(pieceMarker)+6 {
		return "", false
	}
	if _, err := strconv.Atoi(base[i+len(pieceMarker):]); err != nil {
		return "", false
	}
	final = base[:i] + parquetSuffix
	if _, ok := parseSegmentName(final); !ok {
		return "", false
	}
	return final, true
}

// superseded drops the pieces whose segment file is among files: that file
// holds their rows.
func superseded(files []string) []string {
	have := make(map[string]bool, len(files))
	for _, f := range files {
		have[filepath.Clean(f)] = true
	}
	out := files[:0:0]
	for _, f := range files {
		if final, ok := pieceOf(f); ok && have[filepath.Clean(final)] {
			continue
		}
		out = append(out, f)
	}
	return out
}

// pieces publishes a segment's rows flush by flush (see above).
type pieces[M proto.Message] struct {
	t     *schema.Table[M]
	final string
	o     WriterOptions

	n     int // pieces published
	tmp   string
	file  *os.File
	pw    *FileWriter[M]
	paths []string // published
	bytes int64    // published, on disk
	ended bool     // the segment's file is being published: no more pieces
}

// write adds a batch of the segment's rows to the piece being written.
func (p *pieces[M]) write(rec arrow.RecordBatch) error {
	if p.ended {
		return nil
	}
	if p.pw == nil {
		p.n++
		p.tmp = hiddenPath(pieceName(p.final, p.n), tmpSuffix)
		var err error
		if p.file, err = os.OpenFile(p.tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, fileMode); err != nil {
			return fmt.Errorf("create %s: %w", p.tmp, err)
		}
		if p.pw, err = NewFileWriter(p.t, struct{ io.Writer }{p.file}, p.o); err != nil {
			p.file.Close()
			os.Remove(p.tmp)
			p.pw = nil
			return err
		}
	}
	if err := p.pw.writeRecord(rec); err != nil {
		return fmt.Errorf("write %s: %w", p.tmp, err)
	}
	return nil
}

// publish ends the piece being written, if any, and renames it in.
func (p *pieces[M]) publish() error {
	if p.pw == nil {
		return nil
	}
	pw, f := p.pw, p.file
	p.pw, p.file = nil, nil
	defer f.Close()
	// Not synced: the WAL, synced first, is what survives a crash, and
	// recovery replaces a crashed segment's pieces with its file.
	err := pw.Close()
	var size int64
	if err == nil {
		var st os.FileInfo
		if st, err = f.Stat(); err == nil {
			size = st.Size()
		}
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		os.Remove(p.tmp)
		return fmt.Errorf("finish %s: %w", p.tmp, err)
	}
	name := pieceName(p.final, p.n)
	if err := os.Rename(p.tmp, name); err != nil {
		os.Remove(p.tmp)
		return fmt.Errorf("publish %s: %w", name, err)
	}
	p.paths = append(p.paths, name)
	p.bytes += size
	return nil
}

// end drops the piece being written: the segment's file, about to be
// published, holds its rows, and those still to come.
func (p *pieces[M]) end() {
	p.ended = true
	p.discard()
}

// discard drops the piece being written.
func (p *pieces[M]) discard() {
	if p.file != nil {
		p.file.Close()
		os.Remove(p.tmp)
		p.pw, p.file = nil, nil
	}
}

// openBytes is what the pieces take on disk, the one being written
// included.
func (p *pieces[M]) openBytes() int64 {
	n := p.bytes
	if p.file != nil {
		if st, err := p.file.Stat(); err == nil {
			n += st.Size()
		}
	}
	return n
}

// retired are pieces of ended segments, removed once no reader that
// listed them before their segment ended can still be reading them.
type retired struct {
	paths []string
	bytes int64
	at    time.Time
}

// removeRetired removes the pieces retired before cutoff (all, with a
// zero cutoff) and returns those left.
func removeRetired(rs []retired, cutoff time.Time) ([]retired, error) {
	var errs []error
	keep := rs[:0]
	for _, r := range rs {
		if !cutoff.IsZero() && r.at.After(cutoff) {
			keep = append(keep, r)
			continue
		}
		for _, p := range r.paths {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
			}
		}
	}
	return keep, errors.Join(errs...)
}
