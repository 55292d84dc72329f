package tape_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/tape"
)

func walsOf(t *testing.T, dir, id string) []string {
	t.Helper()
	wals, err := filepath.Glob(filepath.Join(dir, "flows", "*", "*", ".*"+id+"*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	return wals
}

// Several writers share a directory, each as a session of its own: a
// writer that starts recovers what a killed session left, and leaves the
// files of a live one alone; the recording then holds every flow of both
// once. Recover, which needs the directory to itself, is refused meanwhile.
func TestSessionsShareADirectory(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	open := func(id string) (*tape.Dir, *tape.Sink) {
		d, err := tape.OpenSession(dir, id)
		if err != nil {
			t.Fatal(err)
		}
		s, err := tape.NewSink(tape.SinkOptions{Dir: dir, RecordingID: id, Writer: "test", RowGroupRows: 64})
		if err != nil {
			t.Fatal(err)
		}
		return d, s
	}
	write := func(s *tape.Sink, flows int, prefix string) {
		for _, f := range flowsOver(start, 1, flows, prefix) {
			if err := s.WriteFlow(f); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	liveDir, live := open("aaaa0001")
	write(live, 500, "live-")
	// Rows written since its last flush: its pieces being written (the
	// flows' and the derived tables') are hidden files of its own.
	for _, f := range flowsOver(start.Add(10*time.Minute), 1, 200, "more-") {
		if err := live.WriteFlow(f); err != nil {
			t.Fatal(err)
		}
	}
	deadDir, dead := open("bbbb0002")
	write(dead, 300, "dead-")
	_ = dead        // killed: its files are left as they are
	deadDir.Close() // the process is gone, and its locks with it

	// Every hidden file but the killed session's is the live one's.
	var liveHidden []string
	all, _ := filepath.Glob(filepath.Join(dir, "*", "*", "*", ".*"))
	for _, p := range all {
		if !strings.Contains(filepath.Base(p), "bbbb0002") {
			liveHidden = append(liveHidden, p)
		}
	}
	if _, err := tape.Recover(dir, "test"); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("recover while a session writes: %v, want a refusal", err)
	}
	if _, err := tape.OpenSession(dir, "aaaa0001"); err == nil {
		t.Error("a second writer of a live session was let in")
	}
	third, err := tape.OpenSession(dir, "cccc0003")
	if err != nil {
		t.Fatal(err)
	}
	st, err := third.Recover("test")
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != 300 || len(walsOf(t, dir, "bbbb0002")) != 0 {
		t.Errorf("recovered %d rows, WALs of the killed session left: %v; want its 300", st.Rows, walsOf(t, dir, "bbbb0002"))
	}
	if len(walsOf(t, dir, "aaaa0001")) == 0 {
		t.Fatal("the live session's WAL was recovered from under it")
	}
	for _, p := range liveHidden {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("the live session's %s was removed by another's recovery", p)
		}
	}
	if len(liveHidden) < 8 {
		t.Errorf("the live session had %d hidden files: the test checks less than it should", len(liveHidden))
	}
	third.Close()
	// The live session goes on as if nothing happened.
	if err := live.Sync(); err != nil {
		t.Fatalf("the live session after another's recovery: %v", err)
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	liveDir.Close()
	seen := uuidsIn(t, dir)
	if len(seen) != 1000 {
		t.Errorf("%d flows in the recording, want 1000", len(seen))
	}
	for u, n := range seen {
		if n != 1 {
			t.Errorf("flow %s read %d times", u, n)
		}
	}
	if locks, _ := filepath.Glob(filepath.Join(dir, ".session-*")); len(locks) != 0 {
		t.Errorf("session locks left behind: %v", locks)
	}
	if _, err := os.Stat(filepath.Join(dir, ".lock")); err != nil {
		t.Error(err)
	}
}

// Where a session stopped names every node's newest flow, those of nodes
// quiet in the last seconds too (from the derived traffic files).
func TestLastSessionKnowsQuietNodes(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	flows := flowsOver(start, 1, 600, "busy-")
	quiet := flowsOver(start, 1, 5, "quiet-")[:2] // at 13:00 and 13:12, long before the end
	for _, f := range quiet {
		f.NodeName = "n2"
	}
	writeSession(t, dir, "dddd0001", append(quiet, flows...), 1000)
	tape.PutSessionForTest(t, dir, tape.Session{RecordingID: "dddd0001", Status: "complete", Server: tape.ServerInfo{Address: "relay:80"}})
	rp, ok, err := tape.LastSession(context.Background(), dir, "relay:80", "", 10*time.Second, func(f *flowpb.Flow) string { return f.GetUuid() })
	if err != nil || !ok {
		t.Fatalf("LastSession: %v, %v", ok, err)
	}
	if want := quiet[1].GetTime().AsTime(); !rp.Nodes["n2"].Equal(want) {
		t.Errorf("the quiet node's newest flow: %v, want %v", rp.Nodes["n2"], want)
	}
	if want := flows[len(flows)-1].GetTime().AsTime(); !rp.Last.Equal(want) || !rp.Nodes["n1"].Equal(want) {
		t.Errorf("last %v, n1 %v; want %v", rp.Last, rp.Nodes["n1"], want)
	}
	if len(rp.Flows) == 0 || len(rp.Flows) > 10 {
		t.Errorf("%d flows in the 10 s overlap, want the few of the last seconds", len(rp.Flows))
	}
}

// Where a session stopped says where each node's last gap recorded
// without a flow after it ended (its manifest entry's ring_gaps_end; the
// latest of the stopped sessions of the same stream), so that the next
// session does not count the span again. Not the lost events in its
// files: Hubble's own carry the wall-clock time of its counter.
func TestLastSessionKnowsWhereGapsEnded(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	flows := flowsOver(start, 1, 600, "f-") // n1, every 6 s up to 13:59:54
	last := flows[len(flows)-1].GetTime().AsTime()
	d, err := tape.OpenSession(dir, "eeee0001")
	if err != nil {
		t.Fatal(err)
	}
	s, err := tape.NewSink(tape.SinkOptions{Dir: dir, RecordingID: "eeee0001", Writer: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range flows {
		if err := s.WriteFlow(f); err != nil {
			t.Fatal(err)
		}
	}
	// Hubble's own lost event, stamped with its wall clock past the last flow
	wall := timestamppb.New(last.Add(time.Minute))
	if err := s.WriteEvent(&observerpb.GetFlowsResponse{NodeName: "n3", Time: wall, ResponseTypes: &observerpb.GetFlowsResponse_LostEvents{
		LostEvents: &flowpb.LostEvent{Source: flowpb.LostEventSource_HUBBLE_RING_BUFFER, NumEventsLost: 10, First: wall, Last: wall}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	d.Close()
	relay := tape.ServerInfo{Address: "relay:80"}
	tape.PutSessionForTest(t, dir, tape.Session{RecordingID: "eeee0001", Status: "complete", Server: relay,
		RingGapsEnd: map[string]time.Time{"n1": last.Add(36 * time.Second), "n2": last.Add(-time.Hour)}})
	tape.PutSessionForTest(t, dir, tape.Session{RecordingID: "eeee0002", Status: "complete", Server: relay,
		RingGapsEnd: map[string]time.Time{"n2": last.Add(5 * time.Second)}})
	// other streams': another server's, other filters'
	tape.PutSessionForTest(t, dir, tape.Session{RecordingID: "eeee0003", Status: "complete", Server: tape.ServerInfo{Address: "relay:81"},
		RingGapsEnd: map[string]time.Time{"n1": last.Add(time.Hour)}})
	tape.PutSessionForTest(t, dir, tape.Session{RecordingID: "eeee0004", Status: "complete", Server: relay,
		Filters: tape.Filters{Raw: "--verdict DROPPED"}, RingGapsEnd: map[string]time.Time{"n1": last.Add(time.Hour)}})
	rp, ok, err := tape.LastSession(context.Background(), dir, "relay:80", "", 10*time.Second, func(f *flowpb.Flow) string { return f.GetUuid() })
	if err != nil || !ok {
		t.Fatalf("LastSession: %v, %v", ok, err)
	}
	want := map[string]time.Time{"n1": last.Add(36 * time.Second), "n2": last.Add(5 * time.Second)}
	if len(rp.Counted) != len(want) || !rp.Counted["n1"].Equal(want["n1"]) || !rp.Counted["n2"].Equal(want["n2"]) {
		t.Errorf("the gaps end at %v, want %v", rp.Counted, want)
	}
	if !rp.Last.Equal(last) {
		t.Errorf("the last flow %v, want %v: lost events are no flows", rp.Last, last)
	}
}
