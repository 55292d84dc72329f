package tape

import (
	"io"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/schema"
)

// A writer holds at most defaults.EncodeBatchRows rows as Arrow builders:
// each batch goes into the open row group, which stays open until full
// (what keeps a recorder's memory down; TestRowGroupsFullFromBatches
// checks the groups).
func TestWriterHoldsOneBatchOfBuilders(t *testing.T) {
	w, err := NewFileWriter(schema.Flows, io.Discard, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	at := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	for i := 1; i <= defaults.EncodeBatchRows+10; i++ {
		f := &flowpb.Flow{Time: timestamppb.New(at.Add(time.Duration(i) * time.Millisecond)), NodeName: "node-a",
			Source: &flowpb.Endpoint{Namespace: "shop", PodName: "cart-1", Labels: []string{"k8s:app=cart"}}}
		if err := w.Write(f); err != nil {
			t.Fatal(err)
		}
		if held := w.enc.Len(); held >= defaults.EncodeBatchRows {
			t.Fatalf("after %d rows the builders hold %d", i, held)
		}
	}
	if got, want := w.Buffered(), defaults.EncodeBatchRows+10; got != want {
		t.Errorf("%d rows buffered (builders and the open row group), want %d", got, want)
	}
}
