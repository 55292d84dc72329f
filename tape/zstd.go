package tape

import (
	"io"
	"runtime"
	"sync"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/zstd"
)

// arrow-go compresses each Parquet page with a zstd encoder taken from a
// sync.Pool, made with zstd's default 8 MB window: 16 MB of history that a
// new encoder allocates and clears on its first page. A garbage collection
// empties the pool, and a recorder collects often (it runs under a memory
// limit, see defaults.RecorderMemoryLimit): most flushes then paid for new
// encoders, and the garbage they made brought the next collection sooner.
// With the derived tables' pages (five files per flush instead of one),
// the recorder took 1.8x the CPU per flow it took without them
// (BenchmarkRecord, derived-cpu-ratio).
//
// pageZstd encodes pages with encoders that keep (a free list the
// collector does not empty) and a 1 MB window: dictionary pages stop at
// 1 MB (arrow-go's limit), and a dictionary column's data pages are its
// indices, far smaller. Only plain values, of a column without a
// dictionary or one whose dictionary passed 1 MB (many distinct values),
// make larger pages, up to defaults.DataPageBytes, when a row group's
// values pass 1 MB. Such values seldom repeat (uniqueColumns are 8-36
// bytes each, under 1 MB a group), and a larger window would cost each
// encoder twice its size in history. The frames are ordinary zstd.
// Decoding, and streams, are arrow-go's own.
type pageZstd struct {
	base compress.Codec

	mu   sync.Mutex
	free map[zstd.EncoderLevel][]*zstd.Encoder
}

// pageWindow is the encoders' window (see pageZstd).
const pageWindow = 1 << 20

func init() {
	// arrow-go registers its codec in its own init, which runs first.
	base, err := compress.GetCodec(compress.Codecs.Zstd)
	if err != nil {
		return // no zstd to replace: arrow-go's codecs are what they are
	}
	compress.RegisterCodec(compress.Codecs.Zstd, &pageZstd{base: base, free: map[zstd.EncoderLevel][]*zstd.Encoder{}})
}

func (z *pageZstd) Encode(dst, src []byte) []byte {
	return z.EncodeLevel(dst, src, compress.DefaultCompressionLevel)
}

func (z *pageZstd) EncodeLevel(dst, src []byte, level int) []byte {
	l := zstd.SpeedDefault
	if level != compress.DefaultCompressionLevel {
		l = zstd.EncoderLevelFromZstd(level)
	}
	enc := z.get(l)
	if enc == nil {
		return z.base.EncodeLevel(dst, src, level)
	}
	out := enc.EncodeAll(src, dst[:0])
	z.put(l, enc)
	return out
}

func (z *pageZstd) get(l zstd.EncoderLevel) *zstd.Encoder {
	z.mu.Lock()
	if n := len(z.free[l]); n > 0 {
		enc := z.free[l][n-1]
		z.free[l] = z.free[l][:n-1]
		z.mu.Unlock()
		return enc
	}
	z.mu.Unlock()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(l), zstd.WithWindowSize(pageWindow), zstd.WithZeroFrames(true),
		zstd.WithEncoderConcurrency(1), zstd.WithAllLitEntropyCompression(true))
	if err != nil {
		return nil
	}
	return enc
}

// put keeps an encoder for the next page: as many as pages are encoded at
// once (one per file being written, at most a few per core).
func (z *pageZstd) put(l zstd.EncoderLevel, enc *zstd.Encoder) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if len(z.free[l]) < 2*runtime.GOMAXPROCS(0) {
		z.free[l] = append(z.free[l], enc)
	}
}

func (z *pageZstd) CompressBound(n int64) int64 { return z.base.CompressBound(n) }

func (z *pageZstd) Decode(dst, src []byte) []byte { return z.base.Decode(dst, src) }

func (z *pageZstd) DecodeWithError(dst, src []byte) ([]byte, error) {
	return compress.Decode(z.base, dst, src)
}

func (z *pageZstd) NewReader(r io.Reader) io.ReadCloser {
	return z.base.(compress.StreamingCodec).NewReader(r)
}

func (z *pageZstd) NewWriter(w io.Writer) io.WriteCloser {
	return z.base.(compress.StreamingCodec).NewWriter(w)
}

func (z *pageZstd) NewWriterLevel(w io.Writer, level int) (io.WriteCloser, error) {
	return z.base.(compress.StreamingCodec).NewWriterLevel(w, level)
}
