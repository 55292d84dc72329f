package schema

// ColumnDoc documents one column of a row type.
type ColumnDoc struct {
	Table   string // flows, events, or a derived table
	Name    string
	Type    string // as DuckDB shows it
	Derived bool   // a convenience copy, not part of the lossless encoding
	// Computed: not in the files; the engines' views compute it from
	// stored columns (ViewColumns).
	Computed bool
	Doc      string
}

// ViewColumns are flow columns that the files do not store and the engines'
// flows views compute from stored columns, as schema/derive.go does when it
// derives the tables.
//
// http_request_id was stored from schema 1.1 to 1.3: a copy of the
// X-Request-Id header's value, which http_headers holds too. A request ID
// is random (a UUID, as Envoy makes it), so the copy cost about 6 of the 47
// bytes a flow took in a compressed recording of the benchmark's mesh; the
// views find it in http_headers instead, and the derived requests table,
// which the analyses read, keeps its own request_id.
var ViewColumns = []ColumnDoc{
	{Table: KindFlows, Name: "http_request_id", Type: "VARCHAR", Derived: true, Computed: true,
		Doc: "X-Request-Id header of an HTTP flow (Envoy's request ID): pairs a request with its response and the client proxy's view with the server proxy's. Computed from http_headers by the views (stored in files of schema 1.1 to 1.3)."},
}

// RequestIDStoredUntil is the last minor version whose flow files store
// http_request_id.
const RequestIDStoredUntil = 3

// Reference lists every column of the row types and the derived tables, in
// file order. The docs and `flowtape schema` are generated from it.
func Reference() []ColumnDoc {
	var out []ColumnDoc
	for _, c := range Flows.Columns {
		out = append(out, ColumnDoc{Table: Flows.Kind, Name: c.Name, Type: c.SQLType, Derived: c.Derived, Doc: c.Doc})
	}
	out = append(out, ViewColumns...)
	for _, c := range Events.Columns {
		out = append(out, ColumnDoc{Table: Events.Kind, Name: c.Name, Type: c.SQLType, Derived: c.Derived, Doc: c.Doc})
	}
	out = append(out, rowDocs(Requests)...)
	out = append(out, rowDocs(Connections)...)
	out = append(out, rowDocs(Traffic)...)
	out = append(out, rowDocs(Pods)...)
	return append(out, rowDocs(SummaryTable)...)
}

// DerivedDoc describes a derived table.
func DerivedDoc(kind string) string {
	return map[string]string{Requests.Kind: Requests.Doc, Connections.Kind: Connections.Doc,
		Traffic.Kind: Traffic.Doc, Pods.Kind: Pods.Doc, SummaryTable.Kind: SummaryTable.Doc}[kind]
}

func rowDocs[R any](t *RowTable[R]) []ColumnDoc {
	out := make([]ColumnDoc, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = ColumnDoc{Table: t.Kind, Name: c.Name, Type: c.SQLType, Derived: true, Doc: c.Doc}
	}
	return out
}
