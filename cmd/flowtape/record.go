package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flowtape/flowtape/internal/buildinfo"
	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/internal/hubblecli"
	"github.com/flowtape/flowtape/record"
	"github.com/flowtape/flowtape/tape"
)

type recordFlags struct {
	output          string
	since, until    string
	duration        time.Duration
	maxFlows        uint64
	rotateInterval  time.Duration
	rotateSize      string
	flushInterval   time.Duration
	live            bool
	derived         bool
	retention       time.Duration
	maxDisk         string
	metricsListen   string
	perNode         bool
	nodes           []string
	resume          bool
	printRawFilters bool
	redactQuery     bool
	redactUserInfo  bool
	redactHeaders   []string
	spoolFlags
}

func newRecordCmd() *cobra.Command {
	var f recordFlags
	filters := hubblecli.NewFilterFlags()
	conn := hubblecli.ConnFlags()
	cmd := &cobra.Command{
		Use:   "record -o DIR|URL [filters]",
		Short: "Record a live Hubble flow stream to Parquet",
		Long: `Record flows from hubble-relay (or a single Cilium agent) into a recording
directory of Parquet files, with the connection, TLS and filter flags of
hubble observe. It follows the stream live until interrupted (Ctrl-C), --until,
--duration or --max-flows; --since first backfills what the ring buffers still hold.

The recording is crash-safe: a file appears under its .parquet name only once
complete, and a killed recorder loses at most --flush-interval of flows; run record
again into the same directory, or flowtape recover DIR, to finish what it left;
run again without --since, it goes on from where it stopped: what the ring buffers
still hold is recorded, what they lost meanwhile is counted.
While it records, what it received is readable at every flush: analyze, query,
report and export see it within --flush-interval (--live=false turns that off
and saves the second Parquet encoding it costs).
A broken stream is resumed where it stopped, without duplicates; lost events and
reconnects are recorded, never a silent gap.

As an always-on flight recorder, --retention and --max-disk bound what it keeps:
the oldest finished files go first, and what went (files, flows, their time range)
is summed up in the manifest and shown by flowtape analyze coverage.

-o may be a bucket URL: finished files wait in a local spool (--spool) until the
bucket confirms them (size and checksum), then leave it; while the store is down
they wait, and go up when it answers. --max-disk bounds the spool (10GiB if not
given): when it is full the oldest files waiting are dropped, counted as lost in
the manifest and analyze coverage. A bucket's lifecycle rules do what --retention
does for a directory.

` + bucketHelp,
		Example: `  # from a cluster: cilium hubble port-forward & (or kubectl -n kube-system port-forward svc/hubble-relay 4245:80)
  flowtape record -o incident-42

  # only the shop's namespace, with what the ring buffers still hold from the last 10 minutes
  flowtape record -o incident-42 -n default --since 10m

  # always on: a week of flows, never more than 20 GiB
  flowtape record -o /data/flows --retention 7d --max-disk 20GiB

  # past the relay's limit: every node from its own agent, found through the Peer service
  flowtape record -o /data/flows --per-node --server tls://hubble-peer.kube-system.svc:443 \
    --tls-ca-cert-files ca.crt --tls-client-cert-file tls.crt --tls-client-key-file tls.key \
    --tls-server-name hubble-peer.default.hubble-grpc.cilium.io   # hubble-peer.<cluster name>...., as hubble-relay checks it

  # watched like a service: Prometheus metrics, /healthz and /readyz on :9965
  flowtape record -o /data/flows --retention 7d --metrics-listen :9965

  # into object storage, through outages of the store (a GKE node's Workload Identity)
  flowtape record -o gs://acme-flows/prod-eu --max-disk 5GiB --metrics-listen :9965
  flowtape record -o 's3://flows/lab?endpoint=http://minio:9000&use_path_style=true&disable_https=true'

  # 5 minutes of drops and 5xx
  flowtape record -o drops --verdict DROPPED --duration 5m
  flowtape record -o errors --http-status 5+ --duration 5m

  # GKE Dataplane V2 (see the README for the certificates)
  flowtape record -o incident-42 --server tls://127.0.0.1:4245 \
    --tls-ca-cert-files ca.crt --tls-client-cert-file tls.crt --tls-client-key-file tls.key \
    --tls-server-name relay.gke-managed-dpv2-observability.svc.cluster.local`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runRecord(cmd, f, filters) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.output, "output", "o", "", "recording directory (created if needed; an existing one is added to), or bucket URL (s3://, gs://, azblob://, file://)")
	fl.StringVar(&f.since, "since", "", "first record what the ring buffers hold since this time (RFC 3339 or relative, e.g. 5m)")
	fl.StringVar(&f.until, "until", "", "stop at this time (RFC 3339 or relative)")
	fl.DurationVar(&f.duration, "duration", 0, "stop after recording this long")
	fl.Uint64Var(&f.maxFlows, "max-flows", 0, "stop after this many flows")
	fl.DurationVar(&f.rotateInterval, "rotate-interval", defaults.RotateInterval, "start a new file after this long")
	fl.StringVar(&f.rotateSize, "rotate-size", humanSize(defaults.RotateBytes), "start a new file once one reaches this size")
	fl.DurationVar(&f.flushInterval, "flush-interval", defaults.FlushInterval, fmt.Sprintf("sync received flows to disk this often: the most a killed recorder loses (at most %s)", defaults.MaxFlushInterval))
	fl.BoolVar(&f.live, "live", true, "publish what was received at every flush, so that it can be analysed while recording")
	fl.Var(daysDuration{&f.retention}, "retention", "remove files whose flows are older than this (e.g. 7d, 36h; by the hour partition); 0 keeps everything")
	fl.StringVar(&f.maxDisk, "max-disk", "", "keep the recording directory under this size (e.g. 20GiB), removing the oldest files; what goes is counted in the manifest and analyze coverage")
	fl.BoolVar(&f.resume, "resume", true, "without --since, go on from where this directory's last recording of the same server and filters stopped (a restarted pod), as after a reconnect")
	fl.BoolVar(&f.perNode, "per-node", false, "--server is a Peer service (hubble-peer, or an agent's own): record every node it lists from its own agent, in parallel, as hubble-relay finds them")
	fl.StringSliceVar(&f.nodes, "node", nil, "with --per-node, record only these nodes (e.g. a DaemonSet's own: --node $(NODE_NAME))")
	fl.StringVar(&f.metricsListen, "metrics-listen", "", "serve Prometheus metrics on /metrics, and /healthz and /readyz, at this address (e.g. :9965)")
	fl.BoolVar(&f.derived, "derived", true, "write the derived tables the analyses read with the flows (else run flowtape reindex before analysing)")
	fl.BoolVar(&f.printRawFilters, "print-raw-filters", false, "print the filters as hubble observe --print-raw-filters does, and exit")
	fl.BoolVar(&f.redactQuery, "redact-http-query", false, "drop query strings from HTTP URLs")
	fl.BoolVar(&f.redactUserInfo, "redact-http-userinfo", false, "drop user:password@ from HTTP URLs")
	fl.StringSliceVar(&f.redactHeaders, "redact-http-headers-allow", nil, "keep the values of only these HTTP headers (others read HUBBLE_REDACTED)")
	f.spoolFlags.add(fl, true)
	fl.AddFlagSet(filters.FlagSet())
	fl.AddFlagSet(conn)
	return cmd
}

