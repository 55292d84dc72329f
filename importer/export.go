package importer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/flowtape/flowtape/internal/observer"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// ExportOptions select what Export writes.
type ExportOptions struct {
	// Paths are recording directories, globs or Parquet files.
	Paths []string
	// Allow and Deny are GetFlows filters, applied to flows with Cilium's
	// own filter implementation. Lost events and node status changes are
	// not flows and pass, as a Hubble server sends them whatever the
	// filters.
	Allow, Deny []*flowpb.FlowFilter
	Window      tape.Window
	// Progress, when set, is called every 64k lines.
	Progress func(ExportStats)
}

// ExportStats count what Export wrote, and what it could not.
type ExportStats struct {
	Flows  uint64 `json:"flows"`
	Events uint64 `json:"events"`
	// Skipped are agent and debug events (from exporter files), which
	// Hubble's GetFlowsResponse JSON cannot hold.
	Skipped uint64 `json:"skipped"`
}

// jsonpb is how `hubble observe -o jsonpb` prints a response.
var jsonpb = protojson.MarshalOptions{UseProtoNames: true}

// Export writes the recordings' flows and events as Hubble jsonpb, one
// GetFlowsResponse per line in time order, as `hubble observe -o jsonpb`
// prints them; `hubble observe --input-file` reads the result.
func Export(ctx context.Context, o ExportOptions, w io.Writer) (ExportStats, error) {
	var st ExportStats
	files, err := tape.FindFiles(o.Paths...)
	if err != nil {
		return st, err
	}
	match, err := observer.NewFilters(ctx, o.Allow, o.Deny)
	if err != nil {
		return st, err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var buf bytes.Buffer
	err = tape.Scan(ctx, files, o.Window, func(r *observerpb.GetFlowsResponse) error {
		if f := r.GetFlow(); f != nil {
			if !match.Match(f) {
				return nil
			}
			st.Flows++
		} else if kind := schema.EventKind(r); kind == "lost_events" || kind == "node_status" {
			st.Events++
		} else {
			st.Skipped++
			return nil
		}
		line, err := MarshalLine(r, &buf)
		if err != nil {
			return err
		}
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if o.Progress != nil && (st.Flows+st.Events)%(64<<10) == 0 {
			o.Progress(st)
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("write: %w", err)
	}
	return st, nil
}

// MarshalLine renders a response as one line of Hubble jsonpb (compact,
// newline-terminated), with the JSON members an import kept because this
// build did not know them back in place. buf is scratch space.
func MarshalLine(r *observerpb.GetFlowsResponse, buf *bytes.Buffer) ([]byte, error) {
	b, err := jsonpb.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode response: %w", err)
	}
	kept := keptMembers(r)
	if f := r.GetFlow(); f != nil {
		kept = append(kept, keptMembers(f)...)
	}
	if len(kept) > 0 {
		if b, err = injectMembers(b, kept); err != nil {
			return nil, err
		}
	}
	buf.Reset()
	if err := json.Compact(buf, b); err != nil {
		return nil, fmt.Errorf("encode response: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}
