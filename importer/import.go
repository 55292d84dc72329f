// Package importer turns Hubble JSON lines that are already on disk
// (hubble observe -o jsonpb or -o json, Cilium's exporter files, sysdump
// flow files; plain, gzip'd or zstd) into a recording, written as one
// staged session of package tape, and exports recordings back to Hubble
// jsonpb (export.go).
package importer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/tape"
)

// Options configure an import.
type Options struct {
	// Inputs are files ("-" is Stdin), read in order.
	Inputs []string
	Stdin  io.Reader
	// Sink is the recording to write; a new directory, or an existing
	// recording the import is added to.
	Sink tape.SinkOptions
	// Strict stops at the first bad line; otherwise bad lines are reported
	// (MaxReports of them per file) and skipped.
	Strict     bool
	MaxReports int
	// Workers decode lines in parallel (default: GOMAXPROCS).
	Workers int
	// Progress, when set, is called about once a second.
	Progress func(Progress)
	Log      *slog.Logger
}

// Progress is a snapshot of a running import.
type Progress struct {
	File      string
	Read      int64 // bytes read from disk, all files
	Size      int64 // bytes of all files; 0 when unknown (stdin)
	Lines     int64
	Flows     int64
	BadLines  int64
	Elapsed   time.Duration
	Remaining time.Duration // estimate; 0 when unknown
}

// Result is what an import did.
type Result struct {
	Session tape.Session
	// Source is what it read, as the manifest keeps it.
	Source Source
	// Mismatches count envelopes whose time or node differed from their
	// flow's (the flow's were kept).
	Mismatches int64
	// Unknown counts JSON members this build does not know, kept.
	Unknown int64
}

// LineError is a bad line.
type LineError struct {
	File string
	Line int64
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ErrNoFlows is returned when the inputs hold no flow or event at all.
var ErrNoFlows = errors.New("no Hubble flows or events")

const batchLines = 512

type batch struct {
	file  int
	first int64 // line number of lines[0]
	lines [][]byte
	out   []decoded
	done  chan struct{}
}

type decoded struct {
	d   Decoded
	err error
}

// Import reads Hubble JSON lines into a recording. Nothing of it is visible
// in the recording unless it completes (see tape.Stage).
func Import(ctx context.Context, o Options) (Result, error) {
	var res Result
	o.Workers = defaults.Positive(o.Workers, runtime.GOMAXPROCS(0))
	o.MaxReports = defaults.Positive(o.MaxReports, defaults.MaxBadLineReports)
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Stdin == nil {
		o.Stdin = io.Reader(eofReader{})
	}
	if len(o.Inputs) == 0 {
		return res, errors.New("no input files")
	}
	// Check every input first: a wrong argument fails before any work.
	ins := make([]*input, len(o.Inputs))
	var total int64
	for i, p := range o.Inputs {
		in, err := checkInput(p, o.Stdin)
		if err != nil {
			return res, err
		}
		ins[i] = in
		if in.size == 0 {
			total = -1
		} else if total >= 0 {
			total += in.size
		}
	}
	defer func() {
		for _, in := range ins {
			in.close()
		}
	}()

	started := time.Now()
	st, err := tape.Stage(o.Sink, tape.Session{Status: "importing", Start: started.UTC()})
	if err != nil {
		return res, err
	}
	imp := &importer{o: o, ins: ins, out: st, started: started, total: total,
		totals: tape.Totals{LostEvents: map[string]uint64{}}, files: make([]SourceFile, len(ins))}
	if err := imp.run(ctx); err != nil {
		st.Abort()
		return res, err
	}
	res.Mismatches, res.Unknown = imp.mismatches, imp.unknown
	if imp.totals.Flows == 0 && imp.events == 0 {
		st.Abort()
		return res, fmt.Errorf("%w in %s: the input is empty", ErrNoFlows, inputNames(ins))
	}
	imp.totals.FirstFlow, imp.totals.LastFlow = imp.firstLast()
	res.Source = Source{Files: imp.files}
	src, err := json.Marshal(res.Source)
	if err != nil {
		st.Abort()
		return res, fmt.Errorf("describe the import's source: %w", err)
	}
	st.SetSource(src)
	res.Session, err = st.Commit(imp.totals)
	return res, err
}

type importer struct {
	o       Options
	ins     []*input
	out     tape.Writer // the staged session
	started time.Time
	total   int64

	totals     tape.Totals
	events     int64
	files      []SourceFile
	states     []fileState
	bad        int64
	mismatches int64
	unknown    int64
	lines      int64
	first      int64
	last       int64
}

// run reads, decodes (in parallel) and writes, in input order. The reader
// is not waited for when the import stops early: it may be blocked reading
// a quiet pipe, and is released when its input closes.
func (imp *importer) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan *batch, imp.o.Workers*2)
	ordered := make(chan *batch, imp.o.Workers*4)
	var readErr error
	go func() {
		readErr = imp.readAll(ctx, work, ordered)
		close(work)
		close(ordered) // after readErr is set: the writer reads it then
	}()
	g, ctx := errgroup.WithContext(ctx)
	for range imp.o.Workers {
		g.Go(func() error {
			for {
				select {
				case b, ok := <-work:
					if !ok {
						return nil
					}
					b.out = make([]decoded, len(b.lines))
					for i, l := range b.lines {
						b.out[i].d, b.out[i].err = DecodeLine(l)
					}
					close(b.done)
				case <-ctx.Done():
					return nil
				}
			}
		})
	}
	g.Go(func() error {
		if err := imp.writeAll(ctx, ordered); err != nil {
			return err
		}
		// ordered is closed: the reader is done and readErr set.
		if readErr != nil {
			return readErr
		}
		return imp.finishFiles()
	})
	return g.Wait()
}

