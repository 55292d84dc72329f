package schema

import (
	"hash/fnv"
	"strings"
	"testing"
	"time"
)

// A connection forgotten by a session's state (idle, or past the bound)
// is of an unknown attempt when it comes back, unless a SYN comes after a
// row that did not end with one: then it opens one, as the views would
// say. A forgotten attempt that ended with a SYN is never taken for new.
func TestConnStateForgetsWithoutChangingAttempts(t *testing.T) {
	at := func(d time.Duration) int64 { return time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC).Add(d).UnixNano() }
	row := func(ip string, first, last time.Duration, synFirst, synLast bool) *Connection {
		return &Connection{SourceIP: ip, DestinationIP: "10.0.0.9", SourcePort: 40000, DestinationPort: 80,
			HasSourcePort: true, HasDestinationPort: true, FirstTime: at(first), LastTime: at(last),
			FirstSynOnly: synFirst, LastSynOnly: synLast}
	}
	idle := time.Duration(ConnIdle) + time.Minute
	for _, c := range []struct {
		name      string
		rows      []*Connection
		sameAsOld bool // the last row is of the first row's attempt
		known     bool // the last row's attempt is known
	}{
		{"answered, then a SYN again", []*Connection{row("10.0.0.1", 0, time.Second, true, false), row("10.0.0.1", idle, idle, true, true)}, false, true},
		{"never answered, then a SYN again", []*Connection{row("10.0.0.2", 0, time.Second, true, true), row("10.0.0.2", idle, idle, true, true)}, false, false},
		{"answered, then a late ACK", []*Connection{row("10.0.0.3", 0, time.Second, true, false), row("10.0.0.3", idle, idle, false, false)}, false, false},
		{"a SYN again, not forgotten", []*Connection{row("10.0.0.4", 0, time.Second, true, true), row("10.0.0.4", 2*time.Second, 3*time.Second, true, true)}, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := NewConnState()
			var files []*Deriver
			for _, r := range c.rows {
				// Each row in a file of its own; another connection keeps
				// the state's clock going.
				d := &Deriver{Conns: s, conns: map[tuple]int{}}
				d.addConnection(row("10.9.9.9", time.Duration(r.FirstTime-at(0)), time.Duration(r.FirstTime-at(0)), false, false))
				d.addConnection(r)
				files = append(files, d)
			}
			first, last := files[0].connRows[1], files[len(files)-1].connRows[1]
			if !first.HasAttempt {
				t.Fatal("the first row's attempt is unknown")
			}
			if last.HasAttempt != c.known {
				t.Fatalf("the last row's attempt known: %v, want %v", last.HasAttempt, c.known)
			}
			if same := last.HasAttempt && last.Attempt == first.Attempt; same != c.sameAsOld {
				t.Errorf("the last row of the first row's attempt: %v, want %v", same, c.sameAsOld)
			}
		})
	}
}

