package record

import (
	"time"

	"github.com/flowtape/flowtape/tape"
)

// retentionRun runs a directory's retention (tape.Dir.Expire) for a
// recorder, or for the nodes of a per-node capture, sets the metrics of the
// directory's size, and logs what changed: each removal, and an error once
// (not at every flush) until retention works again.
type retentionRun struct {
	lastErr string
}

func (x *retentionRun) run(dir *tape.Dir, o Options, reserve int64) {
	got, usage, err := dir.Expire(o.Retention, time.Now(), reserve)
	o.Metrics.disk(usage, got, o.Retention.Spool)
	switch {
	case err != nil && err.Error() != x.lastErr:
		// Retention failing does not stop the recording; the disk filling
		// up would, and says so.
		x.lastErr = err.Error()
		o.Log.Error("retention could not remove every file due", "dir", o.Sink.Dir, "error", err)
	case err == nil && x.lastErr != "":
		x.lastErr = ""
		o.Log.Info("retention removes files again", "dir", o.Sink.Dir)
	}
	if got.Files > 0 {
		attrs := []any{"files", got.Files, "bytes", got.Bytes, "flows", got.Flows, "on_disk_bytes", usage.Bytes}
		if got.LastFlow != nil {
			attrs = append(attrs, "flows_from", got.FirstFlow.Format(time.RFC3339), "flows_to", got.LastFlow.Format(time.RFC3339))
		}
		if o.Retention.Spool {
			// The store has been down long enough to fill the spool.
			o.Log.Error("the spool is full: dropped the oldest files waiting for the bucket; their flows are lost (counted in the manifest and analyze coverage)", attrs...)
			return
		}
		o.Log.Info("retention removed the oldest files", attrs...)
	}
}
