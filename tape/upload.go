package tape

import (
	"cmp"
	"context"
	"crypto/md5" //nolint:gosec // S3's ETag of a single-part object is its MD5
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/schema"
)

// A recorder (or an import) writing to a bucket writes an ordinary
// recording directory first, the spool, and an Uploader moves its finished
// files to the bucket. The protocol, so that a SIGKILL at any moment
// leaves every flow in the store once:
//
//  1. Only finished files go up: a .parquet name is complete and never
//     changes (segment.go); what is being written (.wal, .tmp, a live
//     segment's pieces) stays. A flow file's derived files go first, then
//     the flow file, so that a reader of the store that finds a flow file
//     finds its derived files, as on disk.
//  2. A key is the file's path in the spool, and is written only if
//     absent (If-None-Match: *): a key never gets other content. Before a
//     write, an object already under the key (a killed uploader's, or one
//     whose removal did not happen) is compared instead: same size and
//     SHA-256 (kept in the object's metadata) is this file, uploaded.
//  3. The store confirms: after the write, the object's attributes must
//     show the file's size and SHA-256. The bytes were checked on the way
//     (the MD5 sent to GCS and Azure; the SDK's checksum on S3, whose ETag
//     is no MD5 under SSE-KMS). Only then is the local file removed. A
//     file whose key holds something else is kept and counted as an
//     upload error, never overwritten.
//  One process uploads a spool (NewUploader locks it), so that its
//  retention and its uploads coordinate in memory.
//  4. The uploaded flow files of each stream's last session that reach
//     into the resume overlap are kept in the spool (listed in
//     .uploaded), so that a restarted recorder resumes from them without
//     writing flows twice (LastSession); they go once they fall out of the
//     overlap or a newer session has files, or to make room.
//  5. The manifest goes up after the files, as manifests/<spool id>.json
//     (bucket.go), whenever it changed.
//
// A spool is bounded by Retention{MaxBytes, Spool: true}: when the store is
// down long enough to fill it, the oldest files waiting are dropped and
// summed up in the manifest as lost (Manifest.Dropped), which coverage
// shows; files kept only for resuming go first, uncounted. Guarded by
// TestUpload* (upload_test.go) and, against a real S3 server, by
// record's TestRecordToS3*.

// Names in a spool.
const (
	uploadLockFile = ".upload.lock"
	uploadedFile   = ".uploaded"
	spoolIDFile    = ".spool-id"
	// shaMeta is the object metadata key of a file's SHA-256.
	shaMeta = "sha256"
)

// UploadOptions tune an Uploader.
type UploadOptions struct {
	// Interval is the time between two looks at the spool (Run).
	Interval time.Duration
	// State, if set, gets the spool's state after every pass (metrics).
	State func(UploadState)
	// KeepOverlap is how far before a session's last flow its uploaded
	// flow files stay in the spool for a restarted recorder (the
	// recorder's resume overlap).
	KeepOverlap time.Duration
	Log         *slog.Logger
}

// UploadState is a spool's state after a pass.
type UploadState struct {
	// WaitingFiles and WaitingBytes are what waits to go up (flow and
	// events files; bytes with derived files); Oldest is the oldest
	// waiting file's modification time (zero if none waits).
	WaitingFiles int
	WaitingBytes int64
	Oldest       time.Time
	// UploadedFiles and UploadedBytes count what this uploader confirmed;
	// Errors its failed uploads (each file each time).
	UploadedFiles int64
	UploadedBytes int64
	Errors        int64
	// Err is the last pass's error, nil if it uploaded all it tried.
	Err error
}

// Uploader moves a spool's finished files to a bucket (see above).
type Uploader struct {
	dir string
	b   *Bucket
	id  string
	o   UploadOptions

	unlock       func()
	state        UploadState
	manifestSum  string
	lastErrShown string
	// newest holds each flow file's newest flow (ns), read from its
	// footer once: a file's name never gets other content.
	newest map[string]int64
}