// A row that continues an attempt opened in an earlier file of the
// session is unchanged when it leaves what that file's summary counted as
// it was; the summary path then need not read the connection.
func TestUnchangedContinuations(t *testing.T) {
	at := func(d time.Duration) int64 { return time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC).Add(d).UnixNano() }
	// the opening row: a SYN dropped, on node-a, of pods a and b
	open := func() *Connection {
		return &Connection{SourceIP: "10.0.0.1", DestinationIP: "10.0.0.9", SourcePort: 40000, DestinationPort: 80,
			HasSourcePort: true, HasDestinationPort: true, FirstTime: at(0), LastTime: at(time.Second), SynTime: at(0), HasSyn: true,
			FirstSynOnly: true, LastSynOnly: true, NodeName: "node-a", SourcePod: "a", DestinationPod: "b",
			Answered: False, Dropped: True, DropReasons: []string{"POLICY_DENIED"}}
	}
	// what continues it in the next file: a SYN retried, dropped again
	retry := func(edit func(*Connection)) *Connection {
		c := open()
		c.FirstTime, c.LastTime, c.SynTime = at(3*time.Second), at(3*time.Second), at(3*time.Second)
		if edit != nil {
			edit(c)
		}
		return c
	}
	later := func(d time.Duration, edit func(*Connection)) *Connection {
		return retry(func(c *Connection) {
			c.FirstTime, c.LastTime, c.SynTime = at(d), at(d), at(d)
			if edit != nil {
				edit(c)
			}
		})
	}
	withService := func(c *Connection) { c.DestinationService = "db" }
	for _, c := range []struct {
		name      string
		between   *Connection // a row of a file between the two
		next      *Connection
		state     bool // the files share the session's state
		unchanged bool
	}{
		{"a SYN retried and dropped again", nil, retry(nil), true, true},
		{"no drop, no names", nil, retry(func(c *Connection) {
			c.Dropped, c.DropReasons, c.NodeName, c.SourcePod, c.DestinationPod = Null, nil, "", "", ""
		}), true, true},
		{"answered now", nil, retry(func(c *Connection) { c.Answered, c.LastSynOnly = True, false }), true, false},
		{"reset now", nil, retry(func(c *Connection) { c.Reset = true }), true, false},
		{"a name the attempt lacked", nil, retry(withService), true, false},
		{"a flow before the opening SYN", nil, retry(func(c *Connection) { c.FirstTime = at(-time.Second) }), true, false},
		// the view may take either row's names
		{"a flow at the opening SYN's time", nil, retry(func(c *Connection) { c.FirstTime = at(0) }), true, false},
		{"each file derived on its own", nil, retry(nil), false, false},
		{"after an unchanged row", later(2*time.Second, nil), retry(nil), true, true},
		// the view takes any row's service
		{"the same service", nil, retry(withService), true, true},
		{"another service", nil, retry(func(c *Connection) { c.DestinationService = "cache" }), true, false},
		// a reader without the changing row's file joins the opening
		// row with this one alone
		{"after a row that answered", later(2*time.Second, func(c *Connection) { c.Answered, c.LastSynOnly = True, false }),
			retry(func(c *Connection) { // an ACK
				c.Answered, c.Dropped, c.DropReasons, c.FirstSynOnly, c.LastSynOnly, c.HasSyn = True, False, nil, false, false, false
			}), true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s *ConnState
			if c.state {
				s = NewConnState()
			}
			opening := open()
			if strings.HasSuffix(c.name, " service") {
				withService(opening)
			}
			first := &Deriver{Conns: s, conns: map[tuple]int{}}
			first.addConnection(opening)
			if got := first.connRows[0]; got.Unchanged() {
				t.Fatal("the opening row is unchanged")
			}
			if c.between != nil {
				between := &Deriver{Conns: s, conns: map[tuple]int{}}
				between.addConnection(c.between)
			}
			next := &Deriver{Conns: s, conns: map[tuple]int{}}
			next.addConnection(c.next)
			got := next.connRows[0]
			if got.Opens() {
				t.Fatal("the next file's row opens an attempt")
			}
			if got.Unchanged() != c.unchanged {
				t.Errorf("unchanged: %v, want %v", got.Unchanged(), c.unchanged)
			}
		})
	}
}

// TestRequestKeysAreFNV pins call_key and proxy_key to what docs/schema.md
// says they are, FNV-1a over the length-prefixed fields: files written by
// different flowtapes of one derived version pair by them.
func TestRequestKeysAreFNV(t *testing.T) {
	fnvOf := func(fields ...string) int64 {
		h := fnv.New64a()
		for _, f := range fields {
			n := len(f)
			for ; n >= 0x80; n >>= 7 {
				h.Write([]byte{byte(n) | 0x80})
			}
			h.Write([]byte{byte(n)})
			h.Write([]byte(f))
		}
		return int64(h.Sum64())
	}
	long := strings.Repeat("x", 300) // a length of two bytes
	for _, r := range []Request{
		{RequestID: "3f1c0a52-9b7e-4d6f-8a21-0c5e7d9b1f34", NodeName: "node-a", Reporter: "client"},
		{RequestID: long, NodeName: "", Reporter: "server"},
	} {
		r.keys(keyOf("ns", "pod", "a"), keyOf("", "", "b"))
		if want := fnvOf(r.RequestID); r.ProxyKey != want {
			t.Errorf("proxy_key of %.20q: %d, want %d", r.RequestID, r.ProxyKey, want)
		}
		if want := fnvOf(r.RequestID, r.NodeName, r.Reporter); r.CallKey != want {
			t.Errorf("call_key of %.20q: %d, want %d", r.RequestID, r.CallKey, want)
		}
	}
}
