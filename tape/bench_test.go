package tape_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	pq "github.com/parquet-go/parquet-go"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

const benchFlowCount = 100_000

var benchFlows = sync.OnceValue(func() []*flowpb.Flow {
	// Minutes 1-2 of the incident scenario: the mix of a real recording.
	src := sim.NewSource(sim.Scenarios["incident"], 1, 2000, time.Date(2026, 11, 25, 13, 1, 30, 0, time.UTC))
	return src.Take(benchFlowCount)
})

func reportFlows(b *testing.B, n int, size int) {
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "flows/s")
	if size > 0 {
		b.ReportMetric(float64(size)/float64(n), "B/flow")
	}
}

// BenchmarkEncode writes the same flows to Parquet with each candidate
// library, from the same column table.
func BenchmarkEncode(b *testing.B) {
	flows := benchFlows()
	b.Run("arrow-builders-only", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			enc := schema.Flows.NewEncoder(nil)
			for _, f := range flows {
				if err := enc.Append(f); err != nil {
					b.Fatal(err)
				}
			}
			enc.NewRecord().Release()
			enc.Release()
		}
		reportFlows(b, len(flows), 0)
	})
	b.Run("arrow-go-pqarrow", func(b *testing.B) {
		var size int
		for i := 0; i < b.N; i++ {
			var buf bytes.Buffer
			testutil.WriteRows(b, &buf, schema.Flows, flows, tape.WriterOptions{})
			size = buf.Len()
		}
		reportFlows(b, len(flows), size)
	})
	b.Run("parquet-go", func(b *testing.B) {
		var size int
		for i := 0; i < b.N; i++ {
			var buf bytes.Buffer
			size = writeParquetGo(b, &buf, flows)
		}
		reportFlows(b, len(flows), size)
	})
}

// BenchmarkHubbleJSON is the baseline: the same flows as `hubble observe -o jsonpb`.
func BenchmarkHubbleJSON(b *testing.B) {
	flows := benchFlows()
	var raw, gz int
	for i := 0; i < b.N; i++ {
		var buf bytes.Buffer
		for _, f := range flows {
			line, err := protojson.Marshal(&observerpb.GetFlowsResponse{Time: f.GetTime(), NodeName: f.GetNodeName(),
				ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: f}})
			if err != nil {
				b.Fatal(err)
			}
			buf.Write(line)
			buf.WriteByte('\n')
		}
		raw = buf.Len()
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		if _, err := io.Copy(zw, &buf); err != nil {
			b.Fatal(err)
		}
		zw.Close()
		gz = z.Len()
	}
	reportFlows(b, len(flows), raw)
	b.ReportMetric(float64(gz)/float64(len(flows)), "gzipB/flow")
}

// writeParquetGo writes flows with parquet-go: the column table's Arrow
// values become parquet-go rows of an equivalent schema.
func writeParquetGo(b *testing.B, w io.Writer, flows []*flowpb.Flow) int {
	cols := schema.Flows.Columns
	group := pq.Group{}
	for _, c := range cols {
		group[c.Name] = pqNode(c.SQLType)
	}
	sch := pq.NewSchema("flow", group)
	leaf := make([][]int, len(cols))
	for i, c := range cols {
		if c.SQLType == schema.Flows.Columns[schema.Flows.ColumnIndex("http_headers")].SQLType {
			k, _ := sch.Lookup(c.Name, "key")
			v, _ := sch.Lookup(c.Name, "value")
			leaf[i] = []int{k.ColumnIndex, v.ColumnIndex}
			continue
		}
		l, ok := sch.Lookup(c.Name)
		if !ok {
			b.Fatalf("no leaf %s", c.Name)
		}
		leaf[i] = []int{l.ColumnIndex}
	}
	cw := &countingWriter{w: w}
	pw := pq.NewWriter(cw, sch, pq.Compression(&pq.Zstd), pq.MaxRowsPerRowGroup(int64(defaults.RowGroupRows)))
	enc := schema.Flows.NewEncoder(nil)
	defer enc.Release()
	flush := func() {
		rec := enc.NewRecord()
		defer rec.Release()
		rows := arrowToRows(rec, leaf, len(sch.Columns()))
		if _, err := pw.WriteRows(rows); err != nil {
			b.Fatal(err)
		}
	}
	for _, f := range flows {
		if err := enc.Append(f); err != nil {
			b.Fatal(err)
		}
		if enc.Len() == defaults.RowGroupRows {
			flush()
		}
	}
	flush()
	if err := pw.Close(); err != nil {
		b.Fatal(err)
	}
	return cw.n
}

type countingWriter struct {
	w io.Writer
	n int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += n
	return n, err
}

