package analyze

import (
	"context"

	"github.com/flowtape/flowtape/printer"
)

// Runner runs the built-in analyses over recordings it has open: DuckDB
// (Engine) or ClickHouse. The report builds on it, whichever engine runs.
type Runner interface {
	Run(ctx context.Context, name string, p Params) (printer.Table, error)
	// Materialize computes what several analyses share once (a report
	// runs a dozen).
	Materialize(ctx context.Context) error
	// SQLOf is the SQL file of an analysis, as this engine runs it.
	SQLOf(name string) (string, error)
	// Flags are the flags of flowtape analyze that choose this engine
	// ("" for the default).
	Flags() string
}

var (
	_ Runner = (*Engine)(nil)
	_ Runner = (*ClickHouse)(nil)
)

// SQLOf is the DuckDB SQL of an analysis.
func (e *Engine) SQLOf(name string) (string, error) { return AnalysisSQL(name) }

// Flags: DuckDB is the default engine.
func (e *Engine) Flags() string { return "" }

// SQLOf is the ClickHouse SQL of an analysis.
func (e *ClickHouse) SQLOf(name string) (string, error) { return ClickHouseAnalysisSQL(name) }

// Materialize does nothing on ClickHouse: each analysis is one query.
func (e *ClickHouse) Materialize(context.Context) error { return nil }

// Flags are --engine chdb, or --engine clickhouse with the server (its
// password hidden) and cluster.
func (e *ClickHouse) Flags() string {
	if e.server == "" {
		return "--engine chdb"
	}
	f := "--engine clickhouse --clickhouse " + redactDSN(e.server)
	if e.cluster != "" {
		f += " --clickhouse-cluster " + e.cluster
	}
	return f
}
