package schema

// ColumnDoc documents one column of a row type.
type ColumnDoc struct {
	Table   string // flows, events, or a derived table
	Name    string
	Type    string // as DuckDB shows it
	Derived bool   // a convenience copy, not part of the lossless encoding
	Doc     string
}

// Reference lists every column of the row types and the derived tables, in
// file order. The docs and `flowtape schema` are generated from it.
func Reference() []ColumnDoc {
	var out []ColumnDoc
	for _, c := range Flows.Columns {
		out = append(out, ColumnDoc{Table: Flows.Kind, Name: c.Name, Type: c.SQLType, Derived: c.Derived, Doc: c.Doc})
	}
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
