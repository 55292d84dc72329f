package testutil

import (
	"net"
	"os"
	"strconv"
	"testing"
	"time"
)

// Eventually calls cond until it reports true, and fails the test when it
// has not within timeout: a wait for something a real server or process
// does, which takes as long as it takes, instead of a fixed sleep. cond runs
// at once, then at growing intervals (10ms up to a quarter second).
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for wait := 10 * time.Millisecond; !cond(); wait = min(2*wait, 250*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(wait)
	}
}

// Listen listens on addr, waiting for a server stopped a moment ago to
// let go of it.
func Listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	var lis net.Listener
	Eventually(t, 10*time.Second, "listen on "+addr, func() bool {
		var err error
		lis, err = net.Listen("tcp", addr)
		return err == nil
	})
	return lis
}

// KillIterations is how many times a fault test kills a process: def, or
// FLOWTAPE_KILL_ITERATIONS (make soak runs many).
func KillIterations(t testing.TB, def int) int {
	t.Helper()
	s := os.Getenv("FLOWTAPE_KILL_ITERATIONS")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("FLOWTAPE_KILL_ITERATIONS=%q: want a positive number", s)
	}
	return n
}
