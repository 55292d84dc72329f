package testutil

import (
	"testing"

	"google.golang.org/protobuf/proto"
)

// SameMessages fails t unless got and want hold equal protobuf messages in
// the same order: what a round trip, a replay or a stream must give back.
// what says which messages they are, in the failure.
func SameMessages[M proto.Message](t testing.TB, what string, got, want []M) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d messages, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("%s: message %d differs:\n got %v\nwant %v", what, i, got[i], want[i])
		}
	}
}
