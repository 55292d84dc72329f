package sim

import (
	"container/heap"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/protobuf/proto"
)

func newTestGenerator(scen string, seed uint64) *generator {
	rng := rand.New(rand.NewPCG(seed, seed))
	topo := NewTopology(3, rng)
	return newGenerator(topo, Scenarios[scen], time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC).UnixNano(), 2000, rng)
}

// drain returns every queued flow in time order.
func (g *generator) drain() []*flowpb.Flow {
	var out []*flowpb.Flow
	for g.q.Len() > 0 {
		out = append(out, popItem(g).flow)
	}
	return out
}

func popItem(g *generator) *item { return heap.Pop(&g.q).(*item) }

// serverRequests counts the requests servers saw, by gRPC method or path.
func serverRequests(flows []*flowpb.Flow) map[string]int {
	out := map[string]int{}
	for _, f := range flows {
		if f.GetL7().GetType() == flowpb.L7FlowType_REQUEST && f.GetTrafficDirection() == flowpb.TrafficDirection_INGRESS {
			url := f.GetL7().GetHttp().GetUrl()
			out[url[strings.LastIndex(url, "/")+1:]]++
		}
	}
	return out
}

// The frontend's per-page fan-out, as in microservices-demo's handlers.go.
func TestFrontendFanOut(t *testing.T) {
	tests := []struct {
		method, path string
		want         map[string]int
	}{
		{"GET", "/", map[string]int{"GetSupportedCurrencies": 1, "ListProducts": 1, "GetCart": 1, "Convert": 9, "GetAds": 1}},
		{"POST", "/setCurrency", map[string]int{}},
		{"GET", "/product/OLJCESPC7Z", map[string]int{"GetSupportedCurrencies": 1, "GetProduct": 5, "GetCart": 1, "Convert": 1,
			"ListRecommendations": 1, "ListProducts": 1, "GetAds": 1}},
		{"POST", "/cart", map[string]int{"GetProduct": 1, "AddItem": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			g := newTestGenerator("steady", 7)
			fe := g.topo.Services["frontend"].Pods[0]
			_, code := g.frontend(fe, tt.method, tt.path, g.start)
			if code != 200 && code != 302 {
				t.Fatalf("page answered %d", code)
			}
			got := serverRequests(g.drain())
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s: %d calls, want %d (all: %v)", k, got[k], v, got)
				}
			}
			for k := range got {
				if _, ok := tt.want[k]; !ok {
					t.Errorf("unexpected call %s", k)
				}
			}
		})
	}
}

func TestPlaceOrderFanOut(t *testing.T) {
	g := newTestGenerator("steady", 3)
	co := g.topo.Services["checkoutservice"].Pods[0]
	_, code := g.placeOrder(co, g.start)
	if code != 200 {
		t.Fatalf("PlaceOrder answered %d", code)
	}
	got := serverRequests(g.drain())
	items := got["GetProduct"]
	if items < 1 || items > 3 || got["Convert"] != items+1 {
		t.Errorf("per item one GetProduct and one Convert, plus one Convert for shipping: %v", got)
	}
	for _, m := range []string{"GetCart", "GetQuote", "Charge", "ShipOrder", "EmptyCart", "SendOrderConfirmation"} {
		if got[m] != 1 {
			t.Errorf("%s: %d calls, want 1 (%v)", m, got[m], got)
		}
	}
}

func TestDeterministic(t *testing.T) {
	a, b := newTestGenerator("incident", 42), newTestGenerator("incident", 42)
	c := newTestGenerator("incident", 43)
	differs := false
	for i := 0; i < 5000; i++ {
		fa, fb, fc := a.next().flow, b.next().flow, c.next().flow
		if !proto.Equal(fa, fb) {
			t.Fatalf("flow %d differs with the same seed:\n%v\n%v", i, fa, fb)
		}
		if !proto.Equal(fa, fc) {
			differs = true
		}
	}
	if !differs {
		t.Error("another seed gave the same flows")
	}
}