func runRecord(cmd *cobra.Command, f recordFlags, filters *hubblecli.FilterFlags) error {
	raw, err := filters.RawFilters()
	if err != nil {
		return usageError{err}
	}
	if f.printRawFilters {
		_, err := fmt.Fprint(cmd.OutOrStdout(), raw)
		return err
	}
	allow, deny, err := hubblecli.ParseRawFilters(raw)
	if err != nil {
		return usageError{err}
	}
	if f.output == "" {
		return usagef("missing -o/--output: the recording directory to write")
	}
	if f.flushInterval <= 0 || f.flushInterval > defaults.MaxFlushInterval {
		return usagef("invalid --flush-interval %s: use a duration up to %s", f.flushInterval, defaults.MaxFlushInterval)
	}
	rotateBytes, err := parseSize(f.rotateSize)
	if err != nil {
		return usagef("--rotate-size: %v", err)
	}
	var maxDisk int64
	if f.maxDisk != "" {
		if maxDisk, err = parseSize(f.maxDisk); err != nil {
			return usagef("--max-disk: %v", err)
		}
	}
	if f.retention < 0 {
		return usagef("invalid --retention %s: use a positive duration such as 7d, or 0 to keep everything", f.retention)
	}
	since, until, err := parseWindow(f.since, f.until)
	if err != nil {
		return err
	}
	toBucket := tape.IsBucketURL(f.output)
	if toBucket && f.retention > 0 {
		return usagef("--retention %s with a bucket URL: give the bucket a lifecycle rule that deletes objects after that age instead (--max-disk bounds the local spool)", f.retention)
	}
	if toBucket && maxDisk == 0 {
		maxDisk = defaults.SpoolMaxBytes
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// A recorder may run for days next to a cluster's tools: keep the
		// heap near what it uses instead of letting it double.
		debug.SetMemoryLimit(defaults.RecorderMemoryLimit)
	}
	dialer, err := hubblecli.NewDialer(cmd.Flags())
	if err != nil {
		return usageError{err}
	}
	ctx := cmd.Context()
	if f.duration > 0 {
		var cancel func()
		ctx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	var metrics *record.Metrics
	if f.metricsListen != "" {
		lis, err := net.Listen("tcp", f.metricsListen)
		if err != nil {
			return usagef("--metrics-listen %s: %v", f.metricsListen, err)
		}
		metrics = record.NewMetrics()
		mctx, stop := context.WithCancel(context.Background())
		defer stop()
		go func() {
			if err := metrics.Serve(mctx, lis, slog.Default()); err != nil {
				slog.Error("metrics server stopped", "error", err)
			}
		}()
	}
	stderr := cmd.ErrOrStderr()
	dir := f.output
	var up *uploadRun
	if toBucket {
		dir = f.spoolFlags.dir(f.output)
		if up, err = startUpload(ctx, f.output, dir, metrics, slog.Default()); err != nil {
			return fmt.Errorf("-o: %w", err)
		}
		defer up.close(stderr, f.drainTimeout) //nolint:errcheck // closed below; this is for early returns
	}
	status := newStatusPrinter(stderr)
	opts := record.Options{
		Dialer: dialer, Allow: allow, Deny: deny, RawFilters: raw, Since: since, Until: until, MaxFlows: f.maxFlows,
		Sink:          tape.SinkOptions{Dir: dir, Writer: buildinfo.Writer(), RotateInterval: f.rotateInterval, RotateBytes: rotateBytes, NotLive: !f.live, NoDerived: !f.derived},
		Retention:     tape.Retention{MaxAge: f.retention, MaxBytes: maxDisk, Spool: toBucket},
		NoResume:      !f.resume,
		FlushInterval: f.flushInterval,
		Redact:        record.Redaction{URLQuery: f.redactQuery, UserInfo: f.redactUserInfo, AllowHeaders: f.redactHeaders},
		Progress:      status.progress,
		Metrics:       metrics,
		Log:           slog.Default(),
	}
	if len(f.nodes) > 0 && !f.perNode {
		return usagef("--node %s needs --per-node: without it the recorder reads what --server sends", strings.Join(f.nodes, ","))
	}
	if f.perNode {
		opts.Progress = nil
		err := recordPerNode(ctx, cmd, opts, dialer, tape.DisplayName(f.output), dir, f.nodes)
		if up != nil {
			err = errors.Join(err, up.close(stderr, f.drainTimeout))
		}
		return err
	}
	res, err := record.Run(ctx, opts)
	status.done()
	var drainErr error
	if up != nil {
		drainErr = up.close(stderr, f.drainTimeout)
	}
	t := res.Session.Totals
	if res.Session.RecordingID != "" {
		var lost uint64
		for _, n := range t.LostEvents {
			lost += n
		}
		fmt.Fprintf(cmd.OutOrStdout(), "recorded %d flows to %s (%d files, %s); lost events: %d; reconnects: %d; duplicates dropped: %d\n",
			t.Flows, tape.DisplayName(f.output), t.Files, humanBytes(t.Bytes), lost, t.Reconnects, t.Duplicates)
	}
	if errors.Is(err, record.ErrNoServer) {
		return fmt.Errorf("%w (is hubble-relay reachable? try: cilium hubble port-forward)", err)
	}
	if err != nil && res.Session.RecordingID == "" {
		return fmt.Errorf("-o %s: %w", tape.DisplayName(f.output), err) // nothing was recorded yet
	}
	if err != nil {
		return fmt.Errorf("recording %s stopped: %w; finished files are intact, run `flowtape recover %s` once the problem is fixed", tape.DisplayName(f.output), err, dir)
	}
	return drainErr
}

// peerDialer dials the agents a Peer service announces (record.PeerDialer).
type peerDialer struct{ *hubblecli.Dialer }

func (p peerDialer) ForPeer(address, tlsServerName string) record.Dialer {
	return p.Dialer.ForPeer(address, tlsServerName)
}

// recordPerNode runs record --per-node and sums up each node's recording.
func recordPerNode(ctx context.Context, cmd *cobra.Command, o record.Options, dialer *hubblecli.Dialer, name, dir string, nodes []string) error {
	res, err := record.RunPerNode(ctx, o, peerDialer{dialer}, nodes...)
	var failed []string
	for _, r := range res {
		t := r.Session.Totals
		var lost uint64
		for _, n := range t.LostEvents {
			lost += n
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: recorded %d flows (%d files, %s); lost events: %d; reconnects: %d\n",
			r.Node, t.Flows, t.Files, humanBytes(t.Bytes), lost, t.Reconnects)
		if r.Err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", r.Node, r.Err))
		}
	}
	if errors.Is(err, record.ErrNoServer) {
		return fmt.Errorf("%w (is the peer service reachable? e.g. kubectl -n kube-system port-forward svc/hubble-peer 4244:443)", err)
	}
	if err != nil {
		return fmt.Errorf("-o %s: %w", name, err)
	}
	if len(failed) > 0 {
		return fmt.Errorf("recording %s stopped for %s; finished files are intact, run `flowtape recover %s` once the problem is fixed", name, strings.Join(failed, "; "), dir)
	}
	return nil
}

// statusPrinter shows a recording's progress.
type statusPrinter struct {
	line *statusLine
	prev record.Progress
}

func newStatusPrinter(w io.Writer) *statusPrinter {
	return &statusPrinter{line: newStatusLine(w, "recording")}
}

func (s *statusPrinter) progress(p record.Progress) {
	rate := 0.0
	if dt := (p.Elapsed - s.prev.Elapsed).Seconds(); dt > 0 {
		rate = float64(p.Flows-s.prev.Flows) / dt
	}
	line := fmt.Sprintf("%s  flows %d  %.0f/s  lost %d  files %d  %s on disk  reconnects %d",
		p.Elapsed.Round(time.Second), p.Flows, rate, p.Lost, p.Files, humanBytes(p.Bytes), p.Reconnects)
	if !p.Connected {
		line += "  (reconnecting)"
	}
	s.line.show(line, "elapsed", p.Elapsed.Round(time.Second), "flows", p.Flows, "flows_per_s", int(rate),
		"lost", p.Lost, "files", p.Files, "bytes", p.Bytes, "reconnects", p.Reconnects)
	s.prev = p
}

func (s *statusPrinter) done() { s.line.done() }
