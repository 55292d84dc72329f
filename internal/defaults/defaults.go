// Package defaults holds every default of flowtape once: the flag defaults
// of the commands and the defaults of the packages behind them, which use
// these when an option is left zero. The analyses' SQL reads the analysis
// defaults from here too (analyze sets them as DuckDB variables), so a
// default changed here changes everywhere.
package defaults

import (
	"time"

	hubbledefaults "github.com/cilium/cilium/hubble/pkg/defaults"
)

// The recording directory (tape) and the recorder (record).
const (
	// RotateInterval, RotateRows and RotateBytes end a file after that
	// much wall-clock time, that many rows or that much Parquet data.
	RotateInterval = 5 * time.Minute
	RotateRows     = 4_000_000
	RotateBytes    = 256 << 20
	// RowGroupRows is the Parquet row group size of every file flowtape
	// writes: bigger groups compress only a little better, and an open
	// group's encoded pages wait in memory until it is full.
	RowGroupRows = 16 * 1024
	// CompressionLevel is the zstd level of the pages of the files a
	// recording keeps: zstd's "better" (klauspost/compress's
	// SpeedBetterCompression; levels 6 to 9 are all it). On the benchmark's
	// mesh it makes flows 1% smaller than the default level 3 (40.05
	// against 40.46 bytes per flow) for about 3% more of a writer's time;
	// its encoders keep larger tables (all zstd encoders held 14 MB in a
	// heap profile of a recorder at 20k flows/s).
	// PieceCompressionLevel is that of the pieces a live recorder
	// publishes between flushes, which last only until their file is
	// published: zstd's default.
	CompressionLevel      = 7
	PieceCompressionLevel = 3
	// DataPageBytes is where a column's Parquet data page ends, as the
	// writer estimates it. For a dictionary column arrow-go estimates a
	// page by its values' plain size, not by its indices: at its default
	// (1 MB) a flow's labels (about 45 bytes each, 8 per flow) took four
	// data pages of 6-bit indices per row group, each compressed apart. At
	// 4 MB they take one or two, and zstd finds the pods' repeating label
	// sets across the whole group: flow files 1.0% smaller on the
	// benchmark's mesh (40.50 against 40.92 bytes per flow), the labels
	// columns 22%. Memory stays bounded by the row group (RowGroupRows):
	// the page waits as indices (4 bytes a value), and few columns reach
	// 4 MB even as plain values.
	DataPageBytes = 4 << 20
	// EncodeBatchRows is how many rows a file writer holds as Arrow
	// builders before it encodes them into the open row group: a flow
	// row costs about 2 KB as builders (labels and headers as strings),
	// much less encoded (dictionary indices, plain values; about 47 bytes
	// compressed on disk), so the writer holds a quarter of a row group as
	// builders: about 40 MB less for a recorder than whole groups.
	EncodeBatchRows = 4 * 1024
	// FlushInterval is how often a recorder syncs its write-ahead logs:
	// the most a killed recorder loses. MaxFlushInterval bounds the flag.
	FlushInterval    = 2 * time.Second
	MaxFlushInterval = 5 * time.Second
	// LiveGrace is how long files that others replaced stay on disk for
	// readers that listed them just before: the pieces a live recorder
	// published at each flush once their file is published, and (when a
	// recorder or recover cleans up) files merged by a compaction.
	LiveGrace = 2 * time.Minute
	// MinBackoff and MaxBackoff bound the wait between reconnects.
	MinBackoff = 100 * time.Millisecond
	MaxBackoff = 30 * time.Second
	// DialMaxBackoff bounds gRPC's own reconnect backoff under a
	// connection (its default grows to two minutes).
	DialMaxBackoff = 5 * time.Second
	// ResumeOverlap is how far before the last recorded flow a resumed
	// stream starts (what comes twice is dropped by uuid).
	ResumeOverlap = 10 * time.Second
	// RecorderMemoryLimit is the Go heap limit of a recorder (unless
	// GOMEMLIMIT is set): a recorder may run for days next to a cluster's
	// tools, so the heap stays near what it uses, about 75 MB at its
	// busiest and 120 MB with the derived tables (whose requests wait for
	// a full row group). Closer than this, the collector runs all the time:
	// at 128 MB the recorder took 1.5x the CPU per flow without the derived
	// tables and 3x with them (make bench, BenchmarkRecord); at 192 MB,
	// 1.05x with them (0.97-1.11x) for a peak 55 MB lower, at 160 MB about
	// 1.2x for 85 MB lower (2026-12-07, the recorder build, runs of 600k
	// flows: six pairs at 192 MB, three rounds at 160). The heap grows to
	// the limit, so the limit, more than what is live, sets the
	// recorder's peak.
	RecorderMemoryLimit = 256 << 20
)

