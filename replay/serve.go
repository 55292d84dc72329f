package replay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/grpc"

	"github.com/flowtape/flowtape/internal/observer"
)

// Serve serves the Observer API and the gRPC health checks `hubble status`
// makes on lis until ctx ends.
func (s *Server) Serve(ctx context.Context, lis net.Listener, opts ...grpc.ServerOption) error {
	srv := observer.NewServer(opts...)
	observerpb.RegisterObserverServer(srv, s)
	return observer.Serve(ctx, srv, lis)
}

// ServerTLS is the TLS configuration of a server with the certificate and
// key in certFile and keyFile, requiring client certificates signed by one
// of clientCAFiles when there are any (mutual TLS, as hubble-relay's
// --tls-relay-client-ca-files).
func ServerTLS(certFile, keyFile string, clientCAFiles []string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s, key %s: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	if len(clientCAFiles) > 0 {
		pool := x509.NewCertPool()
		for _, f := range clientCAFiles {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("client CA: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("client CA %s: no PEM certificate in it", f)
			}
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
