package analyze

import (
	"context"
	"fmt"
)

// shared are the views several analyses read, in the order they can be
// computed: the costly pairing of requests with responses, and TCP
// connections; each with the columns the analyses do not read left out
// (writing the URLs and ids of millions of requests is a sixth of the
// cost). The test that runs every analysis both ways catches a column an
// analysis comes to need.
// A table macro that gives a view's rows to the analyses (macro, see
// requests_counted.sql) is replaced too, by one over the table.
var shared = []struct{ view, omit, macro string }{
	{"requests_counted", "EXCLUDE (url, uuid, request_id, client_ip, server_ip)", "ft_requests_counted"},
	{"connections", "", ""},
}

// Materialize computes the views that several analyses share once, into
// temporary tables the analyses then read instead of the views: for
// running many analyses over the same recording, as a report does. The
// tables hold the whole recording (analyses still take any window) and
// count requests by the default reporter rule (server), which Run then
// holds to.
func (e *Engine) Materialize(ctx context.Context) error {
	if e.materialized {
		return nil
	}
	for _, v := range shared {
		if err := e.ensure(ctx, v.view); err != nil {
			return err
		}
		// A temporary table is found before the view of the same name.
		q := fmt.Sprintf("SET VARIABLE reporter = NULL; CREATE OR REPLACE TEMP TABLE %s AS SELECT * %s FROM main.%s", v.view, v.omit, v.view)
		if v.macro != "" {
			// A temporary macro is found before the one of the same name.
			q += fmt.Sprintf("; CREATE OR REPLACE TEMP MACRO %s(cols) AS TABLE SELECT COLUMNS(c -> cols IS NULL OR list_contains(cols, c)) FROM temp.%s",
				v.macro, v.view)
		}
		if _, err := e.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("materialize %s: %w", v.view, firstLine(err))
		}
	}
	e.materialized = true
	return nil
}
