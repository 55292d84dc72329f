package observer

import (
	"context"
	"fmt"
	"log/slog"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	v1 "github.com/cilium/cilium/pkg/hubble/api/v1"
	"github.com/cilium/cilium/pkg/hubble/filters"
)

// Filters are a GetFlows allowlist and denylist, compiled with Cilium's
// own filter implementation, so that a flow matches here exactly when it
// matches in Hubble.
type Filters struct {
	allow, deny filters.FilterFuncs
}

// NewFilters compiles allow and deny; an error names the list at fault.
// Cilium's filters log through slog's default logger.
func NewFilters(ctx context.Context, allow, deny []*flowpb.FlowFilter) (Filters, error) {
	log := slog.Default()
	var f Filters
	var err error
	if f.allow, err = filters.BuildFilterList(ctx, allow, filters.DefaultFilters(log)); err != nil {
		return f, fmt.Errorf("allowlist: %w", err)
	}
	if f.deny, err = filters.BuildFilterList(ctx, deny, filters.DefaultFilters(log)); err != nil {
		return f, fmt.Errorf("denylist: %w", err)
	}
	return f, nil
}

// Match reports whether a flow passes the filters.
func (f Filters) Match(fl *flowpb.Flow) bool {
	return filters.Apply(f.allow, f.deny, &v1.Event{Timestamp: fl.GetTime(), Event: fl})
}