// NewUploader makes an uploader of the spool dir (created if needed) to b.
func NewUploader(dir string, b *Bucket, o UploadOptions) (*Uploader, error) {
	o.Interval = defaults.Positive(o.Interval, defaults.UploadInterval)
	o.KeepOverlap = defaults.Positive(o.KeepOverlap, defaults.ResumeOverlap)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	// One process per spool: the uploader and retention of one process
	// coordinate in memory (spoolMutex), two processes could not, and
	// each would drain the other's files.
	unlock, ok, err := tryLockFile(filepath.Join(dir, uploadLockFile))
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	if !ok {
		return nil, fmt.Errorf("the spool %s is in use by another flowtape process writing to a bucket: give this one its own --spool", dir)
	}
	id, err := spoolID(dir)
	if err != nil {
		unlock()
		return nil, err
	}
	return &Uploader{dir: dir, b: b, id: id, o: o, unlock: unlock}, nil
}

// Close lets the spool go (for the next process); the files waiting stay.
func (u *Uploader) Close() {
	if u.unlock != nil {
		u.unlock()
		u.unlock = nil
	}
}

// spoolID is the spool's own id, made once: the name of its manifest in
// the bucket.
func spoolID(dir string) (string, error) {
	p := filepath.Join(dir, spoolIDFile)
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	id := NewRecordingID()
	if err := writeSmall(p+tmpSuffix, p, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("spool %s: %w", dir, err)
	}
	return id, nil
}

// Run uploads until ctx ends, a pass every Interval (a pass uploads all
// that waits, so a backlog drains at the store's speed).
func (u *Uploader) Run(ctx context.Context) {
	for {
		u.Pass(ctx) //nolint:errcheck // logged and in the state
		select {
		case <-ctx.Done():
			return
		case <-time.After(u.o.Interval):
		}
	}
}

// Drain uploads until nothing waits or ctx ends; it returns the last
// pass's state, and an error when files still wait.
func (u *Uploader) Drain(ctx context.Context) (UploadState, error) {
	// A stopping writer waits for this: a transient failure is tried
	// again soon, then every Interval.
	wait := min(100*time.Millisecond, u.o.Interval)
	for {
		st, err := u.Pass(ctx)
		if err == nil && st.WaitingFiles == 0 {
			return st, nil
		}
		if errors.Is(err, errConflict) || errors.Is(err, ErrBucket) {
			// Waiting would not change these: keys holding other content,
			// credentials refused.
			return st, fmt.Errorf("%d files (%d bytes) still wait in the spool %s for %s: %w", st.WaitingFiles, st.WaitingBytes, u.dir, u.b.URL, err)
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return st, fmt.Errorf("%d files (%d bytes) still wait in the spool %s for %s: %w", st.WaitingFiles, st.WaitingBytes, u.dir, u.b.URL, err)
		case <-time.After(wait):
			wait = min(2*wait, u.o.Interval)
		}
	}
}

// Pass uploads what waits in the spool now, once.
func (u *Uploader) Pass(ctx context.Context) (UploadState, error) {
	st, err := u.pass(ctx)
	u.state.Err = err
	st = u.state
	if u.o.State != nil {
		u.o.State(st)
	}
	switch {
	case err != nil && err.Error() != u.lastErrShown:
		u.lastErrShown = err.Error()
		u.o.Log.Warn("upload failed; files wait in the spool and go up when the store answers", "spool", u.dir, "bucket", u.b.URL, "waiting_files", st.WaitingFiles, "error", err)
	case err == nil && u.lastErrShown != "":
		u.lastErrShown = ""
		u.o.Log.Info("uploads work again", "bucket", u.b.URL, "waiting_files", st.WaitingFiles)
	}
	return st, err
}

