//go:build !recorder

package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/replay"
)

type replayFlags struct {
	cache         cacheFlags
	listen        string
	speed         string
	shiftToNow    bool
	certFile      string
	keyFile       string
	clientCAFiles []string
	disableTLS    bool
	memoryLimit   string
}

func newReplayCmd() *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "replay DIR...",
		Short: "Serve recordings over the Hubble Observer API, for hubble observe and other clients",
		Long: `Serve recordings as a Hubble server: the Observer gRPC API of hubble-relay, with
the recorded nodes as its nodes. hubble observe, hubble status, hubble list nodes and
other Observer API clients work on the past as on a live cluster: all filters (with
Cilium's own filter code), --since/--until, --first/--last N (per node, as through
hubble-relay), --all, field masks, and --follow.

Flows come in time order, merged across files and nodes; recorded lost events come
at their place in time. A request that follows plays the recording from its --since
(or the start) at the recorded pace times --speed, and ends with the recording.
With --shift-to-now, followed flows carry the time they are sent, for tools that
only show recent flows.

Without TLS flags the server is plaintext and must listen on a loopback address;
give --tls-relay-server-cert-file and --tls-relay-server-key-file (and for mutual
TLS --tls-relay-client-ca-files) as for hubble-relay, or --disable-server-tls to
serve plaintext on another address.`,
		Example: `  # serve a recording on hubble's default port, then use hubble as usual
  flowtape replay incident-42
  hubble observe --server localhost:4245 --since 2026-11-25T13:00:00Z --until 2026-11-25T13:05:00Z --namespace default
  hubble observe --server localhost:4245 --all --verdict DROPPED -o jsonpb

  # play the recording 10x faster, as if it were happening now
  flowtape replay incident-42 --speed 10 --shift-to-now
  hubble observe --server localhost:4245 -f

  # TLS with client certificates, like hubble-relay
  flowtape replay incident-42 --listen :4245 --tls-relay-server-cert-file tls.crt \
    --tls-relay-server-key-file tls.key --tls-relay-client-ca-files ca.crt`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error { return runReplay(cmd, f, args) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", defaults.ListenAddress, "address to serve the Observer API on")
	fl.StringVar(&f.listen, "listen-address", defaults.ListenAddress, "same as --listen (hubble-relay's name)")
	_ = fl.MarkHidden("listen-address")
	fl.StringVar(&f.speed, "speed", defaults.Speed, "for requests that follow: recorded seconds per second, or max (as fast as the client reads)")
	fl.BoolVar(&f.shiftToNow, "shift-to-now", false, "for requests that follow: stamp each flow with the time it is sent")
	fl.StringVar(&f.certFile, "tls-relay-server-cert-file", "", "serve TLS with this certificate (PEM)")
	fl.StringVar(&f.keyFile, "tls-relay-server-key-file", "", "key of --tls-relay-server-cert-file (PEM)")
	fl.StringSliceVar(&f.clientCAFiles, "tls-relay-client-ca-files", nil, "require client certificates signed by these CAs (mutual TLS)")
	fl.BoolVar(&f.disableTLS, "disable-server-tls", false, "allow plaintext on an address that is not loopback")
	f.cache.add(fl)
	fl.StringVar(&f.memoryLimit, "memory-limit", defaults.ReplayMemoryLimit, "soft limit of the server's memory (Go's GOMEMLIMIT, which takes precedence when set); the collector waits for it (GOGC 300 unless set); a stream holds about 50MB live")
	return cmd
}