// A run's flows, checked the way Hubble users would look at them.
func TestFlowsLookLikeHubble(t *testing.T) {
	g := newTestGenerator("incident", 1)
	var flows []*flowpb.Flow
	end := g.start + int64(4*time.Minute)
	for {
		f := g.next().flow
		if f.GetTime().AsTime().UnixNano() >= end {
			break
		}
		flows = append(flows, f)
	}
	rate := float64(len(flows)) / 240
	if rate < 0.9*2000 || rate > 1.1*2000 {
		t.Errorf("%.0f flows per simulated second, want about the rate 2000", rate)
	}
	edges := map[string]bool{}
	seen := map[string]int{}
	uuids := map[string]bool{}
	var last int64
	for _, f := range flows {
		at := f.GetTime().AsTime().UnixNano()
		if at < last {
			t.Fatal("flows out of time order")
		}
		last = at
		if f.GetUuid() == "" || uuids[f.GetUuid()] {
			t.Fatalf("missing or repeated uuid %q", f.GetUuid())
		}
		uuids[f.GetUuid()] = true
		if !strings.HasPrefix(f.GetNodeName(), ClusterName+"/") {
			t.Fatalf("node_name %q lacks the cluster prefix", f.GetNodeName())
		}
		src, dst := f.GetSource().GetWorkloads(), f.GetDestination().GetWorkloads()
		if f.GetIsReply().GetValue() {
			src, dst = dst, src
		}
		if len(src) > 0 && len(dst) > 0 {
			edges[src[0].GetName()+">"+dst[0].GetName()] = true
		}
		if l7 := f.GetL7(); l7 != nil {
			if l7.GetType() == flowpb.L7FlowType_RESPONSE && (!f.GetIsReply().GetValue() || l7.GetLatencyNs() == 0) {
				t.Fatalf("response without is_reply or latency: %v", f)
			}
			if h := l7.GetHttp(); h != nil {
				seen[h.GetProtocol()]++
				if h.GetProtocol() == "HTTP/2" && (h.GetMethod() != "POST" || !strings.Contains(h.GetUrl(), "/hipstershop.")) {
					t.Fatalf("gRPC call not shaped as HTTP/2 POST /hipstershop.Service/Method: %v", h)
				}
				if h.GetCode() == 503 && strings.HasSuffix(h.GetUrl(), "/Charge") {
					seen["charge503"]++
				}
			}
			if d := l7.GetDns(); d != nil && d.GetRcode() == 3 {
				seen["nxdomain"]++
			}
		}
		if fl := f.GetL4().GetTCP().GetFlags(); fl != nil && f.GetVerdict() == flowpb.Verdict_FORWARDED {
			for name, on := range map[string]bool{"SYN": fl.GetSYN() && !fl.GetACK(), "SYN-ACK": fl.GetSYN() && fl.GetACK(), "FIN": fl.GetFIN(), "RST": fl.GetRST()} {
				if on {
					seen[name]++
				}
			}
		}
		if f.GetVerdict() == flowpb.Verdict_DROPPED {
			if f.GetDropReasonDesc() == flowpb.DropReason_POLICY_DENY {
				if len(f.GetIngressDeniedBy()) == 0 || f.GetDestination().GetWorkloads()[0].GetName() != "productcatalogservice" {
					t.Fatalf("policy-deny drop without attribution or to the wrong service: %v", f)
				}
				if at < g.start+int64(2*time.Minute) {
					t.Fatal("the deny policy dropped traffic before the incident")
				}
			}
			seen["drop:"+f.GetDropReasonDesc().String()]++
		}
	}
	for _, e := range []string{
		"loadgenerator>frontend", "frontend>productcatalogservice", "frontend>currencyservice", "frontend>cartservice",
		"frontend>recommendationservice", "frontend>shippingservice", "frontend>checkoutservice", "frontend>adservice",
		"checkoutservice>productcatalogservice", "checkoutservice>shippingservice", "checkoutservice>paymentservice",
		"checkoutservice>emailservice", "checkoutservice>currencyservice", "checkoutservice>cartservice",
		"recommendationservice>productcatalogservice", "cartservice>redis-cart", "frontend>kube-dns", "cartservice>kube-dns",
	} {
		if !edges[e] {
			t.Errorf("no flows for edge %s", e)
		}
	}
	for _, k := range []string{"HTTP/1.1", "HTTP/2", "charge503", "nxdomain", "SYN", "SYN-ACK", "FIN", "RST", "drop:POLICY_DENY", "drop:POLICY_DENIED"} {
		if seen[k] == 0 {
			t.Errorf("no %s flows in 4 simulated minutes", k)
		}
	}
}
