package record_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/record"
	"github.com/flowtape/flowtape/sim"
	"github.com/flowtape/flowtape/tape"
)

const gkeRelayName = "relay.gke-managed-dpv2-observability.svc.cluster.local"

// The real hubble-relay in front of the simulated agents, with mTLS as on
// GKE Dataplane V2, recorded with the matching TLS flags.
func TestRecordThroughTLSRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("builds hubble-relay")
	}
	lis := serveAgents(t, sim.Config{Seed: 31, Start: t0, RingCapacity: 2000})
	pki := testutil.NewTLS(t, t.TempDir(), gkeRelayName)
	relay := testutil.StartRelay(t, lis[0].Addr().String(), "--disable-client-tls",
		"--tls-relay-server-cert-file", pki.ServerCert, "--tls-relay-server-key-file", pki.ServerKey,
		"--tls-relay-client-ca-files", pki.CA)

	tlsArgs := []string{"--server", relay, "--tls", "--tls-ca-cert-files", pki.CA, "--tls-server-name", gkeRelayName}
	withCert := append(append([]string{}, tlsArgs...), "--tls-client-cert-file", pki.ClientCert, "--tls-client-key-file", pki.ClientKey)

	dir := t.TempDir()
	var res record.Result
	// The relay needs a moment to find its peers.
	testutil.Eventually(t, 2*time.Minute, "record 3000 flows through the TLS relay", func() bool {
		rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer rcancel()
		var err error
		res, err = record.Run(rctx, record.Options{Dialer: dialer(t, withCert...), Since: t0, MaxFlows: 3000,
			Sink: tape.SinkOptions{Dir: dir, Writer: "test"}})
		if err != nil || res.Session.Totals.Flows != 3000 {
			t.Logf("record through the TLS relay: %d flows, %v", res.Session.Totals.Flows, err)
			return false
		}
		return true
	})
	flows, _ := readRecording(t, dir)
	nodes := map[string]bool{}
	for _, f := range flows {
		nodes[f.GetNodeName()] = true
	}
	if len(flows) != 3000 || len(nodes) != 3 {
		t.Fatalf("recorded %d flows from %d nodes, want 3000 from 3", len(flows), len(nodes))
	}
	if !res.Session.Server.TLS {
		t.Error("manifest does not say the connection used TLS")
	}

	// The relay, ready as shown above, refuses us without the client certificate.
	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	_, err := record.Run(rctx, record.Options{Dialer: dialer(t, tlsArgs...), Sink: tape.SinkOptions{Dir: t.TempDir()}})
	rcancel()
	if !errors.Is(err, record.ErrNoServer) {
		t.Fatalf("without a client certificate: %v, want a refusal", err)
	}

}

// Recording works against a single agent as against a relay.
func TestRecordFromOneAgent(t *testing.T) {
	lis := serveAgents(t, sim.Config{Seed: 32, Start: t0, RingCapacity: 2000})
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	res, err := record.Run(rctx, record.Options{Dialer: dialer(t, "--server", lis[2].Addr().String()), Since: t0, MaxFlows: 500,
		Sink: tape.SinkOptions{Dir: t.TempDir(), Writer: "test"}})
	if err != nil || res.Session.Totals.Flows != 500 || res.Session.Server.ServerVersion == "" {
		t.Fatalf("record from an agent: %+v, %v", res.Session, err)
	}
}

// serveAgents runs a simulated cluster whose nodes are served as agents;
// it returns their listeners, node i on lis[i].
func serveAgents(t *testing.T, cfg sim.Config) []net.Listener {
	t.Helper()
	_, lis := serveAgentCluster(t, cfg)
	return lis
}
