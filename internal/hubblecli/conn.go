// Package hubblecli gives flowtape the hubble CLI's own connection and
// filter flags and its dialer: the same names, help, parsing, TLS and
// semantics as `hubble observe`, taken from the hubble CLI's packages.
// Where that needs the CLI's internals (which of its gRPC options are TLS,
// which of its flags are filters), it is done in internals.go, and
// internals_test.go fails, naming the Cilium version, when they change.
package hubblecli

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cilium/cilium/hubble/cmd/common/config"
	"github.com/cilium/cilium/hubble/cmd/common/conn"
	hubblelog "github.com/cilium/cilium/hubble/pkg/logger"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/flowtape/flowtape/internal/defaults"
)

// ConnFlags are the hubble CLI's connection flags (--server, --tls,
// --tls-allow-insecure, --tls-ca-cert-files, --tls-client-cert-file,
// --tls-client-key-file, --tls-server-name, --timeout, ...), with its help.
func ConnFlags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("connection", pflag.ContinueOnError)
	config.ServerFlags.VisitAll(func(f *pflag.Flag) {
		switch f.Name {
		case config.KeyPortForward, config.KeyPortForwardPort, config.KeyKubeContext, config.KeyKubeNamespace, config.KeyKubeconfig:
			// port-forwarding is left to kubectl / cilium hubble port-forward
		case config.KeyRequestTimeout:
			// unary calls have their own timeouts here
		default:
			// Fresh flags with the same name, default and help: the hubble
			// CLI's own are package variables, shared by every user.
			switch f.Value.Type() {
			case "string":
				fs.String(f.Name, f.DefValue, f.Usage)
			case "bool":
				fs.Bool(f.Name, f.DefValue == "true", f.Usage)
			case "duration":
				d, _ := time.ParseDuration(f.DefValue)
				fs.Duration(f.Name, d, f.Usage)
			case "stringSlice":
				fs.StringSlice(f.Name, nil, f.Usage)
			default:
				fs.AddFlag(f)
			}
		}
	})
	return fs
}

// Dialer connects as the hubble CLI does; flags come from ConnFlags and,
// as for the hubble CLI, from HUBBLE_* environment variables.
type Dialer struct{ vp *viper.Viper }

// NewDialer reads the connection settings from flags and the environment.
func NewDialer(flags *pflag.FlagSet) (*Dialer, error) {
	// The hubble CLI's connection code logs through its own logger.
	hubblelog.Initialize(slog.Default().Handler())
	vp := viper.New()
	vp.SetEnvPrefix("hubble")
	vp.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	vp.AutomaticEnv()
	if err := vp.BindPFlags(flags); err != nil {
		return nil, err
	}
	return &Dialer{vp: vp}, nil
}

// Server is the address to connect to (a tls:// prefix turns TLS on).
func (d *Dialer) Server() string { return d.vp.GetString(config.KeyServer) }

// TLS reports whether the connection uses TLS.
func (d *Dialer) TLS() bool {
	// The hubble CLI's condition (grpcOptionTLS).
	return d.vp.GetBool(config.KeyTLS) || strings.HasPrefix(d.Server(), "tls://")
}

// Timeout is the dial timeout (--timeout).
func (d *Dialer) Timeout() time.Duration { return d.vp.GetDuration(config.KeyTimeout) }

// Dial creates the client connection with the hubble CLI's options (TLS,
// client certificates, basic auth, request timeout).
func (d *Dialer) Dial(context.Context) (*grpc.ClientConn, error) {
	var opts []grpc.DialOption
	for _, fn := range tlsOptionFuncs() {
		o, err := fn(d.vp)
		if err != nil {
			return nil, fmt.Errorf("--server %s: %w", d.Server(), err)
		}
		opts = append(opts, o)
	}
	if user, pass := d.vp.GetString(config.KeyBasicAuthUsername), d.vp.GetString(config.KeyBasicAuthPassword); user != "" || pass != "" {
		opts = append(opts, conn.WithBasicAuth(user, pass))
	}
	// Reconnect quickly after a relay restart: gRPC's default backoff
	// grows to two minutes.
	bo := backoff.DefaultConfig
	bo.BaseDelay, bo.MaxDelay = defaults.MinBackoff, defaults.DialMaxBackoff
	opts = append(opts, grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           bo,
		MinConnectTimeout: d.Timeout(),
	}))
	c, err := grpc.NewClient(strings.TrimPrefix(d.Server(), "tls://"), opts...)
	if err != nil {
		return nil, fmt.Errorf("--server %s: %w", d.Server(), err)
	}
	return c, nil
}

// ForPeer is a dialer of the agent a Peer service announced at address, as
// hubble-relay dials it: with TLS when the announcement carries a TLS
// server name (then verified against it), with the client certificate and
// CAs of d, and plaintext otherwise.
func (d *Dialer) ForPeer(address, tlsServerName string) *Dialer {
	vp := viper.New()
	for _, k := range d.vp.AllKeys() {
		vp.Set(k, d.vp.Get(k))
	}
	vp.Set(config.KeyServer, address)
	vp.Set(config.KeyTLS, tlsServerName != "")
	vp.Set(config.KeyTLSServerName, tlsServerName)
	return &Dialer{vp: vp}
}
