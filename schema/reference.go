package schema

// ColumnDoc documents one column of a row type.
type ColumnDoc struct {
	Table   string // flows or events
	Name    string
	Type    string // as DuckDB shows it
	Derived bool   // a convenience copy, not part of the lossless encoding
	Doc     string
}

// Reference lists every column of both row types, in file order. The docs
// and `flowtape schema` are generated from it.
func Reference() []ColumnDoc {
	var out []ColumnDoc
	for _, c := range Flows.Columns {
		out = append(out, ColumnDoc{Table: Flows.Kind, Name: c.Name, Type: c.SQLType, Derived: c.Derived, Doc: c.Doc})
	}
	for _, c := range Events.Columns {
		out = append(out, ColumnDoc{Table: Events.Kind, Name: c.Name, Type: c.SQLType, Derived: c.Derived, Doc: c.Doc})
	}
	return out
}
