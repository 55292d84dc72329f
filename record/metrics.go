package record

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flowtape/flowtape/internal/buildinfo"
	"github.com/flowtape/flowtape/tape"
)

// Metrics are a recorder's Prometheus metrics (record --metrics-listen),
// shared by the streams of one process (one per node in per-node capture):
// what was received and written, lost and removed, by node where Hubble
// says which. Names follow Prometheus' conventions: counters end in
// _total, units are in the names (_bytes, _seconds). Each stream sets its
// state (connected, writing), which /readyz reports.
type Metrics struct {
	reg *prometheus.Registry

	flowsReceived *prometheus.CounterVec // node
	flowsWritten  *prometheus.CounterVec // node
	duplicates    prometheus.Counter
	lostEvents    *prometheus.CounterVec // source, node
	reconnects    *prometheus.CounterVec // server
	connected     *prometheus.GaugeVec   // server
	lastFlow      prometheus.Gauge
	filesWritten  prometheus.Counter
	bytesWritten  prometheus.Counter
	derivedRows   *prometheus.CounterVec // table
	diskBytes     prometheus.Gauge
	diskFiles     prometheus.Gauge
	expiredFiles  prometheus.Counter
	expiredBytes  prometheus.Counter
	expiredFlows  prometheus.Counter
	writeErrors   prometheus.Counter
	// a bucket's spool (record -o URL)
	uploadWaiting      prometheus.Gauge
	uploadWaitingBytes prometheus.Gauge
	uploadErrors       prometheus.Counter
	uploadedFiles      prometheus.Counter
	uploadedBytes      prometheus.Counter
	spoolDroppedFiles  prometheus.Counter
	spoolDroppedFlows  prometheus.Counter
	upload             tape.UploadState // the last, for counters' deltas

	mu      sync.Mutex
	streams map[string]streamState // by server
	newest  time.Time
}

type streamState struct {
	connected bool
	err       string // the last write error, "" once writing works
}

// NewMetrics returns the metrics, registered with the Go runtime's and the
// process's collectors on a registry of their own.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), streams: map[string]streamState{}}
	f := factory{m.reg}
	m.flowsReceived = f.counterVec("flowtape_flows_received_total", "Flows received from Hubble, duplicates of a resumed stream included.", "node")
	m.flowsWritten = f.counterVec("flowtape_flows_written_total", "Flows written to the recording.", "node")
	m.duplicates = f.counter("flowtape_flows_duplicate_total", "Flows received again after a reconnect and dropped.")
	m.lostEvents = f.counterVec("flowtape_lost_events_total", "Events Hubble reported lost, and flows the recorder estimated it missed while reconnecting, by source and node.", "source", "node")
	m.reconnects = f.counterVec("flowtape_reconnects_total", "Times a stream from a Hubble server broke and was resumed.", "server")
	m.connected = f.gaugeVec("flowtape_stream_connected", "Whether the stream from a Hubble server is connected (1) or reconnecting (0).", "server")
	m.lastFlow = f.gauge("flowtape_last_flow_timestamp_seconds", "Time of the newest flow written (Unix seconds); time() minus it is how far behind the recording is.")
	m.filesWritten = f.counter("flowtape_files_written_total", "Recording files published (flows and events; derived files go with their flow file).")
	m.bytesWritten = f.counter("flowtape_written_bytes_total", "Bytes of the recording files published.")
	m.derivedRows = f.counterVec("flowtape_derived_rows_total", "Rows of the derived tables written with the flow files, by table.", "table")
	m.diskBytes = f.gauge("flowtape_disk_usage_bytes", "Bytes the recording directory takes on disk, files being written included.")
	m.diskFiles = f.gauge("flowtape_disk_files", "Finished recording files in the directory (flows and events).")
	m.expiredFiles = f.counter("flowtape_retention_removed_files_total", "Files retention removed (--retention, --max-disk).")
	m.expiredBytes = f.counter("flowtape_retention_removed_bytes_total", "Bytes retention removed.")
	m.expiredFlows = f.counter("flowtape_retention_removed_flows_total", "Flows in the files retention removed.")
	m.writeErrors = f.counter("flowtape_write_errors_total", "Errors writing the recording (each stops the recorder).")
	m.uploadWaiting = f.gauge("flowtape_upload_waiting_files", "Finished files in the spool waiting to go up to the bucket (record -o URL).")
	m.uploadWaitingBytes = f.gauge("flowtape_upload_waiting_bytes", "Bytes of the files waiting in the spool, their derived files included.")
	m.uploadErrors = f.counter("flowtape_upload_errors_total", "Failed uploads to the bucket (each file each time; the file waits and is tried again).")
	m.uploadedFiles = f.counter("flowtape_uploaded_files_total", "Files the bucket confirmed (size and checksum) and the spool let go.")
	m.uploadedBytes = f.counter("flowtape_uploaded_bytes_total", "Bytes of the files the bucket confirmed.")
	m.spoolDroppedFiles = f.counter("flowtape_spool_dropped_files_total", "Files a full spool dropped before they reached the bucket (lost; --max-disk).")
	m.spoolDroppedFlows = f.counter("flowtape_spool_dropped_flows_total", "Flows in the files a full spool dropped (lost).")
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flowtape_upload_oldest_waiting_age_seconds",
		Help: "Age of the oldest file waiting in the spool (0 when none waits)."}, m.oldestWaiting))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flowtape_last_flow_age_seconds",
		Help: "Seconds since the time of the newest flow written (NaN before the first)."}, m.lastFlowAge))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flowtape_build_info",
		Help: "flowtape's version and commit.", ConstLabels: prometheus.Labels{"version": buildinfo.Version, "commit": buildinfo.Commit}},
		func() float64 { return 1 }))
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (m *Metrics) lastFlowAge() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.newest.IsZero() {
		return math.NaN()
	}
	return time.Since(m.newest).Seconds()
}

