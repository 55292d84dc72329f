package analyze

import (
	"context"
	"fmt"
)

// shared are the views several analyses read, in the order they can be
// computed: the costly pairing of requests with responses, and TCP
// connections.
var shared = []string{"requests_counted", "connections"}

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
		// A temporary table is found before the view of the same name.
		if _, err := e.db.ExecContext(ctx, fmt.Sprintf("SET VARIABLE reporter = NULL; CREATE OR REPLACE TEMP TABLE %s AS FROM main.%s", v, v)); err != nil {
			return fmt.Errorf("materialize %s: %w", v, firstLine(err))
		}
	}
	e.materialized = true
	return nil
}