// readAll cuts the inputs into batches of lines, handed to the decoders and,
// in order, to the writer.
func (imp *importer) readAll(ctx context.Context, work, ordered chan<- *batch) error {
	for fi, in := range imp.ins {
		if err := imp.readFile(ctx, fi, in, work, ordered); err != nil {
			return err
		}
	}
	return nil
}

func (imp *importer) readFile(ctx context.Context, fi int, in *input, work, ordered chan<- *batch) error {
	if err := in.open(); err != nil {
		return err
	}
	defer in.close()
	var lineNo int64
	b := &batch{file: fi, first: 1, done: make(chan struct{})}
	send := func() error {
		for _, ch := range []chan<- *batch{ordered, work} {
			select {
			case ch <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	var buf []byte
	for {
		line, err := in.readLine(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		lineNo++
		b.lines = append(b.lines, append([]byte(nil), line...))
		buf = line[:0]
		if len(b.lines) == batchLines {
			if err := send(); err != nil {
				return err
			}
			b = &batch{file: fi, first: lineNo + 1, done: make(chan struct{})}
		}
	}
	if len(b.lines) > 0 {
		return send()
	}
	return nil
}

// fileState is what the writer knows of one input while reading it.
type fileState struct {
	good, bad int64
	firstBad  *LineError
	pending   []*LineError // reports held until the file shows a good line
	shown     int
}

func (imp *importer) writeAll(ctx context.Context, ordered <-chan *batch) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	imp.states = make([]fileState, len(imp.ins))
	for {
		var b *batch
		select {
		case x, ok := <-ordered:
			if !ok {
				return nil
			}
			b = x
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-b.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		sf, fs := &imp.files[b.file], &imp.states[b.file]
		for i, dl := range b.out {
			if isBlank(b.lines[i]) {
				continue
			}
			imp.lines++
			sf.Lines++
			if dl.err != nil {
				if err := imp.badLine(fs, sf, &LineError{File: imp.ins[b.file].name, Line: b.first + int64(i), Err: dl.err}, b.lines[i]); err != nil {
					return err
				}
				continue
			}
			if fs.good == 0 {
				imp.flushReports(fs)
			}
			fs.good++
			if err := imp.write(dl.d, sf); err != nil {
				return err
			}
		}
		b.lines, b.out = nil, nil
		select {
		case <-tick.C:
			if err := imp.out.Sync(); err != nil {
				return err
			}
			imp.report(imp.ins[b.file].name)
		default:
		}
	}
}

// badLine counts and reports a bad line. Reports wait until the file has
// shown a good line: a file with none is one error, not a screen of them.
// A file whose first line is not even a JSON object is the wrong file.
func (imp *importer) badLine(fs *fileState, sf *SourceFile, lerr *LineError, line []byte) error {
	if imp.o.Strict {
		return fmt.Errorf("%w (--strict stops at the first bad line)", lerr)
	}
	if fs.good == 0 && fs.bad == 0 {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '{' {
			return fmt.Errorf("%s: not Hubble JSON lines (line %d starts with %q)", lerr.File, lerr.Line, preview(t))
		}
	}
	imp.bad++
	fs.bad++
	sf.BadLines++
	if fs.firstBad == nil {
		fs.firstBad = lerr
	}
	if fs.good == 0 {
		if len(fs.pending) < imp.o.MaxReports {
			fs.pending = append(fs.pending, lerr)
		}
		return nil
	}
	imp.showReport(fs, lerr)
	return nil
}

func (imp *importer) flushReports(fs *fileState) {
	for _, lerr := range fs.pending {
		imp.showReport(fs, lerr)
	}
	fs.pending = nil
}

func (imp *importer) showReport(fs *fileState, lerr *LineError) {
	if fs.shown < imp.o.MaxReports {
		imp.o.Log.Warn("skipping bad line", "file", lerr.File, "line", lerr.Line, "error", lerr.Err)
	}
	fs.shown++
}

// finishFiles records what each input was and refuses a file that held
// lines but not one Hubble line: it was not the file meant.
func (imp *importer) finishFiles() error {
	for i, in := range imp.ins {
		sf, fs := &imp.files[i], &imp.states[i]
		sf.Path, sf.Bytes, sf.SHA256, sf.Compression = in.name, in.read.Load(), in.checksum(), in.compression
		if fs.good == 0 && fs.bad > 0 {
			return fmt.Errorf("%s: no Hubble flow or event in its %d lines (line %d: %v)", in.name, fs.bad, fs.firstBad.Line, fs.firstBad.Err)
		}
		if n := fs.shown - imp.o.MaxReports; n > 0 {
			imp.o.Log.Warn("more bad lines not shown", "file", in.name, "count", n)
		}
	}
	imp.report("")
	return nil
}

func preview(b []byte) string {
	if len(b) > 20 {
		b = b[:20]
	}
	return string(b)
}

func (imp *importer) write(d Decoded, sf *SourceFile) error {
	r := d.Response
	switch {
	case sf.Format == "":
		sf.Format = string(d.Format)
	case sf.Format != string(d.Format):
		sf.Format = "mixed"
	}
	if d.Mismatch {
		imp.mismatches++
	}
	imp.unknown += int64(d.Unknown)
	if f := r.GetFlow(); f != nil {
		if err := imp.out.WriteFlow(f); err != nil {
			return err
		}
		imp.totals.Flows++
		sf.Flows++
		at := f.GetTime().AsTime().UnixNano()
		if imp.first == 0 || at < imp.first {
			imp.first = at
		}
		if at > imp.last {
			imp.last = at
		}
		return nil
	}
	if l := r.GetLostEvents(); l != nil {
		imp.totals.LostEvents[l.GetSource().String()] += l.GetNumEventsLost()
	}
	if r.GetNodeStatus() != nil {
		imp.totals.NodeStatusChanges++
	}
	imp.events++
	sf.Events++
	return imp.out.WriteEvent(r)
}

func (imp *importer) firstLast() (*time.Time, *time.Time) {
	if imp.totals.Flows == 0 {
		return nil, nil
	}
	a, b := time.Unix(0, imp.first).UTC(), time.Unix(0, imp.last).UTC()
	return &a, &b
}

func (imp *importer) report(file string) {
	if imp.o.Progress == nil {
		return
	}
	var read int64
	for _, in := range imp.ins {
		read += in.read.Load()
	}
	p := Progress{File: file, Read: read, Lines: imp.lines, Flows: int64(imp.totals.Flows), BadLines: imp.bad,
		Elapsed: time.Since(imp.started)}
	if imp.total > 0 {
		p.Size = imp.total
		if read > 0 && read < imp.total {
			p.Remaining = time.Duration(float64(p.Elapsed) * float64(imp.total-read) / float64(read))
		}
	}
	imp.o.Progress(p)
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

func inputNames(ins []*input) string {
	if len(ins) == 1 {
		return ins[0].name
	}
	return fmt.Sprintf("%s and %d more", ins[0].name, len(ins)-1)
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
