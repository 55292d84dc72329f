package tape

import (
	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
)

// Writer is what a source of flows (record, import) writes a recording
// through: a live session's Sink, or a staged session. Rows may come in any
// order; a file holds the rows of one hour of their time.
type Writer interface {
	// WriteFlow adds a flow.
	WriteFlow(*flowpb.Flow) error
	// WriteFlowEncoded adds a flow with its protobuf encoding (as it was
	// received), which a write-ahead log keeps rather than encoding the
	// flow again. The bytes must encode the flow as it is written.
	WriteFlowEncoded(f *flowpb.Flow, encoded []byte) error
	// WriteEvent adds a GetFlows response that is not a flow (lost events,
	// node status changes).
	WriteEvent(*observerpb.GetFlowsResponse) error
	// Sync ends the files that are due (old, large, or of an hour that is
	// over) and, for a live session, makes what was written survive a crash.
	Sync() error
	// Stats are the files and bytes published so far; OnDisk is what the
	// session takes on disk now, files being written included.
	Stats() Stats
	OnDisk() int64
}
