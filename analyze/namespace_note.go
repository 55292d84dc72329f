package analyze

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/flowtape/flowtape/printer"
)

// A -n/--namespace that no flow of the recording has (a typo: "defualt")
// gives empty tables, which read as "no errors". NamespaceNote says so,
// and lists the namespaces the recording has.

// namespacesSQL lists the namespaces of the flows' endpoints, sorted.
const namespacesSQL = `SELECT coalesce(string_agg(ns, ',' ORDER BY ns), '') FROM (
    SELECT DISTINCT source_namespace AS ns FROM derived_traffic_all WHERE source_namespace <> ''
    UNION SELECT DISTINCT destination_namespace FROM derived_traffic_all WHERE destination_namespace <> '')`

// chNamespacesSQL is namespacesSQL in ClickHouse's dialect.
const chNamespacesSQL = `SELECT arrayStringConcat(arraySort(groupUniqArray(ns)), ',') FROM (
    SELECT source_namespace AS ns FROM derived_traffic WHERE source_namespace <> ''
    UNION ALL SELECT destination_namespace FROM derived_traffic WHERE destination_namespace <> '')`

// NamespaceNote is a note for a result t that is empty or counts no flow,
// of an analysis of namespace p.Namespace: the namespaces the recording
// has, when p.Namespace is none of them; "" otherwise.
func (e *Engine) NamespaceNote(ctx context.Context, t printer.Table, p Params) (string, error) {
	if p.Namespace == "" || !countsNoFlow(t) {
		return "", nil
	}
	var list string
	if err := e.db.QueryRowContext(ctx, namespacesSQL).Scan(&list); err != nil {
		return "", fmt.Errorf("the recording's namespaces: %w", firstLine(err))
	}
	return namespaceNote(p.Namespace, list), nil
}

// NamespaceNote is Engine.NamespaceNote on ClickHouse.
func (e *ClickHouse) NamespaceNote(ctx context.Context, t printer.Table, p Params) (string, error) {
	if p.Namespace == "" || !countsNoFlow(t) {
		return "", nil
	}
	r, err := e.Query(ctx, chNamespacesSQL)
	if err != nil {
		return "", fmt.Errorf("the recording's namespaces: %w", err)
	}
	if len(r.Rows) != 1 || len(r.Rows[0]) != 1 {
		return "", fmt.Errorf("the recording's namespaces: ClickHouse gave %d rows", len(r.Rows))
	}
	return namespaceNote(p.Namespace, printer.Cell(r.Rows[0][0])), nil
}

func namespaceNote(ns, list string) string {
	have := strings.Split(list, ",")
	if list == "" || slices.Contains(have, ns) {
		return ""
	}
	return fmt.Sprintf("no flow of the recording is of namespace %q (-n): its namespaces are %s", ns, strings.Join(have, ", "))
}
