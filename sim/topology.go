// Package sim is a simulated Cilium cluster running Google's microservices
// demo (Online Boutique). It produces flows the way Hubble reports them and
// serves them over the real Observer gRPC API (as hubble-relay, and as one
// agent per node with the Peer service), so that flowtape's recorder, replay,
// analyses and demo can be exercised and benchmarked without a cluster.
//
// Given a seed the output is deterministic: the same flows, uuids and
// timestamps, which is what lets tests compare analyses with the truth the
// simulator writes (see Truth).
package sim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"

	flowpb "github.com/cilium/cilium/api/v1/flow"
)

// ClusterName is the simulated cluster's name, prefixed to node names as
// hubble-relay reports them.
const ClusterName = "boutique"

// Protocol of a service's port.
type Protocol int

const (
	HTTP Protocol = iota // HTTP/1.1
	GRPC                 // gRPC over HTTP/2
	TCP                  // plain TCP, no L7 visibility (redis)
	DNS                  // UDP 53 via the DNS proxy
)

// Service is one Kubernetes Deployment with its Service.
type Service struct {
	Name      string
	Namespace string
	Port      uint32
	Proto     Protocol
	Replicas  int
	GRPCName  string // fully qualified gRPC service, e.g. hipstershop.CartService
	Identity  uint32
	ClusterIP string

	Pods []*Pod
}

// Key is namespace/name, the way truth and analyses name services.
func (s *Service) Key() string { return s.Namespace + "/" + s.Name }

// Pod is one replica of a service.
type Pod struct {
	Name    string
	IP      string
	Node    *Node
	Service *Service
	ID      uint32 // Cilium endpoint ID
	ep      *flowpb.Endpoint
	// extLabels are the identity labels of an address outside the
	// cluster (no ep); reserved:world when none are given.
	extLabels []string
}

// Endpoint returns a fresh copy of the pod as a Hubble endpoint.
func (p *Pod) Endpoint() *flowpb.Endpoint {
	if p.ep == nil { // outside the cluster
		labels := p.extLabels
		if labels == nil {
			labels = []string{"reserved:world"}
		}
		return &flowpb.Endpoint{Identity: p.Service.Identity, Labels: labels}
	}
	ep := p.ep
	return &flowpb.Endpoint{ID: ep.ID, Identity: ep.Identity, ClusterName: ep.ClusterName, Namespace: ep.Namespace,
		Labels: ep.Labels, PodName: ep.PodName, Workloads: []*flowpb.Workload{{Name: p.Service.Name, Kind: "Deployment"}}}
}

// Node is one Kubernetes node running a Cilium agent.
type Node struct {
	Name   string // hostname
	Index  int
	Labels []string
}

// FullName is the node name as Hubble reports it behind a relay: cluster/node.
func (n *Node) FullName() string { return ClusterName + "/" + n.Name }

// Topology is the cluster: nodes and services with their pods.
type Topology struct {
	Nodes    []*Node
	Services map[string]*Service // by name
	Order    []*Service          // stable order
}

// serviceSpecs is Online Boutique as deployed by its kubernetes-manifests.
var serviceSpecs = []Service{
	{Name: "frontend", Port: 8080, Proto: HTTP, Replicas: 2},
	{Name: "cartservice", Port: 7070, Proto: GRPC, Replicas: 1, GRPCName: "hipstershop.CartService"},
	{Name: "productcatalogservice", Port: 3550, Proto: GRPC, Replicas: 2, GRPCName: "hipstershop.ProductCatalogService"},
	{Name: "currencyservice", Port: 7000, Proto: GRPC, Replicas: 2, GRPCName: "hipstershop.CurrencyService"},
	{Name: "paymentservice", Port: 50051, Proto: GRPC, Replicas: 1, GRPCName: "hipstershop.PaymentService"},
	{Name: "shippingservice", Port: 50051, Proto: GRPC, Replicas: 1, GRPCName: "hipstershop.ShippingService"},
	{Name: "emailservice", Port: 8080, Proto: GRPC, Replicas: 1, GRPCName: "hipstershop.EmailService"},
	{Name: "checkoutservice", Port: 5050, Proto: GRPC, Replicas: 1, GRPCName: "hipstershop.CheckoutService"},
	{Name: "recommendationservice", Port: 8080, Proto: GRPC, Replicas: 1, GRPCName: "hipstershop.RecommendationService"},
	{Name: "adservice", Port: 9555, Proto: GRPC, Replicas: 1, GRPCName: "hipstershop.AdService"},
	{Name: "redis-cart", Port: 6379, Proto: TCP, Replicas: 1},
	{Name: "loadgenerator", Port: 0, Proto: HTTP, Replicas: 1},
	{Name: "kube-dns", Namespace: "kube-system", Port: 53, Proto: DNS, Replicas: 2},
}

