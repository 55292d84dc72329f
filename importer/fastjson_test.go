package importer

import (
	"os"
	"strings"
	"testing"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/flowtape/flowtape/internal/observer"
	"github.com/flowtape/flowtape/internal/testutil"
)

// The fast decoder takes the lines Hubble writes (else it would not be
// fast), and agrees with protojson on them.
func TestFastDecoderTakesHubbleLines(t *testing.T) {
	var lines []string
	for _, name := range testutil.SampleFiles {
		lines = append(lines, sampleLines(t, name)...)
	}
	var buf strings.Builder
	for _, f := range incidentFlows(2000) {
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(observer.FlowResponse(f))
		if err != nil {
			t.Fatal(err)
		}
		buf.Reset()
		buf.Write(b)
		lines = append(lines, buf.String())
	}
	for i, line := range lines {
		fast := &observerpb.ExportEvent{}
		if err := fastUnmarshal([]byte(line), fast); err != nil {
			t.Fatalf("line %d: the fast decoder gave up on a line Hubble writes:\n%s", i, line)
		}
		slow := &observerpb.ExportEvent{}
		if err := protojson.Unmarshal([]byte(line), slow); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(fast, slow) {
			t.Fatalf("line %d: fast and protojson differ:\n%v\n%v", i, fast, slow)
		}
	}
}

// FuzzFastDecode: whatever the fast decoder accepts, protojson accepts and
// decodes to the same message.
func FuzzFastDecode(f *testing.F) {
	for _, name := range testutil.SampleFiles {
		b, err := os.ReadFile(testutil.Testdata("samples", name))
		if err != nil {
			f.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if i < 4 && line != "" {
				f.Add([]byte(line))
			}
		}
	}
	for _, s := range []string{
		`{"time":"2026-01-01T00:00:00.5Z","verdict":3,"l4":{"TCP":{"source_port":"80"}},"is_reply":true,"drop_reason":4294967295}`,
		`{"source":{"labels":["a\u00e9\ud83d\ude00","\\\"/\b\f\n\r\t"]},"uuid":"x"}`,
		`{"flow":{"l7":{"latency_ns":"18446744073709551615","http":{"code":-1}}},"time":"9999-12-31T23:59:59.999999999Z"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		for _, m := range []proto.Message{&observerpb.ExportEvent{}, &flowpb.Flow{}} {
			if fastUnmarshal(line, m) != nil {
				continue
			}
			slow := m.ProtoReflect().New().Interface()
			if err := protojson.Unmarshal(line, slow); err != nil {
				t.Fatalf("fast decoder accepted what protojson rejects (%v):\n%s", err, line)
			}
			if !proto.Equal(m, slow) {
				t.Fatalf("fast and protojson differ:\nfast %v\nslow %v\n%s", m, slow, line)
			}
		}
	})
}
