package observer

import (
	"context"
	"errors"
	"fmt"
	"net"

	v1 "github.com/cilium/cilium/pkg/hubble/api/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// NewServer returns a gRPC server that answers the health checks `hubble
// status` makes (the server's and the Observer service's) as serving; the
// caller registers its services on it.
func NewServer(opts ...grpc.ServerOption) *grpc.Server {
	srv := grpc.NewServer(opts...)
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	h.SetServingStatus(v1.ObserverServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, h)
	return srv
}

// Serve serves srv on lis until ctx ends. Streams that follow end only
// with their clients, so the server stops without waiting for them.
func Serve(ctx context.Context, srv *grpc.Server, lis net.Listener) error {
	go func() {
		<-ctx.Done()
		srv.Stop()
	}()
	if err := srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) && ctx.Err() == nil {
		return fmt.Errorf("serve %s: %w", lis.Addr(), err)
	}
	return nil
}
