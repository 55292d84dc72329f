package tape

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/schema"
)

// A segment is one Parquet file being written. Until it is complete it
// exists as two hidden files next to where it will be:
//
//	.NAME.parquet.tmp  the Parquet file, row groups written as they fill
//	.NAME.parquet.wal  every row as length-prefixed protobuf, synced to disk
//	                   at each flush, so a killed recorder loses at most one
//	                   flush interval; `flowtape recover` rebuilds from it
//
// Finishing writes the footer, syncs, renames the .tmp to NAME.parquet and
// removes the WAL. Readers never see a half-written file under a .parquet
// name. A live segment also publishes its rows at each flush, as pieces
// (see live.go), so that readers see them before the segment ends.
type segment[M proto.Message] struct {
	final, tmp, walPath string
	opened              time.Time
	rows                int64
	file                *os.File
	pw                  *FileWriter[M]
	wal                 *os.File
	walZ                *zstd.Encoder
	walBuf              *bufio.Writer
	walBytes            int64 // uncompressed
	scratch             []byte
	live                *pieces[M] // nil: not readable before it ends
	// derived writes the derived files of a flow file (see derived.go);
	// nil for events, and for flow files outside a recording's layout.
	derived *derivation
}

// openSegment starts a segment; without a WAL a crash loses the segment,
// which suits writers that can start again from their input. A live
// segment (it needs a WAL) publishes pieces at each sync. A segment of
// flows writes its derived files, with its session's connections (conns),
// unless conns is nil, through queue when it is set.
func openSegment[M proto.Message](t *schema.Table[M], final string, o WriterOptions, wal, live bool, conns *schema.ConnState, queue *deriveQueue) (*segment[M], error) {
	if err := os.MkdirAll(filepath.Dir(final), dirMode); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(final), err)
	}
	s := &segment[M]{final: final, tmp: hiddenPath(final, tmpSuffix), walPath: hiddenPath(final, walSuffix), opened: time.Now()}
	var err error
	if wal {
		if err := s.openWAL(); err != nil {
			return nil, err
		}
	}
	if s.file, err = os.OpenFile(s.tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, fileMode); err != nil {
		s.closeWAL()
		return nil, fmt.Errorf("create %s: %w", s.tmp, err)
	}
	// Hidden behind a plain io.Writer, the file is not closed by the
	// Parquet writer: it must be synced before it is published.
	if s.pw, err = NewFileWriter(t, struct{ io.Writer }{s.file}, o); err != nil {
		s.closeWAL()
		s.file.Close()
		return nil, err
	}
	if wal && live {
		po := o
		po.CompressionLevel = defaults.PieceCompressionLevel
		s.live = &pieces[M]{t: t, final: final, o: po}
		s.pw.tap = s.live.write
	}
	if t.Kind == schema.KindFlows && conns != nil {
		if s.derived, err = derivedFor(final, o, s.live != nil, conns); err != nil {
			s.closeWAL()
			s.file.Close()
			os.Remove(s.tmp)
			return nil, err
		}
		if s.derived != nil {
			s.derived.queue = queue
			s.pw.derive = s.derived.add
		}
	}
	return s, nil
}

func (s *segment[M]) openWAL() error {
	final := s.final
	var err error
	if s.wal, err = os.OpenFile(s.walPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fileMode); err != nil {
		return fmt.Errorf("create %s: %w", s.walPath, err)
	}
	// The WAL is zstd-compressed: protobuf flows are ~1 KB each, ten
	// times what they take compressed.
	if s.walZ, err = zstd.NewWriter(s.wal, zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20)); err != nil {
		s.closeWAL()
		return err
	}
	s.walBuf = bufio.NewWriterSize(s.walZ, 256<<10)
	// The WAL's name must survive a crash too, not only its content.
	if err := syncDir(filepath.Dir(final)); err != nil {
		s.closeWAL()
		return err
	}
	return nil
}

func (s *segment[M]) closeWAL() {
	if s.wal != nil {
		s.wal.Close()
	}
}

// write adds a row; encoded, when not nil, is its protobuf encoding, which
// the WAL then keeps as it is.
func (s *segment[M]) write(m M, encoded []byte) error {
	if s.wal != nil {
		if err := s.appendWAL(m, encoded); err != nil {
			return err
		}
	}
	if err := s.pw.Write(m); err != nil {
		return fmt.Errorf("write %s: %w", s.tmp, err)
	}
	s.rows++
	return nil
}

