package importer

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// input is one file (or stdin): checked before the import starts, opened
// when its turn comes, decompressed by what its first bytes say, hashed and
// counted as it is read.
type input struct {
	name        string
	size        int64 // on disk; 0 when unknown (stdin, pipes)
	stdin       io.Reader
	compression string
	raw         io.Closer
	read        atomic.Int64 // bytes read from disk
	sum         hash.Hash
	r           *bufio.Reader
	closeDec    func()
}

// checkInput makes sure path ("-": stdin) can be imported, so that a wrong
// argument fails before any work; it does not keep the file open (an
// import may read hundreds).
func checkInput(path string, stdin io.Reader) (*input, error) {
	in := &input{name: path, sum: sha256.New(), closeDec: func() {}}
	if path == "-" {
		in.stdin = stdin
		return in, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPathErr(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("%s: is a directory; pass the files in it (e.g. %s/*.json)", path, path)
	}
	if fi.Mode().IsRegular() {
		in.size = fi.Size()
		magic := make([]byte, 4)
		n, _ := io.ReadFull(f, magic)
		if bytes.Equal(magic[:n], []byte("PAR1")) {
			return nil, fmt.Errorf("%s: is a Parquet file, not Hubble JSON; use it directly with flowtape export or query", path)
		}
	}
	return in, nil
}

// open starts reading the input.
func (in *input) open() error {
	var src io.Reader = in.stdin
	if in.stdin == nil {
		f, err := os.Open(in.name)
		if err != nil {
			return fmt.Errorf("%s: %w", in.name, unwrapPathErr(err))
		}
		in.raw, src = f, f
	}
	counted := bufio.NewReaderSize(io.TeeReader(&countingReader{r: src, n: &in.read}, in.sum), 256<<10)
	magic, _ := counted.Peek(4)
	var dec io.Reader = counted
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(counted)
		if err != nil {
			in.close()
			return fmt.Errorf("%s: gzip: %w", in.name, err)
		}
		in.compression, dec, in.closeDec = "gzip", zr, func() { zr.Close() }
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(counted, zstd.WithDecoderConcurrency(1))
		if err != nil {
			in.close()
			return fmt.Errorf("%s: zstd: %w", in.name, err)
		}
		in.compression, dec, in.closeDec = "zstd", zr, zr.Close
	}
	in.r = bufio.NewReaderSize(dec, 1<<20)
	return nil
}

// checksum is the SHA-256 of the bytes read so far, as stored on disk.
func (in *input) checksum() string { return hex.EncodeToString(in.sum.Sum(nil)) }

func (in *input) close() {
	in.closeDec()
	in.closeDec = func() {}
	if in.raw != nil {
		in.raw.Close()
		in.raw = nil
	}
	in.r = nil
}

// readLine returns the next line without its newline, of any length; buf
// is reused. io.EOF comes only after the last line.
func (in *input) readLine(buf []byte) ([]byte, error) {
	buf = buf[:0]
	for {
		chunk, err := in.r.ReadSlice('\n')
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return buf[:len(buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(buf) > 0 {
				return buf, nil
			}
			return nil, io.EOF
		default:
			return nil, fmt.Errorf("%s: read: %w", in.name, err)
		}
	}
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
