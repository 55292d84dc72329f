package analyze

// VariablesSQL sets the variables the macros read, for tests that set up
// DuckDB without an engine.
func VariablesSQL() string { return variablesSQL() }