func runReplay(cmd *cobra.Command, f replayFlags, args []string) error {
	speed, err := parseSpeed(f.speed)
	if err != nil {
		return err
	}
	limit, err := parseMemoryLimit(f.memoryLimit)
	if err != nil {
		return usagef("--memory-limit: %v", err)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// A stream holds batches and decoded rows (tape/decode.go) of
		// each file it merges at a time: on the 1M-flow benchmark's
		// recording, a live heap of about 45MB in all. The limit bounds
		// the heap of one stream or several.
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(limit))
	}
	if os.Getenv("GOGC") == "" && debug.SetMemoryLimit(-1) < math.MaxInt64 {
		// Under a limit, a collection each time the heap doubles is CPU
		// spent for no bound (defaults.ReplayGCPercent). Without one
		// (GOMEMLIMIT=off), Go's default is the only bound.
		defer debug.SetGCPercent(debug.SetGCPercent(defaults.ReplayGCPercent))
	}
	var opts []grpc.ServerOption
	withTLS := f.certFile != "" || f.keyFile != ""
	switch {
	case withTLS && (f.certFile == "" || f.keyFile == ""):
		return usagef("TLS needs both --tls-relay-server-cert-file and --tls-relay-server-key-file")
	case withTLS && f.disableTLS:
		return usagef("--disable-server-tls contradicts --tls-relay-server-cert-file")
	case !withTLS && len(f.clientCAFiles) > 0:
		return usagef("--tls-relay-client-ca-files needs --tls-relay-server-cert-file and --tls-relay-server-key-file")
	case withTLS:
		cfg, err := replay.ServerTLS(f.certFile, f.keyFile, f.clientCAFiles)
		if err != nil {
			return err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	case !f.disableTLS && !isLoopback(f.listen):
		return usagef("--listen %s is not a loopback address: serve TLS (--tls-relay-server-cert-file, --tls-relay-server-key-file) or allow plaintext with --disable-server-tls", f.listen)
	}
	ctx := cmd.Context()
	paths, done, err := f.cache.localPaths(cmd, args, time.Time{}, time.Time{})
	if err != nil {
		return err
	}
	defer done()
	srv, err := replay.New(ctx, paths, replay.Options{Speed: speed, ShiftToNow: f.shiftToNow})
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", f.listen, err)
	}
	printServing(cmd.OutOrStdout(), srv.Catalog(), lis.Addr().String(), f)
	return srv.Serve(ctx, lis, opts...)
}

// isLoopback says whether a listen address only accepts local connections.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// printServing says what is served where, and how to look at it with hubble.
func printServing(w io.Writer, c *replay.Catalog, addr string, f replayFlags) {
	fmt.Fprintf(w, "flowtape replay: serving %s flows from %d nodes on %s\n", thousands(c.Flows), len(c.Nodes), addr)
	if c.Flows > 0 {
		fmt.Fprintf(w, "  window: %s to %s (%s)\n", c.First.Format(time.RFC3339Nano), c.Last.Format(time.RFC3339Nano),
			c.Last.Sub(c.First).Round(time.Millisecond))
	}
	for _, n := range c.Nodes {
		fmt.Fprintf(w, "  node %s: %s flows\n", n.Name, thousands(n.Flows))
	}
	if c.Lost > 0 {
		fmt.Fprintf(w, "  lost while recording: %s events (they are served as lost events where they happened)\n", thousands(c.Lost))
	}
	conn := "--server " + addr
	if f.certFile != "" {
		conn += " --tls --tls-ca-cert-files CA.crt"
		if name := certName(f.certFile); name != "" {
			conn += " --tls-server-name " + name
		}
		if len(f.clientCAFiles) > 0 {
			conn += " --tls-client-cert-file CLIENT.crt --tls-client-key-file CLIENT.key"
		}
	}
	fmt.Fprintf(w, "  try: hubble observe %s --since %s --first 20\n", conn, c.First.Format(time.RFC3339))
	fmt.Fprintf(w, "       hubble observe %s --all -o jsonpb > flows.json\n", conn)
	fmt.Fprintf(w, "       hubble list nodes %s\n", conn)
	if f.certFile != "" {
		fmt.Fprintf(w, "  (CA.crt: the CA that signed %s)\n", f.certFile)
	}
}

// certName is the first DNS name of a PEM certificate, for --tls-server-name.
func certName(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return ""
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || len(c.DNSNames) == 0 {
		return ""
	}
	return c.DNSNames[0]
}