// Object storage (tape/bucket.go, upload.go, fetch.go).
const (
	// UploadInterval is how often an uploader looks for finished files in
	// its spool (and retries a store that failed).
	UploadInterval = 2 * time.Second
	// UploadDrainTimeout is how long a recorder that stops waits for its
	// spool to drain; what is left goes up at its next start. Below a
	// pod's default grace period (30 s), so that SIGKILL does not come
	// first.
	UploadDrainTimeout = 20 * time.Second
	// SpoolMaxBytes bounds a spool without --max-disk.
	SpoolMaxBytes = 10 << 30
	// CacheMaxBytes bounds the local cache of files read from a bucket
	// (--cache-size).
	CacheMaxBytes = 20 << 30
)

// Import.
const (
	// MaxBadLineReports is how many bad lines of a file an import reports
	// (it counts them all).
	MaxBadLineReports = 10
)

// The Observer API servers (replay, sim).
const (
	// ListenAddress is where replay and sim serve the Observer API:
	// where the hubble CLI looks by default.
	ListenAddress = hubbledefaults.ServerAddress
	// ReplayMemoryLimit keeps one stream's replay server well under 200MB.
	ReplayMemoryLimit = "150MB"
	// ReplayGCPercent is replay's GOGC (unless GOGC is set): the memory
	// limit is what bounds a replay server's heap, so the collector need
	// not also run each time the heap doubles. One stream's live heap is
	// about 45 MB: at Go's default (100) the collector ran at about 90 MB,
	// well before the limit. At 300 it waits for the limit: 9% less CPU
	// per flow over 1M flows (12.9-13.1 against 14.1-14.8 us, four pairs
	// of runs to a draining client), with the peak memory the limit gave
	// before (139 MB of anonymous memory).
	ReplayGCPercent = 300
	// Speed is how fast replay and sim serve streams that follow:
	// recorded (simulated) seconds per wall-clock second.
	Speed = "1"
)

// The analyses (analyze, report). analyze hands them to the SQL as DuckDB
// variables (ft_default_*), so the SQL files hold no copy of them.
const (
	// Reporter is whose view of a request counts: the server proxy's (the
	// client's where no server proxy saw it).
	Reporter = "server"
	// Level is what a node of the dependency graph is.
	Level = "workload"
	// ErrorsBy is what a row of errors is: an endpoint (method and path)
	// of an edge, or the edge (what the summaries keep).
	ErrorsBy = "path"
	// Bucket is the timeline's bucket.
	Bucket = time.Minute
	// SummaryWindow is the window from which services, graph, timeline and errors read the
	// per-minute summaries rather than every request and connection
	// (--summaries auto): an hour of a busy node is millions of requests.
	SummaryWindow = time.Hour
	// HealthDegraded and HealthFailure are Kiali's default thresholds on
	// an error share.
	HealthDegraded = 0.001
	HealthFailure  = 0.10
	// SLOObjective is the slo analysis's objective, a percentage of good
	// events: three nines, the objective of the SRE workbook's alerting
	// examples.
	SLOObjective = 99.9
	// ReportTop is how many rows a report's tables of services, changes,
	// errors and drops show at most.
	ReportTop = 15
)

// The simulator (sim, demo).
const (
	SimRate         = 2000 // flows per simulated second
	SimNodes        = 3
	SimRingCapacity = 4095 // Hubble's default --hubble-event-buffer-capacity
	SimSeed         = 1
	SimScenario     = "steady"
	// SimHistory is how long before now a simulation at a numeric speed
	// starts, so that the ring buffers are full at once.
	SimHistory = time.Minute
	// DemoDuration and DemoRate are what flowtape demo records: the
	// incident and a couple of minutes around it, in seconds.
	DemoDuration = 4 * time.Minute
	DemoRate     = 600
)

// Positive returns v, or d when v is not positive: how an option left zero
// takes its default.
func Positive[T ~int | ~int64 | ~float64](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}