// setStream records a stream's state for /readyz and the connected gauge.
func (m *Metrics) setStream(server string, connected bool, writeErr error) {
	if m == nil {
		return
	}
	v := 0.0
	if connected {
		v = 1
	}
	m.connected.WithLabelValues(server).Set(v)
	m.mu.Lock()
	defer m.mu.Unlock()
	st := streamState{connected: connected}
	if writeErr != nil {
		st.err = writeErr.Error()
	}
	m.streams[server] = st
}

// endStream forgets a stream that ended cleanly (a node removed, the
// recording stopped): /readyz speaks of the streams that are meant to run.
func (m *Metrics) endStream(server string) {
	if m == nil {
		return
	}
	m.connected.DeleteLabelValues(server)
	m.mu.Lock()
	delete(m.streams, server)
	m.mu.Unlock()
}

// flowWritten counts a flow written at time at.
func (m *Metrics) flowWritten(node string, at time.Time) {
	if m == nil {
		return
	}
	m.flowsWritten.WithLabelValues(node).Inc()
	m.mu.Lock()
	if at.After(m.newest) {
		m.newest = at
		m.lastFlow.Set(float64(at.UnixNano()) / 1e9)
	}
	m.mu.Unlock()
}

// lost counts events lost at a node.
func (m *Metrics) lost(source, node string, n uint64) {
	if m != nil {
		m.lostEvents.WithLabelValues(source, node).Add(float64(n))
	}
}

// received counts a flow received, and whether it was a duplicate.
func (m *Metrics) received(node string, duplicate bool) {
	if m == nil {
		return
	}
	m.flowsReceived.WithLabelValues(node).Inc()
	if duplicate {
		m.duplicates.Inc()
	}
}

func (m *Metrics) reconnected(server string) {
	if m != nil {
		m.reconnects.WithLabelValues(server).Inc()
	}
}

// published counts what a writer published since its last call (prev: the
// stats then).
func (m *Metrics) published(prev, now tape.Stats) {
	if m == nil {
		return
	}
	m.filesWritten.Add(float64(now.Files - prev.Files))
	m.bytesWritten.Add(float64(now.Bytes - prev.Bytes))
	for table, n := range now.DerivedRows {
		if d := n - prev.DerivedRows[table]; d > 0 {
			m.derivedRows.WithLabelValues(table).Add(float64(d))
		}
	}
}

// disk sets what the recording directory takes, and counts what retention
// removed.
func (m *Metrics) disk(u tape.Usage, removed tape.Expired, spool bool) {
	if m == nil {
		return
	}
	m.diskBytes.Set(float64(u.Bytes))
	m.diskFiles.Set(float64(u.Files))
	if spool {
		m.spoolDroppedFiles.Add(float64(removed.Files))
		m.spoolDroppedFlows.Add(float64(removed.Flows))
		return
	}
	m.expiredFiles.Add(float64(removed.Files))
	m.expiredBytes.Add(float64(removed.Bytes))
	m.expiredFlows.Add(float64(removed.Flows))
}

// Upload sets the metrics of a bucket's spool from an uploader's state
// (tape.UploadOptions.State).
func (m *Metrics) Upload(st tape.UploadState) {
	if m == nil {
		return
	}
	m.uploadWaiting.Set(float64(st.WaitingFiles))
	m.uploadWaitingBytes.Set(float64(st.WaitingBytes))
	m.mu.Lock()
	prev := m.upload
	m.upload = st
	m.mu.Unlock()
	m.uploadErrors.Add(float64(st.Errors - prev.Errors))
	m.uploadedFiles.Add(float64(st.UploadedFiles - prev.UploadedFiles))
	m.uploadedBytes.Add(float64(st.UploadedBytes - prev.UploadedBytes))
}

func (m *Metrics) oldestWaiting() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.upload.Oldest.IsZero() {
		return 0
	}
	return time.Since(m.upload.Oldest).Seconds()
}

func (m *Metrics) writeFailed() {
	if m != nil {
		m.writeErrors.Inc()
	}
}

// Ready reports whether every stream is connected and writing, and if not,
// why.
func (m *Metrics) Ready() (bool, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.streams) == 0 {
		return false, "no stream started yet"
	}
	var why []string
	for _, server := range sortedKeys(m.streams) {
		st := m.streams[server]
		switch {
		case st.err != "":
			why = append(why, server+": cannot write: "+st.err)
		case !st.connected:
			why = append(why, server+": not connected")
		}
	}
	return len(why) == 0, strings.Join(why, "; ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Handler serves /metrics (Prometheus' text format), /healthz (the process
// answers) and /readyz (every stream connected and writing: 503 with the
// reason otherwise).
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := m.Ready(); !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// Serve serves Handler on lis until ctx ends.
func (m *Metrics) Serve(ctx context.Context, lis net.Listener, log *slog.Logger) error {
	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx) //nolint:errcheck
	}()
	log.Info("serving metrics", "address", lis.Addr().String(), "paths", "/metrics /healthz /readyz")
	if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics on %s: %w", lis.Addr(), err)
	}
	return nil
}
