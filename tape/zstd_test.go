package tape_test

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/compress"

	_ "github.com/flowtape/flowtape/tape" // registers the page codec
)

// Pages compress to ordinary zstd frames that arrow-go decodes, and a page
// compressed after a garbage collection reuses an encoder: it allocates
// little, not a new encoder's 16 MB of history (see zstd.go).
func TestPageZstdKeepsEncodersThroughCollections(t *testing.T) {
	codec, err := compress.GetCodec(compress.Codecs.Zstd)
	if err != nil {
		t.Fatal(err)
	}
	page := bytes.Repeat([]byte("productcatalogservice-5d8c9bd6f6-x2x9q GET /hipstershop.ProductCatalogService/ListProducts "), 10_000)
	enc := codec.EncodeLevel(nil, page, 3)
	if len(enc) >= len(page)/10 {
		t.Errorf("a repetitive page of %d bytes compressed to %d", len(page), len(enc))
	}
	dec, err := compress.Decode(codec, nil, enc)
	if err != nil || !bytes.Equal(dec, page) {
		t.Fatalf("decoded %d bytes, %v; want the page back", len(dec), err)
	}
	var before, after runtime.MemStats
	const pages = 20
	var total uint64
	for i := 0; i < pages; i++ {
		runtime.GC()
		runtime.ReadMemStats(&before)
		enc = codec.EncodeLevel(enc[:0], page, 3)
		runtime.ReadMemStats(&after)
		total += after.TotalAlloc - before.TotalAlloc
	}
	if per := total / pages; per > 1<<20 {
		t.Errorf("a page after a collection allocated %d bytes: its encoder was not kept", per)
	}
}