func (u *Uploader) pass(ctx context.Context) (UploadState, error) {
	mu := spoolMutex(u.dir)
	mu.Lock()
	units, _, _, err := diskUnits(u.dir)
	kept := readKept(u.dir)
	mu.Unlock()
	if err != nil {
		return u.state, err
	}
	var waiting []unit
	for _, x := range units {
		if derivedKind(x.kind) || kept[relKey(u.dir, x.paths[0])] {
			continue // an orphan (retention's), or up already
		}
		waiting = append(waiting, x)
	}
	slices.SortFunc(waiting, func(a, b unit) int {
		return cmp.Or(a.part.Compare(b.part), cmp.Compare(a.name, b.name), cmp.Compare(a.kind, b.kind))
	})
	m, _ := ReadManifest(u.dir)
	tails := resumeTails(m, units, u.o.KeepOverlap, u.newestFlow)
	here := map[string]bool{}
	for _, x := range units {
		here[x.paths[0]] = true
	}
	for p := range u.newest {
		if !here[p] {
			delete(u.newest, p) // gone: up, or dropped to make room
		}
	}
	var errs []error
	left := waiting[:0:0]
	for i, x := range waiting {
		if ctx.Err() != nil {
			left = append(left, waiting[i:]...)
			errs = append(errs, ctx.Err())
			break
		}
		if err := u.upload(ctx, x, tails[x.paths[0]]); err != nil {
			if errors.Is(err, errGone) {
				continue // dropped meanwhile to make room: counted there
			}
			u.state.Errors++
			errs = append(errs, err)
			left = append(left, x)
			if !errors.Is(err, errConflict) && !errors.Is(err, os.ErrNotExist) {
				// The store is down or refuses: the rest would fail alike.
				left = append(left, waiting[i+1:]...)
				break
			}
		}
	}
	if err := u.pruneKept(tails); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		if err := u.putManifest(ctx); err != nil {
			u.state.Errors++
			errs = append(errs, err)
		}
	}
	u.state.WaitingFiles, u.state.WaitingBytes, u.state.Oldest = len(left), 0, time.Time{}
	for _, x := range left {
		u.state.WaitingBytes += x.bytes
		if st, err := os.Stat(x.paths[0]); err == nil && (u.state.Oldest.IsZero() || st.ModTime().Before(u.state.Oldest)) {
			u.state.Oldest = st.ModTime()
		}
	}
	return u.state, errors.Join(errs...)
}

// resumeTails picks what a restarted recorder resumes from (LastSession):
// of each stream (server and filters), the flow files that reach into the
// overlap before its last flow, whichever session wrote them. The
// overlap's flows are what the restarted recorder asks the server for
// again and skips as written: a flow of the overlap whose file went up and
// left the spool would be written twice.
func resumeTails(m *Manifest, units []unit, overlap time.Duration, newest func(path string) int64) map[string]bool {
	out := map[string]bool{}
	if m == nil {
		return out
	}
	stream := map[string]string{} // session -> its stream
	for _, s := range m.Sessions {
		if s.Source == nil { // an import resumes nothing
			stream[s.RecordingID] = s.Server.Address + "\x00" + s.Filters.Raw
		}
	}
	type file struct {
		path string
		hi   int64
	}
	files := map[string][]file{} // stream -> its flow files here
	last := map[string]int64{}
	for _, x := range units {
		if x.kind != schema.KindFlows {
			continue
		}
		id, ok := parseFileName(x.paths[0])
		k, known := stream[id]
		if !ok || !known {
			continue
		}
		hi := newest(x.paths[0])
		files[k] = append(files[k], file{x.paths[0], hi})
		last[k] = max(last[k], hi)
	}
	for k, fs := range files {
		for _, f := range fs {
			if f.hi > 0 && f.hi >= last[k]-int64(overlap) {
				out[f.path] = true
			}
		}
	}
	return out
}

// newestFlow is the time of a flow file's newest flow (0 if unreadable).
func (u *Uploader) newestFlow(p string) int64 {
	if hi, ok := u.newest[p]; ok {
		return hi
	}
	if u.newest == nil {
		u.newest = map[string]int64{}
	}
	_, _, hi := fileRows(p, schema.KindFlows)
	if hi > 0 {
		u.newest[p] = hi
	}
	return hi
}