// appendWAL adds a row to the WAL: its encoding as received when the
// caller has it (a recorder's flows: encoding them again was about a
// tenth of a recorder's CPU), else encoded here.
func (s *segment[M]) appendWAL(m M, encoded []byte) error {
	if encoded == nil {
		var err error
		if s.scratch, err = (proto.MarshalOptions{}).MarshalAppend(s.scratch[:0], m); err != nil {
			return fmt.Errorf("encode row: %w", err)
		}
		encoded = s.scratch
	}
	var n [binary.MaxVarintLen64]byte
	if _, err := s.walBuf.Write(n[:binary.PutUvarint(n[:], uint64(len(encoded)))]); err != nil {
		return fmt.Errorf("write %s: %w", s.walPath, err)
	}
	if _, err := s.walBuf.Write(encoded); err != nil {
		return fmt.Errorf("write %s: %w", s.walPath, err)
	}
	s.walBytes += int64(len(encoded))
	return nil
}

// size estimates the Parquet file's size: what its row groups take on disk,
// and the rows still buffered at the average so far (or 64 bytes, a
// little above what a flow takes, before the first row group).
func (s *segment[M]) size() int64 {
	st, err := s.file.Stat()
	if err != nil {
		return 0
	}
	written := st.Size()
	buffered := int64(s.pw.Buffered())
	perRow := int64(64)
	if done := s.rows - buffered; done > 0 && written > 0 {
		perRow = written / done
	}
	return written + buffered*perRow
}

// walSize is what the segment's WAL holds, uncompressed.
func (s *segment[M]) walSize() int64 { return s.walBytes }

// sync makes everything written so far survive a crash.
func (s *segment[M]) sync() error {
	if s.wal == nil {
		return nil
	}
	if err := s.flushWAL(); err != nil {
		return err
	}
	if s.live == nil || s.live.ended {
		// Ended: the file holds the rows (and its writer may be closed,
		// when publishing it failed and the WAL is kept for recover).
		return nil
	}
	// After the WAL: a piece holds no row a crash could take from the WAL.
	if err := s.pw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", s.tmp, err)
	}
	// A flow piece's derived pieces first: a reader that finds the flow
	// piece finds them.
	if s.derived != nil && s.live.pw != nil {
		if err := s.derived.publishPieces(pieceName(s.final, s.live.n)); err != nil {
			// No more pieces of this segment (its flow piece would hold
			// rows its derived pieces do not): its file, when published,
			// holds them all.
			s.live.end()
			s.derived.end()
			return err
		}
	}
	return s.live.publish()
}

// crashPoint, set by tests, is called where a segment starts completing
// its file: what the directory holds then is what a crash there leaves.
var crashPoint func(final string)

// flushWAL writes the WAL's buffered rows and syncs it.
func (s *segment[M]) flushWAL() error {
	if err := s.walBuf.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", s.walPath, err)
	}
	if err := s.walZ.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", s.walPath, err)
	}
	if err := s.wal.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", s.walPath, err)
	}
	return nil
}

// finish completes the Parquet file and publishes it under its final name.
// If that fails, the WAL is kept, for `flowtape recover`.
func (s *segment[M]) finish() (int64, error) {
	// The WAL first: a crash while the file is being completed (its
	// derived files take a while to encode) must find every row in the
	// WAL, not only those of the last flush. Later files' WALs may
	// already hold rows newer than this one's unflushed ones, so without
	// this a crash here would lose rows in the middle of the recording.
	// If the WAL cannot be written, the file is completed all the same:
	// published, it holds every row; else the WAL is what is left.
	var walErr error
	if s.wal != nil {
		walErr = s.flushWAL()
	}
	if crashPoint != nil {
		crashPoint(s.final)
	}
	if s.live != nil {
		s.live.end()
	}
	if s.derived != nil {
		s.derived.end()
	}
	size, err := s.publishParquet()
	if err != nil {
		_ = s.sync()
		s.closeWAL()
		return 0, errors.Join(walErr, err)
	}
	if s.wal == nil {
		return size, nil
	}
	s.wal.Close()
	if err := os.Remove(s.walPath); err != nil {
		return 0, fmt.Errorf("remove %s: %w", s.walPath, err)
	}
	return size, nil
}

