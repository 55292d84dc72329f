package tape

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // S3's ETag of a single-part object is its MD5
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gocloud.dev/blob"

	"github.com/flowtape/flowtape/schema"
)

// Reading a recording from a bucket: the readers (analyze, query, report,
// replay, export) work on a directory, so Fetch makes one. It lists only
// the hour partitions the window needs (one listing per kind and day),
// downloads what the local cache does not hold yet, checks each file's
// size (and MD5 where the store gives one) and that it is Parquet, and
// links the window's files into a directory of this run's own, with the
// bucket's manifests merged into one. The cache (CacheDir/<hash of the
// URL>/) is reused by the next run and bounded: the least recently used
// files go first, never those this run reads; a window bigger than the
// bound is refused with what it needs. Keys are immutable (upload.go), so
// a cached file of the same key and size is the object. DuckDB's httpfs
// would read the bucket directly, but the Go binding does not build it in
// and it cannot be fetched on a machine without internet. Guarded by
// TestFetch* (fetch_test.go) and record's TestRecordToS3*.

// FetchOptions say what to read from a bucket and where to keep it.
type FetchOptions struct {
	// CacheDir holds the cache (a directory per bucket URL).
	CacheDir string
	// MaxBytes bounds the cache.
	MaxBytes int64
	// Since and Until bound the window (zero: open).
	Since, Until time.Time
	// Progress, if set, is called as files arrive.
	Progress func(FetchProgress)
}

// FetchProgress is how far a fetch is.
type FetchProgress struct {
	Files, TotalFiles int
	Bytes, TotalBytes int64
	// Cached counts the files the cache held already.
	Cached int
}

// Fetched is a fetch's result: a recording directory of the window's
// files, to read like any, and removed by Close.
type Fetched struct {
	Dir string
	FetchProgress
	close func()
}

// Close removes the run's directory (the cache stays).
func (f *Fetched) Close() {
	if f != nil && f.close != nil {
		f.close()
	}
}

// remoteFile is an object to read.
type remoteFile struct {
	key  string
	size int64
	md5  []byte
}

