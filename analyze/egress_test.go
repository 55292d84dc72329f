package analyze_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/flowtape/flowtape/analyze"
	"github.com/flowtape/flowtape/internal/observer"
	"github.com/flowtape/flowtape/internal/testutil"
)

// egressFlows are hand-built flows that each test one rule of egress: how
// a destination is named (the flows' names, the client's own DNS answer
// before another client's, the address), which identities are outside,
// and what is not egress (the internet calling in, an address the
// recording places in a pod or on a node).
func egressFlows(t0 time.Time) []*observerpb.GetFlowsResponse {
	pod := func(ns, app, name, ip string, id uint32) (*flowpb.Endpoint, string) {
		return &flowpb.Endpoint{ID: id % 1000, Identity: id, Namespace: ns, PodName: name,
			Labels: []string{"k8s:app=" + app, "k8s:io.kubernetes.pod.namespace=" + ns}}, ip
	}
	api, apiIP := pod("shop", "api", "api-7d9f8b6c5d-x2x4q", "10.0.0.5", 5000)
	worker, workerIP := pod("jobs", "worker", "worker-5c6b7d8f9-abcde", "10.0.1.7", 5100)
	dns, dnsIP := pod("kube-system", "kube-dns", "coredns-6f4d8c7b9-k2k2k", "10.0.0.53", 102)
	world := func(id uint32, labels ...string) *flowpb.Endpoint {
		return &flowpb.Endpoint{Identity: id, Labels: append(labels, "reserved:world")}
	}
	var out []*observerpb.GetFlowsResponse
	add := func(at time.Duration, f *flowpb.Flow) {
		f.Time = timestamppb.New(t0.Add(at))
		f.NodeName = "kind-worker"
		if f.Verdict == flowpb.Verdict_VERDICT_UNKNOWN {
			f.Verdict = flowpb.Verdict_FORWARDED
		}
		out = append(out, observer.FlowResponse(f))
	}
	answer := func(at time.Duration, client *flowpb.Endpoint, clientIP, query string, ips ...string) {
		add(at, &flowpb.Flow{Type: flowpb.FlowType_L7, IsReply: wrapperspb.Bool(true),
			IP:     &flowpb.IP{Source: dnsIP, Destination: clientIP, IpVersion: flowpb.IPVersion_IPv4},
			L4:     &flowpb.Layer4{Protocol: &flowpb.Layer4_UDP{UDP: &flowpb.UDP{SourcePort: 53, DestinationPort: 40000}}},
			Source: dns, Destination: client, EventType: &flowpb.CiliumEventType{Type: 129},
			L7: &flowpb.Layer7{Type: flowpb.L7FlowType_RESPONSE, Record: &flowpb.Layer7_Dns{Dns: &flowpb.DNS{
				Query: query, Ips: ips, Rrtypes: []string{"A"}, Qtypes: []string{"A"}}}}})
	}
	// tcp is a segment from src to dst; reply is Cilium's is_reply.
	tcp := func(at time.Duration, src *flowpb.Endpoint, srcIP string, sport uint32, dst *flowpb.Endpoint, dstIP string, dport uint32,
		flags *flowpb.TCPFlags, reply bool, edit func(*flowpb.Flow)) {
		v := flowpb.IPVersion_IPv4
		if strings.Contains(dstIP, ":") {
			v = flowpb.IPVersion_IPv6
		}
		f := &flowpb.Flow{Type: flowpb.FlowType_L3_L4, IsReply: wrapperspb.Bool(reply),
			IP:     &flowpb.IP{Source: srcIP, Destination: dstIP, IpVersion: v},
			L4:     &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{SourcePort: sport, DestinationPort: dport, Flags: flags}}},
			Source: src, Destination: dst, EventType: &flowpb.CiliumEventType{Type: 4}}
		if edit != nil {
			edit(f)
		}
		add(at, f)
	}
	syn, synAck := &flowpb.TCPFlags{SYN: true}, &flowpb.TCPFlags{SYN: true, ACK: true}

	// The same address, two names: api's own answer names api's flows,
	// worker's names worker's.
	answer(0, api, apiIP, "files.example.org.", "192.0.2.5")
	answer(time.Second, worker, workerIP, "cdn.example.net.", "192.0.2.5")
	tcp(2*time.Second, api, apiIP, 41000, world(2), "192.0.2.5", 443, syn, false, nil)
	// the same SYN again (a retransmit, or another observation point):
	// one connection
	tcp(2*time.Second+time.Millisecond, api, apiIP, 41000, world(2), "192.0.2.5", 443, syn, false, nil)
	tcp(2*time.Second+10*time.Millisecond, world(2), "192.0.2.5", 443, api, apiIP, 41000, synAck, true, nil)
	tcp(3*time.Second, worker, workerIP, 42000, world(2), "192.0.2.5", 443, syn, false, nil)
	// A CIDR identity, denied: its own row, by its address.
	tcp(4*time.Second, api, apiIP, 43000, world(16777218, "cidr:198.51.100.0/24"), "198.51.100.9", 25, syn, false, func(f *flowpb.Flow) {
		f.Verdict, f.DropReasonDesc = flowpb.Verdict_DROPPED, flowpb.DropReason_POLICY_DENIED
	})
	// The internet calling in is not egress.
	tcp(5*time.Second, world(2), "203.0.113.9", 50000, api, apiIP, 22, syn, false, nil)
	// An address a flow places in a pod is in the cluster, whatever
	// identity another flow gives it.
	tcp(5*time.Second, api, apiIP, 44000, world(2), workerIP, 8080, syn, false, nil)
	tcp(5*time.Second+time.Millisecond, worker, workerIP, 8080, api, apiIP, 44000, synAck, true, nil)
	// IPv6 world, no SYN seen: flows, no connections.
	tcp(6*time.Second, api, "fd00::5", 45000, world(10), "2001:db8::1", 443, &flowpb.TCPFlags{ACK: true}, false, nil)
	// The FQDN cache's name on the flow itself.
	tcp(7*time.Second, api, apiIP, 46000, world(16777217, "fqdn:api.partner.example"), "192.0.2.80", 443, syn, false, func(f *flowpb.Flow) {
		f.DestinationNames = []string{"api.partner.example."}
	})
	// No identity Cilium could tell, at an address nothing places in the
	// cluster: egress, by its address.
	unknown := &flowpb.Endpoint{}
	tcp(8*time.Second, api, apiIP, 47000, unknown, "192.0.2.200", 8443, syn, false, nil)
	// The same at a node's address (the kubelet's, which probes api as
	// the host identity): not egress.
	node := &flowpb.Endpoint{Identity: 1, Labels: []string{"reserved:host"}}
	tcp(8*time.Second, node, "172.18.0.2", 48000, api, apiIP, 8080, syn, false, nil)
	tcp(9*time.Second, api, apiIP, 49000, unknown, "172.18.0.2", 10250, syn, false, nil)
	// An address only another client looked up: named, but by another's
	// answer.
	answer(9*time.Second, api, apiIP, "img.example.org.", "192.0.2.90")
	tcp(10*time.Second, worker, workerIP, 42100, world(2), "192.0.2.90", 443, syn, false, nil)
	// A Kubernetes service the client addressed, as a socket
	// load-balancing trace shows it (the ClusterIP has the world
	// identity), and a packet to it: not egress.
	tcp(10*time.Second, api, apiIP, 42200, world(2), "10.96.0.10", 53, syn, false, func(f *flowpb.Flow) {
		f.Type, f.Verdict = flowpb.FlowType_SOCK, flowpb.Verdict_TRACED
		f.DestinationService = &flowpb.Service{Name: "kube-dns", Namespace: "kube-system"}
	})
	tcp(10*time.Second, api, apiIP, 42200, world(2), "10.96.0.10", 53, syn, false, nil)
	// IPv6 multicast (a router solicitation) never leaves the link.
	tcp(10*time.Second, api, "fd00::5", 42300, world(10), "ff02::2", 443, syn, false, nil)
	// A pod's flow without an IP layer changes nothing.
	add(11*time.Second, &flowpb.Flow{Type: flowpb.FlowType_L3_L4, Source: api, Destination: worker, EventType: &flowpb.CiliumEventType{Type: 4}})
	return out
}