// publishParquet writes the footer, syncs, closes and renames the file,
// its derived files first.
func (s *segment[M]) publishParquet() (int64, error) {
	defer s.file.Close() // a second Close after the one below is harmless
	if err := s.pw.Close(); err != nil {
		if s.derived != nil {
			s.derived.discard()
		}
		return 0, fmt.Errorf("finish %s: %w", s.tmp, err)
	}
	if s.derived != nil {
		if err := s.derived.finish(); err != nil {
			return 0, err
		}
		if err := s.derived.publish(s.final); err != nil {
			return 0, err
		}
	}
	if err := s.file.Sync(); err != nil {
		return 0, fmt.Errorf("sync %s: %w", s.tmp, err)
	}
	st, err := s.file.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", s.tmp, err)
	}
	if err := s.file.Close(); err != nil {
		return 0, fmt.Errorf("close %s: %w", s.tmp, err)
	}
	size := st.Size()
	if s.derived != nil {
		size += s.derived.bytes
	}
	return size, publish(s.tmp, s.final)
}

// writeFile writes a whole Parquet file of t's rows to f, which it syncs
// and closes: fill gives the rows to write. d, when not nil, derives the
// derived files of a flow file from the rows, and is finished but not
// published. The caller removes f and discards d on error, and publishes
// them otherwise, d first (recovery, compaction).
func writeFile[M proto.Message](t *schema.Table[M], f *os.File, o WriterOptions, d *derivation, fill func(write func(M) error) error) error {
	pw, err := NewFileWriter(t, struct{ io.Writer }{f}, o)
	if err != nil {
		f.Close()
		return err
	}
	if d != nil {
		pw.derive = d.add
	}
	err = fill(pw.Write)
	if err == nil {
		err = pw.Close()
	}
	if err == nil && d != nil {
		err = d.finish()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeSmall writes b as final, whole or not at all, durably: to tmp,
// synced, then published (the manifest, compaction notes).
func writeSmall(tmp, final string, b []byte) error {
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, fileMode)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return publish(tmp, final)
}

// publish renames tmp to final and syncs the directory, so the new name
// survives a crash.
func publish(tmp, final string) error {
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("publish %s: %w", final, err)
	}
	return syncDir(filepath.Dir(final))
}

// syncDir makes a directory's entries durable, and those of its parents up
// to the recording's date= level (new partitions are new directories).
func syncDir(dir string) error {
	for i := 0; i < 3; i++ {
		d, err := os.Open(dir)
		if err != nil {
			return fmt.Errorf("sync %s: %w", dir, err)
		}
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", dir, err)
		}
		dir = filepath.Dir(dir)
	}
	return nil
}

// readWAL calls fn for every complete record of a WAL file; a torn end
// (the process died while writing) is reported as a non-zero count of
// bytes of the record it cut.
func readWAL(path string, fn func([]byte) error) (records int64, tornBytes int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	zr, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return 0, 0, err
	}
	defer zr.Close()
	r := bufio.NewReaderSize(zr, 1<<20)
	var buf []byte
	for {
		// The zstd frame of a WAL is never closed (the process ends, or
		// dies, with it open): its end reads as an unexpected EOF. Between
		// records that is the clean end.
		if _, err := r.ReadByte(); err != nil {
			return records, 0, nil
		}
		_ = r.UnreadByte()
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return records, 1, nil
		}
		if n > 64<<20 {
			return records, 1, nil
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if k, err := io.ReadFull(r, buf); err != nil {
			return records, int64(k) + 1, nil
		}
		if err := fn(buf); err != nil {
			return records, 0, err
		}
		records++
	}
}

// WriteFile writes rows of t as a complete file at path, under a hidden
// name first, with a flow file's derived files when path is in a
// recording's layout (see derived.go): for tools and tests that make
// recording files without a recorder.
func WriteFile[M proto.Message](t *schema.Table[M], path string, rows []M, o WriterOptions) error {
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	tmp := hiddenPath(path, tmpSuffix)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, fileMode)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	d, err := derivationOf(t, path, o)
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	err = writeFile(t, f, o, d, func(write func(M) error) error {
		for _, m := range rows {
			if err := write(m); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = d.publish(path)
	}
	if err != nil {
		os.Remove(tmp)
		d.discard()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return publish(tmp, path)
}