// Fetch lists the window's files in b, brings them into the cache, and
// returns a directory holding them.
func Fetch(ctx context.Context, b *Bucket, o FetchOptions) (*Fetched, error) {
	if o.CacheDir == "" {
		return nil, errors.New("no cache directory for files read from a bucket (--cache-dir)")
	}
	sum := sha256.Sum256([]byte(b.URL))
	root := filepath.Join(o.CacheDir, hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(root, dirMode); err != nil {
		return nil, fmt.Errorf("--cache-dir %s: %w", o.CacheDir, err)
	}
	unlock, err := lockFileCtx(ctx, filepath.Join(root, ".fetch.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	m, err := b.manifest(ctx)
	if err != nil {
		return nil, err
	}
	var files []remoteFile
	for _, kind := range slices.Concat(kinds, schema.DerivedKinds) {
		got, err := b.listKind(ctx, kind, o.Since, o.Until)
		if err != nil {
			return nil, err
		}
		files = append(files, got...)
	}
	flows := slices.ContainsFunc(files, func(f remoteFile) bool { return strings.HasPrefix(f.key, schema.KindFlows+"/") })
	if !flows {
		if m == nil {
			return nil, fmt.Errorf("%s: no recording here (no manifests/ and no flows/date=.../hour=.../*.parquet): check the URL's bucket and prefix", b.URL)
		}
		return nil, fmt.Errorf("%s: no flow files in the window%s: %w", b.URL, windowText(o.Since, o.Until), ErrNoFiles)
	}
	var need int64
	for _, f := range files {
		need += f.size
	}
	if o.MaxBytes > 0 && need > o.MaxBytes {
		return nil, fmt.Errorf("%s: the window%s holds %d files of %d bytes, more than the cache may hold (--cache-size %d bytes): narrow --since/--until or raise --cache-size", b.URL, windowText(o.Since, o.Until), len(files), need, o.MaxBytes)
	}

	// Run directories of runs that ended without Close (killed): their
	// links only. A run holds <run>.lock while it reads (a replay may run
	// for days), so only the dead runs' go.
	if old, _ := filepath.Glob(filepath.Join(root, "run-*")); len(old) > 0 {
		for _, d := range old {
			if strings.HasSuffix(d, runLockSuffix) {
				continue
			}
			if unlock, ok, err := tryLockFile(d + runLockSuffix); err == nil && ok {
				os.RemoveAll(d)
				os.Remove(d + runLockSuffix)
				unlock()
			}
		}
	}
	p := FetchProgress{TotalFiles: len(files), TotalBytes: need}
	cache := filepath.Join(root, "objects")
	// Room first, so that the cache stays under its bound while fetching.
	if o.MaxBytes > 0 {
		evict(cache, max(o.MaxBytes-need, 1), files)
	}
	run, err := os.MkdirTemp(root, "run-")
	if err != nil {
		return nil, fmt.Errorf("--cache-dir %s: %w", o.CacheDir, err)
	}
	unlockRun, _, err := tryLockFile(run + runLockSuffix)
	if err != nil {
		os.RemoveAll(run)
		return nil, fmt.Errorf("--cache-dir %s: %w", o.CacheDir, err)
	}
	out := &Fetched{Dir: run, close: func() {
		os.RemoveAll(run)
		os.Remove(run + runLockSuffix)
		unlockRun()
	}}
	fail := func(err error) (*Fetched, error) {
		out.Close()
		return nil, err
	}
	now := time.Now()
	for _, f := range files {
		local := filepath.Join(cache, filepath.FromSlash(f.key))
		if st, err := os.Stat(local); err == nil && st.Size() == f.size {
			p.Cached++
			os.Chtimes(local, now, now) //nolint:errcheck // recency for eviction only
		} else if err := b.download(ctx, f, local); err != nil {
			return fail(err)
		}
		dst := filepath.Join(run, filepath.FromSlash(f.key))
		if err := os.MkdirAll(filepath.Dir(dst), dirMode); err != nil {
			return fail(err)
		}
		if err := os.Link(local, dst); err != nil {
			return fail(fmt.Errorf("--cache-dir %s: %w", o.CacheDir, err))
		}
		p.Files++
		p.Bytes += f.size
		if o.Progress != nil {
			o.Progress(p)
		}
	}
	if m == nil {
		m = &Manifest{}
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(run, ManifestFile), append(mb, '\n'), fileMode); err != nil {
		return fail(err)
	}
	evict(cache, o.MaxBytes, files)
	out.FetchProgress = p
	return out, nil
}

// ErrNoFiles: a window holds no files.
var ErrNoFiles = errors.New("nothing to read")

func windowText(since, until time.Time) string {
	switch {
	case since.IsZero() && until.IsZero():
		return ""
	case until.IsZero():
		return " since " + since.UTC().Format(time.RFC3339)
	case since.IsZero():
		return " until " + until.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf(" %s..%s", since.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))
}

// listKind lists a kind's files in the partitions the window overlaps:
// the kind's days first (a delimiter listing), then each day's files.
func (b *Bucket) listKind(ctx context.Context, kind string, since, until time.Time) ([]remoteFile, error) {
	var days []string
	it := b.b.List(&blob.ListOptions{Prefix: kind + "/", Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, b.explain("list", kind+"/", err)
		}
		if !obj.IsDir {
			continue
		}
		d, ok := strings.CutPrefix(path.Base(obj.Key), "date=")
		day, err := time.Parse("2006-01-02", d)
		if !ok || err != nil || !overlaps(day, 24*time.Hour, since, until) {
			continue
		}
		days = append(days, obj.Key)
	}
	var out []remoteFile
	for _, day := range days {
		it := b.b.List(&blob.ListOptions{Prefix: day})
		for {
			obj, err := it.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, b.explain("list", day, err)
			}
			name := path.Base(obj.Key)
			if obj.IsDir || hidden(name) || !strings.HasSuffix(name, parquetSuffix) {
				continue // fileblob's .attrs sidecars, foreign objects
			}
			if _, piece := pieceOf(obj.Key); piece {
				continue
			}
			start, ok := partitionWindow(obj.Key)
			if !ok || !overlaps(start, time.Hour, since, until) {
				continue
			}
			out = append(out, remoteFile{key: obj.Key, size: obj.Size, md5: obj.MD5})
		}
	}
	return out, nil
}

// overlaps reports whether [start, start+d) meets [since, until].
func overlaps(start time.Time, d time.Duration, since, until time.Time) bool {
	if !since.IsZero() && !start.Add(d).After(since) {
		return false
	}
	return until.IsZero() || !start.After(until)
}

// runLockSuffix names the lock a run holds on its directory.
const runLockSuffix = ".lock"

// download brings one object into the cache under a hidden name, checks
// it, and publishes it.
func (b *Bucket) download(ctx context.Context, f remoteFile, local string) error {
	if err := os.MkdirAll(filepath.Dir(local), dirMode); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(local), "."+filepath.Base(local)+".fetch"+strconv.Itoa(os.Getpid())+tmpSuffix)
	w, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, fileMode)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	r, err := b.b.NewReader(ctx, f.key, nil)
	if err != nil {
		w.Close()
		return b.explain("read", f.key, err)
	}
	h, sh := md5.New(), sha256.New() //nolint:gosec
	n, err := io.Copy(io.MultiWriter(w, h, sh), r)
	r.Close()
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return b.explain("read", f.key, err)
	}
	if n != f.size {
		return fmt.Errorf("%s %s: read %d bytes, the listing says %d: try again", b.URL, f.key, n, f.size)
	}
	if len(f.md5) > 0 && !bytes.Equal(h.Sum(nil), f.md5) {
		// An ETag is no MD5 under SSE-KMS or SSE-C: the SHA-256 the
		// uploader wrote with the object decides.
		a, err := b.b.Attributes(ctx, f.key)
		if err != nil {
			return b.explain("read", f.key, err)
		}
		if want := a.Metadata[shaMeta]; want != hex.EncodeToString(sh.Sum(nil)) {
			return fmt.Errorf("%s %s: the bytes read match neither the object's MD5 nor its SHA-256 (%q): try again", b.URL, f.key, want)
		}
	}
	if err := CheckParquet(tmp); err != nil {
		return fmt.Errorf("%s %s: not a recording's file: %w", b.URL, f.key, err)
	}
	return os.Rename(tmp, local)
}