// upload puts a unit's files (derived files first), and removes them
// from the spool once confirmed, or lists the unit as kept (a tail).
func (u *Uploader) upload(ctx context.Context, x unit, keep bool) error {
	mu := spoolMutex(u.dir)
	mu.Lock()
	if !exists(x.paths[0]) {
		mu.Unlock()
		return errGone
	}
	spoolBusy.Store(x.paths[0], true)
	mu.Unlock()
	defer spoolBusy.Delete(x.paths[0])

	order := append(slices.Clone(x.paths[1:]), x.paths[0])
	var bytes int64
	for _, p := range order {
		n, err := u.put(ctx, p)
		if errors.Is(err, os.ErrNotExist) && p != x.paths[0] {
			continue // a flow file of a schema without derived files
		}
		if err != nil {
			return err
		}
		bytes += n
	}
	mu.Lock()
	defer mu.Unlock()
	if keep {
		kept := readKept(u.dir)
		kept[relKey(u.dir, x.paths[0])] = true
		if err := writeKept(u.dir, kept); err != nil {
			return err
		}
	} else {
		if _, err := removeUnit(x); err != nil && !errors.Is(err, errGone) {
			return err
		}
		if err := syncDirsOf(x.paths); err != nil {
			return err
		}
	}
	u.state.UploadedFiles++
	u.state.UploadedBytes += bytes
	return nil
}

// pruneKept removes the kept files that are no stream's resume point any
// more.
func (u *Uploader) pruneKept(tails map[string]bool) error {
	mu := spoolMutex(u.dir)
	mu.Lock()
	defer mu.Unlock()
	kept := readKept(u.dir)
	changed := false
	for rel := range kept {
		p := filepath.Join(u.dir, filepath.FromSlash(rel))
		if tails[p] {
			continue
		}
		x := unit{kind: schema.KindFlows, paths: []string{p}}
		for _, dk := range schema.DerivedKinds {
			if dp, ok := derivedOf(p, dk); ok {
				x.paths = append(x.paths, dp)
			}
		}
		if _, err := removeUnit(x); err != nil && !errors.Is(err, errGone) {
			return err
		}
		delete(kept, rel)
		changed = true
	}
	if !changed {
		return nil
	}
	return writeKept(u.dir, kept)
}

// put uploads one file under its key unless the key holds it already, and
// confirms it (see the protocol above); it returns the file's size.
func (u *Uploader) put(ctx context.Context, p string) (int64, error) {
	key := relKey(u.dir, p)
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	size, sha, sum5, err := fileSums(f)
	if err != nil {
		return 0, fmt.Errorf("spool %s: %w", p, err)
	}
	if ok, err := u.confirm(ctx, key, size, sha); ok || err != nil {
		return size, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("spool %s: %w", p, err)
	}
	w, err := u.b.b.NewWriter(ctx, key, &blob.WriterOptions{
		ContentType: "application/vnd.apache.parquet",
		ContentMD5:  sum5, // checked by GCS and Azure; S3 checks the SDK's own checksum
		Metadata:    map[string]string{shaMeta: sha},
		IfNotExist:  true,
	})
	if err != nil {
		return 0, u.b.explain("write", key, err)
	}
	if _, err := io.Copy(w, f); err != nil {
		w.Close()
		return 0, u.b.explain("write", key, err)
	}
	if err := w.Close(); err != nil && gcerrors.Code(err) != gcerrors.FailedPrecondition {
		// FailedPrecondition: the key appeared meanwhile; confirm says
		// whether it is this file.
		return 0, u.b.explain("write", key, err)
	}
	ok, err := u.confirm(ctx, key, size, sha)
	if err == nil && !ok {
		err = fmt.Errorf("%s %s: the store does not show the file just written", u.b.URL, key)
	}
	return size, err
}

// confirm reports whether key holds a file of this size and checksums; an
// object of other content under the key is an error (never overwritten).
func (u *Uploader) confirm(ctx context.Context, key string, size int64, sha string) (bool, error) {
	a, err := u.b.b.Attributes(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return false, nil
	}
	if err != nil {
		return false, u.b.explain("read", key, err)
	}
	// Size and the SHA-256 the object was written with. The MD5 is not
	// required to match: S3's ETag is the MD5 only of an unencrypted (or
	// SSE-S3) single-part object, and under SSE-KMS or SSE-C it is not,
	// while the SDK's checksum of the body (CRC32 by default, checked by
	// S3 on the write) already guards the bytes in transit. A key written
	// by anyone else has no SHA-256 of ours.
	same := a.Size == size && a.Metadata[shaMeta] == sha
	if !same {
		return false, fmt.Errorf("%s %s: the store holds other content under this key (size %d, sha256 %q; the spool's file: %d, %q): kept in the spool, not overwritten: %w", u.b.URL, key, a.Size, a.Metadata[shaMeta], size, sha, errConflict)
	}
	return true, nil
}

