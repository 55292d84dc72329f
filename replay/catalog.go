// Package replay serves recordings over the Hubble Observer gRPC API, so
// that `hubble observe` and other Observer API clients work on the past as
// they do against hubble-relay.
package replay

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	observerpb "github.com/cilium/cilium/api/v1/observer"

	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// Catalog is what a set of recordings holds, from one read of a few
// columns: it answers ServerStatus, GetNodes and GetNamespaces, and says
// on start what is served.
type Catalog struct {
	// First and Last are the times of the first and last flow or event.
	First, Last time.Time
	Flows       uint64
	// Lost is the number of events recorded as lost (the sum of the lost
	// events' counts).
	Lost       uint64
	Nodes      []Node
	Namespaces []Namespace
}

// Node is a node that observed recorded flows.
type Node struct {
	Name        string
	Flows       uint64
	First, Last time.Time
}

// Namespace is a Kubernetes namespace seen as a source or destination.
type Namespace struct {
	Cluster, Namespace string
}

// catalogColumns are the flow columns the catalog reads, in this order.
var catalogColumns = []string{"time", "node_name",
	"source_namespace", "source_cluster_name", "destination_namespace", "destination_cluster_name"}

// Describe builds the catalog of a recording's files.
func Describe(ctx context.Context, files tape.Files) (*Catalog, error) {
	c := &Catalog{}
	nodes := map[string]*Node{}
	namespaces := map[Namespace]bool{}
	see := func(t time.Time) {
		if c.First.IsZero() || t.Before(c.First) {
			c.First = t
		}
		if t.After(c.Last) {
			c.Last = t
		}
	}
	for _, p := range files.Flows {
		err := tape.ReadColumns(ctx, p, catalogColumns, func(rec arrow.RecordBatch) error {
			times, ok := rec.Column(0).(*array.Timestamp)
			if !ok {
				return fmt.Errorf("%s: column time has type %s", p, rec.Column(0).DataType())
			}
			names := stringsOf(rec.Column(1))
			for i := 0; i < int(rec.NumRows()); i++ {
				if times.IsNull(i) {
					continue
				}
				t := time.Unix(0, int64(times.Value(i))).UTC()
				see(t)
				name := names(i)
				n := nodes[name]
				if n == nil {
					n = &Node{Name: name, First: t, Last: t}
					nodes[name] = n
				}
				n.Flows++
				n.First = minTime(n.First, t)
				n.Last = maxTime(n.Last, t)
			}
			c.Flows += uint64(rec.NumRows())
			for _, side := range [][2]int{{2, 3}, {4, 5}} {
				distinctPairs(rec.Column(side[0]), rec.Column(side[1]), func(ns, cluster string) {
					if ns != "" {
						namespaces[Namespace{Cluster: cluster, Namespace: ns}] = true
					}
				})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, p := range files.Events {
		_, err := tape.ReadFile(ctx, schema.Events, p, func(r *observerpb.GetFlowsResponse) error {
			if l := r.GetLostEvents(); l != nil {
				c.Lost += l.GetNumEventsLost()
			}
			if t := r.GetTime(); t != nil {
				see(t.AsTime())
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, n := range nodes {
		c.Nodes = append(c.Nodes, *n)
	}
	slices.SortFunc(c.Nodes, func(a, b Node) int { return cmp.Compare(a.Name, b.Name) })
	for ns := range namespaces {
		c.Namespaces = append(c.Namespaces, ns)
	}
	slices.SortFunc(c.Namespaces, func(a, b Namespace) int {
		return cmp.Or(cmp.Compare(a.Cluster, b.Cluster), cmp.Compare(a.Namespace, b.Namespace))
	})
	return c, nil
}

// NodeNames are the names of the recorded nodes, sorted.
func (c *Catalog) NodeNames() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Name
	}
	return out
}

// stringsOf returns a function reading a string column, dictionary-encoded
// or not (NULL reads as "").
func stringsOf(a arrow.Array) func(int) string {
	switch a := a.(type) {
	case *array.Dictionary:
		dict := stringsOf(a.Dictionary())
		return func(i int) string {
			if a.IsNull(i) {
				return ""
			}
			return dict(a.GetValueIndex(i))
		}
	case *array.String:
		return func(i int) string {
			if a.IsNull(i) {
				return ""
			}
			return a.Value(i)
		}
	default:
		return func(int) string { return "" }
	}
}

// distinctPairs calls fn for the distinct (a, b) values of two string
// columns, cheaply when both are dictionary-encoded (most batches hold a
// handful of namespaces).
func distinctPairs(a, b arrow.Array, fn func(a, b string)) {
	da, okA := a.(*array.Dictionary)
	db, okB := b.(*array.Dictionary)
	if okA && okB {
		seen := map[[2]int]bool{}
		for i := 0; i < a.Len(); i++ {
			k := [2]int{-1, -1}
			if da.IsValid(i) {
				k[0] = da.GetValueIndex(i)
			}
			if db.IsValid(i) {
				k[1] = db.GetValueIndex(i)
			}
			seen[k] = true
		}
		va, vb := stringsOf(da.Dictionary()), stringsOf(db.Dictionary())
		for k := range seen {
			var x, y string
			if k[0] >= 0 {
				x = va(k[0])
			}
			if k[1] >= 0 {
				y = vb(k[1])
			}
			fn(x, y)
		}
		return
	}
	sa, sb := stringsOf(a), stringsOf(b)
	seen := map[[2]string]bool{}
	for i := 0; i < a.Len(); i++ {
		seen[[2]string{sa(i), sb(i)}] = true
	}
	for k := range seen {
		fn(k[0], k[1])
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