// manifest reads and merges the bucket's manifests (nil if none).
func (b *Bucket) manifest(ctx context.Context) (*Manifest, error) {
	var ms []*Manifest
	it := b.b.List(&blob.ListOptions{Prefix: manifestsPrefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, b.explain("list", manifestsPrefix, err)
		}
		if obj.IsDir || !strings.HasSuffix(obj.Key, ".json") {
			continue
		}
		data, err := b.b.ReadAll(ctx, obj.Key)
		if err != nil {
			return nil, b.explain("read", obj.Key, err)
		}
		m := &Manifest{}
		if err := json.Unmarshal(data, m); err != nil {
			return nil, fmt.Errorf("%s %s: not a recording's manifest: %w", b.URL, obj.Key, err)
		}
		ms = append(ms, m)
	}
	if len(ms) == 0 {
		return nil, nil
	}
	return MergeManifests(ms...), nil
}

// MergeManifests merges the manifests of the writers of one recording:
// their sessions (by start), totals, and what expired or was dropped.
func MergeManifests(ms ...*Manifest) *Manifest {
	out := &Manifest{Totals: Totals{LostEvents: map[string]uint64{}}}
	for _, m := range ms {
		out.Sessions = append(out.Sessions, m.Sessions...)
		out.Totals.add(m.Totals)
		for _, pair := range []struct {
			dst **Expired
			src *Expired
		}{{&out.Expired, m.Expired}, {&out.Dropped, m.Dropped}} {
			if pair.src == nil {
				continue
			}
			if *pair.dst == nil {
				*pair.dst = &Expired{}
			}
			d := *pair.dst
			d.add(*pair.src)
			d.Removals += pair.src.Removals
			d.LastRemoval = latest(d.LastRemoval, pair.src.LastRemoval)
			d.Sessions += pair.src.Sessions
			d.SessionTotals.add(pair.src.SessionTotals)
		}
	}
	slices.SortStableFunc(out.Sessions, func(a, b Session) int { return a.Start.Compare(b.Start) })
	if n := len(out.Sessions); n > 0 {
		out.Tool, out.SchemaVersion = out.Sessions[n-1].Tool, out.Sessions[n-1].SchemaVersion
	}
	return out
}

// evict removes the least recently used cached files until the cache fits
// under max, never one of keep.
func evict(cache string, max int64, keep []remoteFile) {
	if max <= 0 {
		return
	}
	busy := map[string]bool{}
	for _, f := range keep {
		busy[filepath.Join(cache, filepath.FromSlash(f.key))] = true
	}
	type entry struct {
		p    string
		size int64
		at   time.Time
	}
	var all []entry
	var total int64
	filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error { //nolint:errcheck
		if err != nil || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		total += info.Size()
		if !busy[p] {
			all = append(all, entry{p, info.Size(), info.ModTime()})
		}
		return nil
	})
	slices.SortFunc(all, func(a, b entry) int { return a.at.Compare(b.at) })
	for _, e := range all {
		if total <= max {
			return
		}
		if os.Remove(e.p) == nil {
			total -= e.size
		}
	}
}

// List lists the keys of a recording's files in a bucket, by kind (flows,
// events and the derived kinds), in the partitions the window overlaps,
// and merges its writers' manifests (nil when there are none): what an
// engine that reads the bucket itself (ClickHouse's s3()) is given.
func (b *Bucket) List(ctx context.Context, kinds []string, since, until time.Time) (map[string][]string, *Manifest, error) {
	out := map[string][]string{}
	for _, kind := range kinds {
		files, err := b.listKind(ctx, kind, since, until)
		if err != nil {
			return nil, nil, err
		}
		for _, f := range files {
			out[kind] = append(out[kind], f.key)
		}
		slices.Sort(out[kind])
	}
	m, err := b.manifest(ctx)
	if err != nil {
		return nil, nil, err
	}
	return out, m, nil
}
