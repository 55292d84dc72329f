package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/record"
	"github.com/flowtape/flowtape/tape"
)

// Recordings in object storage (tape/bucket.go): the writers' spool and
// the readers' cache, as flags, and their wiring.

// bucketHelp is the part of --help that the commands taking a bucket URL
// share.
const bucketHelp = `A recording may be a bucket URL instead of a directory, opened by gocloud.dev with
the cloud's usual credentials: s3://BUCKET/PREFIX (AWS_* variables, profiles; for an
S3-compatible server add ?endpoint=http://HOST:PORT&use_path_style=true&disable_https=true),
gs://BUCKET/PREFIX (Application Default Credentials, Workload Identity),
azblob://CONTAINER/PREFIX (AZURE_STORAGE_ACCOUNT and Azure's environment), file:///DIR.`

// userCache is the default root of the spools and caches.
func userCache(sub string) string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "flowtape", sub)
}

// spoolFlags are a writer's flags for a bucket.
type spoolFlags struct {
	spool        string
	drainTimeout time.Duration
}

// add declares the flags; a writer that ends only once its files are up
// (import) has no --drain-timeout.
func (s *spoolFlags) add(fl *pflag.FlagSet, drain bool) {
	fl.StringVar(&s.spool, "spool", "", "with -o URL: the local directory finished files wait in until the bucket confirms them (default: a directory per URL under "+userCache("spool")+")")
	if !drain {
		return
	}
	fl.DurationVar(&s.drainTimeout, "drain-timeout", defaults.UploadDrainTimeout, "with -o URL: how long to wait at the end for the spool to drain (what is left goes up at the next start)")
}

// dir is the spool of a bucket URL.
func (s spoolFlags) dir(url string) string {
	if s.spool != "" {
		return s.spool
	}
	sum := sha256.Sum256([]byte(tape.BucketIdentity(url)))
	return filepath.Join(userCache("spool"), hex.EncodeToString(sum[:8]))
}

// uploadRun is an uploader running beside a writer.
type uploadRun struct {
	u      *tape.Uploader
	b      *tape.Bucket
	spool  string
	stop   context.CancelFunc
	done   chan struct{}
	finish sync.Once
}

// startUpload opens the bucket (a missing bucket or refused credentials
// are one line, before anything is recorded) and uploads the spool in the
// background.
func startUpload(ctx context.Context, url, spool string, m *record.Metrics, log *slog.Logger) (*uploadRun, error) {
	b, err := tape.OpenBucket(ctx, url)
	if err != nil {
		return nil, err
	}
	u, err := tape.NewUploader(spool, b, tape.UploadOptions{State: m.Upload, Log: log})
	if err == nil {
		err = u.CheckWrite(ctx)
	}
	if err != nil {
		if u != nil {
			u.Close()
		}
		b.Close()
		return nil, err
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r := &uploadRun{u: u, b: b, spool: spool, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		u.Run(rctx)
	}()
	return r, nil
}

// close stops the background uploads and drains the spool for up to
// timeout; it says what is left.
func (r *uploadRun) close(w io.Writer, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return r.closeCtx(ctx, w)
}

// closeCtx stops the background uploads and drains the spool until ctx
// ends.
func (r *uploadRun) closeCtx(ctx context.Context, w io.Writer) error {
	var err error
	r.finish.Do(func() {
		r.stop()
		<-r.done
		var st tape.UploadState
		st, err = r.u.Drain(ctx)
		if err == nil {
			fmt.Fprintf(w, "uploaded %d files (%s) to %s; the spool %s is drained\n", st.UploadedFiles, humanBytes(st.UploadedBytes), r.b.URL, r.spool)
		} else {
			err = fmt.Errorf("%w; they go up at the next start with the same --spool", err)
		}
		r.u.Close()
		r.b.Close()
	})
	return err
}

// cacheFlags are a reader's flags for a bucket.
type cacheFlags struct {
	dir  string
	size string
}

func (c *cacheFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&c.dir, "cache-dir", userCache("cache"), "for a bucket URL: where files read from it are kept for the next run")
	fl.StringVar(&c.size, "cache-size", humanSize(defaults.CacheMaxBytes), "for a bucket URL: the most the cache keeps (the least recently used files go first)")
}

// localPaths turns the bucket URLs among paths into local directories of
// the window's files (fetched into the cache, with progress on a
// terminal); the caller closes what it returns when done.
func (c cacheFlags) localPaths(cmd *cobra.Command, paths []string, since, until time.Time) ([]string, func(), error) {
	var fetched []*tape.Fetched
	cleanup := func() {
		for _, f := range fetched {
			f.Close()
		}
	}
	max, err := parseSize(c.size)
	if err != nil {
		return nil, nil, usagef("--cache-size: %v", err)
	}
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		if !tape.IsBucketURL(p) {
			out = append(out, p)
			continue
		}
		b, err := tape.OpenBucket(cmd.Context(), p)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		line := newStatusLine(cmd.ErrOrStderr(), "fetching")
		f, err := tape.Fetch(cmd.Context(), b, tape.FetchOptions{CacheDir: c.dir, MaxBytes: max, Since: since, Until: until,
			Progress: func(p tape.FetchProgress) {
				line.show(fmt.Sprintf("fetching %s: %d/%d files, %s of %s (%d from the cache)", b.URL, p.Files, p.TotalFiles, humanBytes(p.Bytes), humanBytes(p.TotalBytes), p.Cached),
					"files", p.Files, "total_files", p.TotalFiles, "bytes", p.Bytes, "cached", p.Cached)
			}})
		line.done()
		b.Close()
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		fetched = append(fetched, f)
		out = append(out, f.Dir)
	}
	return out, cleanup, nil
}
