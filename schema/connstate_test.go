package schema

import "testing"

// A connection's state carries what a summary counted of an attempt only
// to a row of that same attempt: a later attempt of the same tuple (a port
// reused, a SYN retried past its attempt) must not be taken as unchanged
// by what an earlier one was. The recorder numbers a file's first row of a
// connection from this state (attemptOf), so the attempts agree whenever
// it runs; this holds the check itself, which nothing else exercises.
func TestConnStateCarriesOnlyItsOwnAttempt(t *testing.T) {
	opened := connSoFar{counted: true, firstTime: 10}
	state := connState{attempt: 3, known: true, soFar: opened}
	for _, tc := range []struct {
		name  string
		state connState
		row   Connection
		want  connSoFar
	}{
		{"the same attempt", state, Connection{HasAttempt: true, Attempt: 3}, opened},
		{"a later attempt", state, Connection{HasAttempt: true, Attempt: 4}, connSoFar{}},
		{"an earlier attempt", state, Connection{HasAttempt: true, Attempt: 2}, connSoFar{}},
		{"a row without an attempt", state, Connection{Attempt: 3}, connSoFar{}},
		{"a state of no known attempt", connState{attempt: 3, soFar: opened}, Connection{HasAttempt: true, Attempt: 3}, connSoFar{}},
		{"an attempt no summary counted", connState{attempt: 3, known: true, soFar: connSoFar{firstTime: 10}}, Connection{HasAttempt: true, Attempt: 3}, connSoFar{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.state.carried(&tc.row); got != tc.want {
				t.Errorf("carried = %+v, want %+v", got, tc.want)
			}
		})
	}
}
