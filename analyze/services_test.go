package analyze_test

import (
	"context"
	"testing"

	flowpb "github.com/cilium/cilium/api/v1/flow"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/testutil"
)

// services over real captures, checked against counts taken from the flows
// directly: every HTTP response is one request of the service that sent it,
// and its 5xx are that service's errors.
func TestServicesOnSamples(t *testing.T) {
	samples := []string{"basic-sample-400-tcp-flows.json", "basic-sample-5-http-flows.json"}
	e := open(t, sampleRecording(t, samples...))
	res, err := e.Run(context.Background(), "services", analyze.Params{})
	if err != nil {
		t.Fatal(err)
	}
	var responses, errors5xx int64
	for _, s := range samples {
		for _, r := range testutil.LoadResponses(t, testutil.Testdata("samples", s)) {
			if l7 := r.GetFlow().GetL7(); l7.GetType() == flowpb.L7FlowType_RESPONSE && l7.GetHttp() != nil {
				responses++
				if l7.GetHttp().GetCode() >= 500 {
					errors5xx++
				}
			}
		}
	}
	l7 := func(m map[string]any) bool { return m["visibility"] == "L7" }
	requests, errs := sum(t, res, "requests", l7), sum(t, res, "errors", l7)
	for _, m := range res.Records() {
		if e, _ := integer(t, m, "errors", true); e > 0 && m["health"] != "failure" {
			t.Errorf("%v: all-5xx service not marked failure", m)
		}
	}
	if requests != responses || errs != errors5xx || errs == 0 {
		t.Errorf("services count %d requests and %d errors; the flows hold %d responses, %d of them 5xx", requests, errs, responses, errors5xx)
	}
	if _, err := e.Run(context.Background(), "services", analyze.Params{Reporter: "proxy"}); err == nil {
		t.Error("an unknown reporter was accepted")
	}
}