func TestEgress(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	testutil.WriteRecording(t, dir, "egress", egressFlows(t0))
	e := open(t, dir)
	row := func(m map[string]any) string {
		return fmt.Sprintf("%v/%v -> %v [%v] :%v %v %v flows=%v conns=%v first=%v by=%v", m["source_namespace"], m["source"], m["destination"],
			m["ips"], m["port"], m["protocol"], m["verdict"], m["flows"], m["connections"], m["first_seen"], m["named_by"])
	}
	for _, tc := range []struct {
		name string
		p    analyze.Params
		want []string
	}{
		{"all", analyze.Params{}, []string{
			"jobs/worker -> cdn.example.net [192.0.2.5] :443 TCP FORWARDED flows=1 conns=1 first=2026-11-25T10:00:03Z by=dns",
			"jobs/worker -> img.example.org [192.0.2.90] :443 TCP FORWARDED flows=1 conns=1 first=2026-11-25T10:00:10Z by=other-dns",
			"shop/api -> 192.0.2.200 [192.0.2.200] :8443 TCP FORWARDED flows=1 conns=1 first=2026-11-25T10:00:08Z by=address",
			"shop/api -> 198.51.100.9 [198.51.100.9] :25 TCP DROPPED flows=1 conns=1 first=2026-11-25T10:00:04Z by=address",
			"shop/api -> 2001:db8::1 [2001:db8::1] :443 TCP FORWARDED flows=1 conns=0 first=2026-11-25T10:00:06Z by=address",
			"shop/api -> api.partner.example [192.0.2.80] :443 TCP FORWARDED flows=1 conns=1 first=2026-11-25T10:00:07Z by=flows",
			"shop/api -> files.example.org [192.0.2.5] :443 TCP FORWARDED flows=3 conns=1 first=2026-11-25T10:00:02Z by=dns",
		}},
		{"namespace", analyze.Params{Namespace: "jobs"}, []string{
			"jobs/worker -> cdn.example.net [192.0.2.5] :443 TCP FORWARDED flows=1 conns=1 first=2026-11-25T10:00:03Z by=dns",
			"jobs/worker -> img.example.org [192.0.2.90] :443 TCP FORWARDED flows=1 conns=1 first=2026-11-25T10:00:10Z by=other-dns",
		}},
		// What no flow before 10:00:03.5 went to; the window does not
		// change what came before it.
		{"new since", analyze.Params{NewSince: t0.Add(3500 * time.Millisecond), Since: t0.Add(5 * time.Second)}, []string{
			"jobs/worker -> img.example.org [192.0.2.90] :443 TCP FORWARDED flows=1 conns=1 first=2026-11-25T10:00:10Z by=other-dns",
			"shop/api -> 192.0.2.200 [192.0.2.200] :8443 TCP FORWARDED flows=1 conns=1 first=2026-11-25T10:00:08Z by=address",
			"shop/api -> 2001:db8::1 [2001:db8::1] :443 TCP FORWARDED flows=1 conns=0 first=2026-11-25T10:00:06Z by=address",
			"shop/api -> api.partner.example [192.0.2.80] :443 TCP FORWARDED flows=1 conns=1 first=2026-11-25T10:00:07Z by=flows",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.Run(context.Background(), "egress", tc.p)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range res.Records() {
				got = append(got, row(m))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
	if _, err := e.Run(context.Background(), "egress", analyze.Params{NewSince: t0}); err == nil ||
		!strings.Contains(err.Error(), "--new-since") || !strings.Contains(err.Error(), "not after the recording's first flow") {
		t.Errorf("--new-since at the first flow: %v, want an error saying nothing comes before it", err)
	}
	if _, err := e.Run(context.Background(), "egress", analyze.Params{NewSince: t0.Add(time.Minute)}); err == nil ||
		!strings.Contains(err.Error(), "is after the recording's last flow") {
		t.Errorf("--new-since after the last flow: %v, want an error saying nothing comes after it", err)
	}
	if _, err := e.Run(context.Background(), "services", analyze.Params{NewSince: t0.Add(time.Second)}); err == nil ||
		!strings.Contains(err.Error(), "--new-since is egress's") {
		t.Errorf("--new-since on services: %v, want it refused", err)
	}
}

// Over the real samples: the two flows that left the cluster (a GKE
// event exporter's HTTPS to Google, Prometheus scraping a VM), and none of
// the flows that name a pod beside the world identity (Istio's sidecars
// on a kind cluster).
func TestEgressOfSamples(t *testing.T) {
	dir := sampleRecording(t, testutil.SampleFiles...)
	res, err := open(t, dir).Run(context.Background(), "egress", analyze.Params{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range res.Records() {
		got = append(got, fmt.Sprintf("%v/%v -> %v:%v %v flows=%v by=%v", m["source_namespace"], m["source"], m["destination"], m["port"],
			m["verdict"], m["flows"], m["named_by"]))
	}
	want := []string{
		"istio-system/prometheus -> 10.128.0.4:9990 FORWARDED flows=1 by=address",
		"kube-system/event-exporter -> 35.246.31.234:443 FORWARDED flows=2 by=address",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