// CheckWrite writes the spool's manifest to the bucket (an empty one for
// a new spool), so that credentials that may only read are one error
// before anything is recorded, not a spool filling up.
func (u *Uploader) CheckWrite(ctx context.Context) error {
	err := u.writeManifest(ctx, true)
	if gcerrors.Code(err) == gcerrors.PermissionDenied || errors.Is(err, ErrBucket) {
		return refused("%s: the credentials may read but not write here: grant them s3:PutObject (GCS: storage.objects.create; Azure: Storage Blob Data Contributor)", u.b.URL)
	}
	return err
}

// putManifest uploads the spool's manifest when it changed.
func (u *Uploader) putManifest(ctx context.Context) error { return u.writeManifest(ctx, false) }

func (u *Uploader) writeManifest(ctx context.Context, always bool) error {
	b, err := os.ReadFile(filepath.Join(u.dir, ManifestFile))
	if errors.Is(err, os.ErrNotExist) {
		if !always {
			return nil
		}
		b, err = json.Marshal(&Manifest{Sessions: []Session{}})
	}
	if err != nil {
		return err
	}
	s := sha256.Sum256(b)
	sum := hex.EncodeToString(s[:])
	if sum == u.manifestSum {
		return nil
	}
	key := manifestsPrefix + u.id + ".json"
	if err := u.b.b.WriteAll(ctx, key, b, &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return u.b.explain("write", key, err)
	}
	u.manifestSum = sum
	return nil
}

// errConflict: a key holds other content than the spool's file.
var errConflict = errors.New("key taken")

// fileSums reads a file's size, SHA-256 (hex) and MD5.
func fileSums(f *os.File) (int64, string, []byte, error) {
	sha, m5 := sha256.New(), md5.New() //nolint:gosec
	n, err := io.Copy(io.MultiWriter(sha, m5), f)
	if err != nil {
		return 0, "", nil, err
	}
	return n, hex.EncodeToString(sha.Sum(nil)), m5.Sum(nil), nil
}

// relKey is a spool file's key: its path in the spool, with slashes.
func relKey(dir, p string) string {
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		return filepath.ToSlash(p)
	}
	return filepath.ToSlash(rel)
}

// readKept reads the spool's list of uploaded files it keeps for resuming.
func readKept(dir string) map[string]bool {
	out := map[string]bool{}
	b, err := os.ReadFile(filepath.Join(dir, uploadedFile))
	if err != nil {
		return out
	}
	var list []string
	if json.Unmarshal(b, &list) != nil {
		return out
	}
	for _, k := range list {
		out[k] = true
	}
	return out
}

func writeKept(dir string, kept map[string]bool) error {
	list := make([]string, 0, len(kept))
	for k := range kept {
		list = append(list, k)
	}
	slices.Sort(list)
	b, _ := json.Marshal(list)
	p := filepath.Join(dir, uploadedFile)
	if err := writeSmall(p+tmpSuffix, p, b); err != nil {
		return fmt.Errorf("spool %s: %w", dir, err)
	}
	return nil
}

// The uploader and a spool's retention, in one process, never act on the
// same file at once: spoolMutex serialises their choices, and spoolBusy
// holds the flow file being uploaded, which retention leaves alone.
var (
	spoolMutexes sync.Map // dir -> *sync.Mutex
	spoolBusy    sync.Map // flow file path -> true
)

func spoolMutex(dir string) *sync.Mutex {
	m, _ := spoolMutexes.LoadOrStore(filepath.Clean(dir), &sync.Mutex{})
	return m.(*sync.Mutex)
}