// NewTopology lays out the services on nodes, deterministically for a seed.
func NewTopology(nodes int, rng *rand.Rand) *Topology {
	if nodes < 1 {
		nodes = 1
	}
	t := &Topology{Services: map[string]*Service{}}
	pool := fmt.Sprintf("gke-%s-default-pool-%08x", ClusterName, rng.Uint32())
	for i := 0; i < nodes; i++ {
		n := &Node{Name: fmt.Sprintf("%s-%s", pool, randName(rng, 4)), Index: i}
		n.Labels = []string{
			"kubernetes.io/hostname=" + n.Name,
			"kubernetes.io/os=linux",
			"topology.kubernetes.io/zone=europe-west1-" + string(rune('b'+i%3)),
		}
		t.Nodes = append(t.Nodes, n)
	}
	podIndex := 0
	hostByNode := make([]int, nodes)
	for i, spec := range serviceSpecs {
		s := spec
		if s.Namespace == "" {
			s.Namespace = "default"
		}
		s.Identity = 10000 + uint32(i)*137 + uint32(rng.IntN(100))
		s.ClusterIP = fmt.Sprintf("10.12.%d.%d", 1+i/200, 10+i)
		labels := []string{
			"k8s:app=" + s.Name,
			"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=" + s.Namespace,
			"k8s:io.cilium.k8s.policy.cluster=" + ClusterName,
			"k8s:io.cilium.k8s.policy.serviceaccount=" + s.Name,
			"k8s:io.kubernetes.pod.namespace=" + s.Namespace,
		}
		if s.Name == "kube-dns" {
			labels[0] = "k8s:k8s-app=kube-dns"
		}
		sp := &s
		rsHash := randName(rng, 10)
		for r := 0; r < s.Replicas; r++ {
			node := t.Nodes[podIndex%nodes]
			podIndex++
			hostByNode[node.Index]++
			ip := netip.AddrFrom4([4]byte{10, 8, byte(node.Index), byte(10 + hostByNode[node.Index])})
			p := &Pod{
				Name: fmt.Sprintf("%s-%s-%s", s.Name, rsHash, randName(rng, 5)),
				IP:   ip.String(), Node: node, Service: sp, ID: 100 + uint32(rng.IntN(3900)),
			}
			p.ep = &flowpb.Endpoint{ID: p.ID, Identity: s.Identity, ClusterName: ClusterName, Namespace: s.Namespace,
				Labels: labels, PodName: p.Name}
			sp.Pods = append(sp.Pods, p)
		}
		t.Services[s.Name] = sp
		t.Order = append(t.Order, sp)
	}
	return t
}

const nameAlphabet = "bcdfghjklmnpqrstvwxz2456789"

func randName(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = nameAlphabet[rng.IntN(len(nameAlphabet))]
	}
	return string(b)
}

// Namespaces lists the namespaces that have pods.
func (t *Topology) Namespaces() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range t.Order {
		if !seen[s.Namespace] {
			seen[s.Namespace] = true
			out = append(out, s.Namespace)
		}
	}
	return out
}
