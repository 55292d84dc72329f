package testutil

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// DamagePageHeader changes the type of the first page of column name in
// Parquet file p (its first row group) between data and dictionary page,
// so that the header lacks the part its type names, which arrow-go
// dereferences and panics on: the damage one flipped bit on disk or in a
// copy can do, which flowtape's readers must report as an error. The
// byte is not looked for by trying each: some other damage to a header
// sends arrow-go into minutes of decoding. The test fails where the
// header is not as Parquet's compact Thrift writes it. Whether arrow-go
// panics on the file is the caller's to check (ArrowPanics), where no
// library of C++ has taken the process's SIGSEGV handler: chDB (ClickHouse)
// does, and then the nil dereference Go would recover from ends the
// process (cmd's test binary died so in CI).
func DamagePageHeader(t testing.TB, p, name string) {
	t.Helper()
	b := readFile(t, p)
	at, _ := FirstPage(t, p, name)
	// field 1 (type, i32): 0x15, then the type zigzag-encoded: 0x00 a data
	// page, 0x04 a dictionary page
	if at+1 >= len(b) || b[at] != 0x15 || b[at+1] != 0x00 && b[at+1] != 0x04 {
		t.Fatalf("%s: column %s's first page header begins % x, not a data or dictionary page's type", p, name, b[at:min(at+2, len(b))])
	}
	c := bytes.Clone(b)
	c[at+1] ^= 0x04
	if err := os.WriteFile(p, c, 0o600); err != nil {
		t.Fatal(err)
	}
}

// DamageFooter changes one byte of Parquet file p's footer, one that
// makes arrow-go itself panic when it opens the file (a schema element's
// logical type it cannot parse, for one). The test fails where none does.
func DamageFooter(t testing.TB, p string) {
	t.Helper()
	b := readFile(t, p)
	if len(b) < 12 {
		t.Fatalf("%s: %d bytes, no footer", p, len(b))
	}
	size := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
	for i := max(len(b)-8-size, 0); i < len(b)-8; i++ {
		c := bytes.Clone(b)
		c[i] ^= 0xff
		if footerPanics(c) {
			if err := os.WriteFile(p, c, 0o600); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("%s: no byte of the footer makes arrow-go panic: the test proves nothing", p)
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func footerPanics(b []byte) (did bool) {
	defer func() { did = recover() != nil }()
	rdr, err := file.NewParquetReader(bytes.NewReader(b))
	if err == nil {
		rdr.Close()
	}
	return false
}

// FirstPage is where the first page header of column name of Parquet file
// p begins, and where that column's data in the first row group ends.
func FirstPage(t testing.TB, p, name string) (header, end int) {
	t.Helper()
	rdr, err := file.OpenParquetFile(p, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Close()
	col := rdr.MetaData().Schema.ColumnIndexByName(name)
	if col < 0 {
		t.Fatalf("%s: no column %s", p, name)
	}
	cc, err := rdr.MetaData().RowGroup(0).ColumnChunk(col)
	if err != nil {
		t.Fatal(err)
	}
	start := cc.DataPageOffset()
	if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 {
		start = min(start, cc.DictionaryPageOffset())
	}
	return int(start), int(start + cc.TotalCompressedSize())
}

// ArrowPanics reports whether arrow-go itself, unguarded, panics reading
// every column of the Parquet file b.
func ArrowPanics(b []byte) (did bool) {
	defer func() { did = recover() != nil }()
	rdr, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		return false
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.DefaultAllocator)
	if err != nil {
		return false
	}
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		return false
	}
	defer rr.Release()
	for rr.Next() {
	}
	return false
}
