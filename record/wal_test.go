package record_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/protobuf/proto"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/record"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

// The write-ahead log keeps the flows a recorder received as their bytes
// came (record/encoded.go), or encoded again where the recorder changed
// them: either way, what `flowtape recover` rebuilds from it is what the
// recorder writes. A copy of a live recording's directory, taken once the
// log holds every flow, is recovered like a killed recorder's and its
// flows compared, field by field, with those of the recording finished
// as usual; with redaction, the log must not hold the values removed.
func TestWALHoldsTheFlowsAsWritten(t *testing.T) {
	var sent []*flowpb.Flow
	for _, r := range testutil.SimResponses(sim.Scenarios["incident"], 7, 40, t0, t0.Add(30*time.Second)) {
		if f := r.GetFlow(); f != nil {
			sent = append(sent, f)
		}
	}
	for _, tc := range []struct {
		name   string
		redact record.Redaction
	}{
		{"as received", record.Redaction{}},
		{"redacted", record.Redaction{URLQuery: true, AllowHeaders: []string{"content-type"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &ringServer{}
			srv.set(sent, sent, false)
			addr := serveObserver(t, srv)
			dir, copied := t.TempDir(), t.TempDir()
			ctx, stop := context.WithCancel(context.Background())
			var runErr error
			finished := make(chan struct{})
			go func() {
				defer close(finished)
				_, runErr = record.Run(ctx, record.Options{Dialer: dialer(t, "--server", addr), Redact: tc.redact,
					FlushInterval: 50 * time.Millisecond, Sink: tape.SinkOptions{Dir: dir, Writer: "test"}})
			}()
			t.Cleanup(func() { stop(); <-finished }) // (before its directory goes)
			// The recorder waits for more: copy its files until the copy's
			// recovery holds every flow sent (the log is synced at each
			// flush).
			var recovered []*flowpb.Flow
			testutil.Eventually(t, 30*time.Second, "the log holds every flow", func() bool {
				os.RemoveAll(copied)
				if err := copyTree(dir, copied); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(filepath.Join(copied, "flows")); err != nil {
					return false // nothing written yet
				}
				if _, err := tape.Recover(copied, "test"); err != nil {
					t.Fatalf("recover the copy: %v", err)
				}
				recovered, _ = readRecording(t, copied)
				return len(recovered) == len(sent)
			})
			stop()
			<-finished
			if runErr != nil {
				t.Fatal(runErr)
			}
			// the codec that keeps the bytes leaves the wire as it was
			srv.mu.Lock()
			ct := srv.contentType
			srv.mu.Unlock()
			if !slices.Equal(ct, []string{"application/grpc"}) {
				t.Fatalf("the recorder asked for flows with content type %q, want application/grpc as gRPC's default codec", ct)
			}
			written, _ := readRecording(t, dir)
			if len(written) != len(sent) {
				t.Fatalf("the recording holds %d flows, %d were sent", len(written), len(sent))
			}
			byUUID := map[string]*flowpb.Flow{}
			for _, f := range written {
				byUUID[f.GetUuid()] = f
			}
			// each flow sent once in the log (not another flow's bytes)
			got := map[string]int{}
			for _, f := range recovered {
				got[f.GetUuid()]++
			}
			for _, f := range sent {
				if got[f.GetUuid()] != 1 {
					t.Fatalf("flow %s is %d times in the log, want once", f.GetUuid(), got[f.GetUuid()])
				}
			}
			redacted := 0
			for _, f := range recovered {
				w := byUUID[f.GetUuid()]
				if !proto.Equal(f, w) {
					t.Fatalf("flow %s recovered from the log:\n%v\nwritten:\n%v", f.GetUuid(), f, w)
				}
				for _, h := range f.GetL7().GetHttp().GetHeaders() {
					if h.GetValue() == record.Redacted {
						redacted++
					}
				}
			}
			if wantRedacted := len(tc.redact.AllowHeaders) > 0; (redacted > 0) != wantRedacted {
				t.Fatalf("%d redacted header values recovered from the log; redaction on: %v", redacted, wantRedacted)
			}
		})
	}
}

// copyTree copies the files under src (hidden ones too) to dst.
func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if os.IsNotExist(err) {
			return nil // published or removed meanwhile
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		in, err := os.Open(p)
		if os.IsNotExist(err) {
			return nil // published or removed meanwhile
		}
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(to)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