// pqNode is the parquet-go node of a column, with the encodings pqarrow
// uses (parquet-go writes PLAIN unless told otherwise).
func pqNode(sqlType string) pq.Node {
	dict := func(n pq.Node) pq.Node { return pq.Encoded(n, &pq.RLEDictionary) }
	switch sqlType {
	case "VARCHAR":
		return pq.Optional(dict(pq.String()))
	case "BLOB":
		return pq.Optional(pq.Leaf(pq.ByteArrayType))
	case "BOOLEAN":
		return pq.Optional(pq.Leaf(pq.BooleanType))
	case "INTEGER":
		return pq.Optional(dict(pq.Int(32)))
	case "UINTEGER":
		return pq.Optional(dict(pq.Uint(32)))
	case "UBIGINT":
		return pq.Optional(dict(pq.Uint(64)))
	case "TIMESTAMP_NS":
		return pq.Optional(pq.Encoded(pq.Timestamp(pq.Nanosecond), &pq.DeltaBinaryPacked))
	case "UUID":
		return pq.Optional(pq.UUID())
	case "VARCHAR[]":
		return pq.Repeated(dict(pq.String()))
	default: // list of {key, value}
		return pq.Repeated(pq.Group{"key": dict(pq.String()), "value": dict(pq.String())})
	}
}

func arrowToRows(rec arrow.RecordBatch, leaf [][]int, nleaves int) []pq.Row {
	rows := make([]pq.Row, rec.NumRows())
	perLeaf := make([][]pq.Value, nleaves)
	for i := range rows {
		for l := range perLeaf {
			perLeaf[l] = perLeaf[l][:0]
		}
		for j, a := range rec.Columns() {
			idx := leaf[j][0]
			if a.IsNull(i) {
				for _, li := range leaf[j] {
					perLeaf[li] = append(perLeaf[li], pq.Value{}.Level(0, 0, li))
				}
				continue
			}
			switch x := a.(type) {
			case *array.String:
				perLeaf[idx] = append(perLeaf[idx], pq.ByteArrayValue([]byte(x.Value(i))).Level(0, 1, idx))
			case *array.Binary:
				perLeaf[idx] = append(perLeaf[idx], pq.ByteArrayValue(x.Value(i)).Level(0, 1, idx))
			case *array.Boolean:
				perLeaf[idx] = append(perLeaf[idx], pq.BooleanValue(x.Value(i)).Level(0, 1, idx))
			case *array.Int32:
				perLeaf[idx] = append(perLeaf[idx], pq.Int32Value(x.Value(i)).Level(0, 1, idx))
			case *array.Uint32:
				perLeaf[idx] = append(perLeaf[idx], pq.Int32Value(int32(x.Value(i))).Level(0, 1, idx))
			case *array.Uint64:
				perLeaf[idx] = append(perLeaf[idx], pq.Int64Value(int64(x.Value(i))).Level(0, 1, idx))
			case *extensions.UUIDArray:
				u := x.Value(i)
				perLeaf[idx] = append(perLeaf[idx], pq.FixedLenByteArrayValue(u[:]).Level(0, 1, idx))
			case *array.Timestamp:
				perLeaf[idx] = append(perLeaf[idx], pq.Int64Value(int64(x.Value(i))).Level(0, 1, idx))
			case *array.List:
				start, end := x.ValueOffsets(i)
				if start == end {
					for _, li := range leaf[j] {
						perLeaf[li] = append(perLeaf[li], pq.Value{}.Level(0, 0, li))
					}
					continue
				}
				for k := start; k < end; k++ {
					rep := 1
					if k == start {
						rep = 0
					}
					switch v := x.ListValues().(type) {
					case *array.String:
						perLeaf[idx] = append(perLeaf[idx], pq.ByteArrayValue([]byte(v.Value(int(k)))).Level(rep, 1, idx))
					case *array.Struct:
						for f, li := range leaf[j] {
							s := v.Field(f).(*array.String).Value(int(k))
							perLeaf[li] = append(perLeaf[li], pq.ByteArrayValue([]byte(s)).Level(rep, 1, li))
						}
					}
				}
			default:
				panic(fmt.Sprintf("unhandled arrow type %T", a))
			}
		}
		var row pq.Row
		for _, vs := range perLeaf {
			row = append(row, vs...)
		}
		rows[i] = row
	}
	return rows
}

// BenchmarkSinkLive is what a recorder's store costs per flow, with the
// pieces that make a live recording readable at each flush (see live.go)
// and the derived tables (derived.go), and without each, in one run: flows
// at 2,000 per flush, as a busy node gives them at the default flush
// interval.
func BenchmarkSinkLive(b *testing.B) {
	flows := benchFlows()
	for _, c := range []struct {
		name               string
		notLive, noDerived bool
	}{{"live", false, false}, {"live-no-derived", false, true}, {"not-live", true, false}} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				dir := b.TempDir()
				d, err := tape.OpenDir(dir)
				if err != nil {
					b.Fatal(err)
				}
				s, err := tape.NewSink(tape.SinkOptions{Dir: dir, RecordingID: "0123abcd", NotLive: c.notLive, NoDerived: c.noDerived})
				if err != nil {
					b.Fatal(err)
				}
				for j, f := range flows {
					if err := s.WriteFlow(f); err != nil {
						b.Fatal(err)
					}
					if j%2000 == 1999 {
						if err := s.Sync(); err != nil {
							b.Fatal(err)
						}
					}
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				d.Close()
			}
			reportFlows(b, len(flows), 0)
		})
	}
}
