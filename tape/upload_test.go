package tape_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/flowtape/flowtape/internal/testutil"
	"github.com/flowtape/flowtape/tape"
)

// bucketKeys lists a bucket's keys under prefix with their sizes.
func bucketKeys(t *testing.T, srv *testutil.S3Server, bucket, prefix string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	p := s3.NewListObjectsV2Paginator(srv.Client(srv.Access, srv.Secret), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			out[strings.TrimPrefix(aws.ToString(o.Key), prefix)] = aws.ToInt64(o.Size)
		}
	}
	return out
}

// spoolFiles lists a spool's finished files (keys) with their sizes.
func spoolFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error { //nolint:errcheck
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") || !strings.HasSuffix(p, ".parquet") {
			return nil
		}
		info, _ := d.Info()
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = info.Size()
		return nil
	})
	return out
}

// An uploader moves every finished file to the bucket under its path,
// waits through an outage of the store, keeps only the resume point in
// the spool, uploads the manifest, never overwrites a key holding other
// content; a fetch of a window brings back exactly the window's files,
// which read as the local recording does, from the cache the second time.
func TestUploadAndFetchS3(t *testing.T) {
	srv, _ := testutil.StartS3Bucket(t, "flows")
	ctx := context.Background()
	url := srv.URL("flows", "team/a")

	spool := t.TempDir()
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	writeSession(t, spool, "aaaa0001", flowsOver(start, 3, 3000, "a"), 400)
	tape.PutSessionForTest(t, spool, tape.Session{RecordingID: "aaaa0001", Status: "complete", Server: tape.ServerInfo{Address: "relay:4245"}, Totals: tape.Totals{Flows: 3000}})
	local := spoolFiles(t, spool)
	want, _ := readAll(t, spool)

	b, err := tape.OpenBucket(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var states []tape.UploadState
	u, err := tape.NewUploader(spool, b, tape.UploadOptions{Interval: 20 * time.Millisecond, State: func(s tape.UploadState) { states = append(states, s) }})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	// One process per spool: a second uploader is refused while the
	// first holds it.
	if u2, err := tape.NewUploader(spool, b, tape.UploadOptions{}); err == nil || !strings.Contains(err.Error(), "in use by another flowtape process") {
		if u2 != nil {
			u2.Close()
		}
		t.Errorf("a second uploader of the spool: %v, want refused", err)
	}

	// The store is down: nothing goes, everything waits, errors count.
	srv.Stop()
	st, err := u.Pass(ctx)
	if err == nil || st.WaitingFiles == 0 || st.Errors == 0 || st.Oldest.IsZero() {
		t.Fatalf("with the store down: state %+v, error %v; want files waiting and an error", st, err)
	}
	if got := spoolFiles(t, spool); len(got) != len(local) {
		t.Fatalf("the spool holds %d files with the store down, want all %d", len(got), len(local))
	}
	srv.Start()
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, err = u.Drain(dctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.WaitingFiles != 0 || st.WaitingBytes != 0 {
		t.Errorf("drained: %+v", st)
	}
	up := bucketKeys(t, srv, "flows", "team/a/")
	for k, n := range local {
		if up[k] != n {
			t.Errorf("%s: %d bytes in the store, %d in the spool", k, up[k], n)
		}
	}
	if !slices.ContainsFunc(keysOf(up), func(k string) bool { return strings.HasPrefix(k, "manifests/") && strings.HasSuffix(k, ".json") }) {
		t.Errorf("no manifest in the store: %v", keysOf(up))
	}
	// Only the flow files within the resume overlap of the last flow stay
	// (with their derived files), to resume from: here the newest alone.
	left := spoolFiles(t, spool)
	var leftFlows []string
	for k := range left {
		if strings.HasPrefix(k, "flows/") {
			leftFlows = append(leftFlows, k)
		}
	}
	var newest string
	for k := range local {
		if strings.HasPrefix(k, "flows/") && filepath.Base(k) > filepath.Base(newest) {
			newest = k
		}
	}
	if len(leftFlows) != 1 || leftFlows[0] != newest {
		t.Errorf("the spool keeps flow files %v, want only the newest %s", leftFlows, newest)
	}

	// A key holding other content is never overwritten: the file stays.
	writeSession(t, spool, "bbbb0002", flowsOver(start.Add(4*time.Hour), 1, 100, "b"), 1000)
	var clash string
	for k := range spoolFiles(t, spool) {
		if strings.Contains(k, "bbbb0002") && strings.HasPrefix(k, "events/") {
			clash = k
		}
	}
	if _, err := srv.Client(srv.Access, srv.Secret).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("flows"), Key: aws.String("team/a/" + clash), Body: strings.NewReader("someone else's")}); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Pass(ctx); err == nil || !strings.Contains(err.Error(), "other content") {
		t.Errorf("a taken key: error %v, want one saying the store holds other content", err)
	}
	if _, ok := spoolFiles(t, spool)[clash]; !ok {
		t.Errorf("%s left the spool though its key holds other content", clash)
	}
	if n := bucketKeys(t, srv, "flows", "team/a/")[clash]; n != int64(len("someone else's")) {
		t.Errorf("the taken key was overwritten (%d bytes)", n)
	}

	// Reading a window: only its partitions, then from the cache.
	cache := t.TempDir()
	f, err := tape.Fetch(ctx, b, tape.FetchOptions{CacheDir: cache, MaxBytes: 1 << 30, Since: start.Add(time.Hour), Until: start.Add(2*time.Hour - time.Nanosecond)})
	if err != nil {
		t.Fatal(err)
	}
	fetched := spoolFiles(t, f.Dir)
	for k := range fetched {
		if !strings.Contains(k, "hour=11") && k != tape.ManifestFile {
			t.Errorf("fetched %s for the window of hour 11", k)
		}
	}
	for k, n := range bucketKeys(t, srv, "flows", "team/a/") {
		if strings.Contains(k, "hour=11") && fetched[k] != n {
			t.Errorf("the window of hour 11 lacks %s (%d bytes; fetched %d)", k, n, fetched[k])
		}
	}
	f.Close()
	f, err = tape.Fetch(ctx, b, tape.FetchOptions{CacheDir: cache, MaxBytes: 1 << 30, Until: start.Add(3 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Cached == 0 || f.Cached == f.TotalFiles {
		t.Errorf("second fetch: %d of %d files from the cache, want hour 11's only", f.Cached, f.TotalFiles)
	}
	got, _ := readAll(t, f.Dir)
	if len(got) != len(want) {
		t.Fatalf("read %d responses from the store, %d from the local recording", len(got), len(want))
	}
	for i := range got {
		if got[i].String() != want[i].String() {
			t.Fatalf("response %d differs:\n%v\n%v", i, got[i], want[i])
		}
	}
	m, err := tape.ReadManifest(f.Dir)
	if err != nil || len(m.Sessions) == 0 || m.Sessions[0].RecordingID != "aaaa0001" {
		t.Errorf("manifest read from the store: %+v, %v", m, err)
	}
	if _, err := tape.Fetch(ctx, b, tape.FetchOptions{CacheDir: cache, Since: start.Add(30 * 24 * time.Hour)}); !errors.Is(err, tape.ErrNoFiles) {
		t.Errorf("a window with no files: %v", err)
	}
	if _, err := tape.Fetch(ctx, b, tape.FetchOptions{CacheDir: cache, MaxBytes: 1000}); err == nil || !strings.Contains(err.Error(), "--cache-size") {
		t.Errorf("a window bigger than the cache: %v", err)
	}
}

func keysOf(m map[string]int64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A full spool (the store down for long) drops its oldest files, and the
// manifest counts them as lost with their time range.
func TestSpoolDropsOldestWhenFull(t *testing.T) {
	spool := t.TempDir()
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	writeSession(t, spool, "aaaa0001", flowsOver(start, 3, 3000, "a"), 400)
	tape.PutSessionForTest(t, spool, tape.Session{RecordingID: "aaaa0001", Status: "complete", Totals: tape.Totals{Flows: 3000}})
	d, err := tape.OpenDir(spool)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	bound := duBytes(t, spool) / 2
	got, usage, err := d.Expire(tape.Retention{MaxBytes: bound, Spool: true}, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Flows == 0 || usage.Bytes > bound {
		t.Fatalf("dropped %+v, %d bytes left of a bound of %d", got, usage.Bytes, bound)
	}
	m, err := tape.ReadManifest(spool)
	if err != nil {
		t.Fatal(err)
	}
	if m.Dropped == nil || m.Dropped.Flows != got.Flows || m.Dropped.FirstFlow == nil || !m.Dropped.FirstFlow.Equal(start) {
		t.Errorf("manifest's spool_dropped %+v, want %d flows from %v", m.Dropped, got.Flows, start)
	}
	if m.Expired != nil {
		t.Errorf("a spool's drop counted as expired: %+v", m.Expired)
	}
}

// Bucket URLs that cannot be reached here (gs://, azblob://) and bad ones
// are recognised and refused with a line that says what is wrong.
func TestBucketURLs(t *testing.T) {
	for _, c := range []struct {
		loc    string
		bucket bool
	}{
		{"s3://b/p", true}, {"gs://b/p", true}, {"azblob://c/p", true}, {"file:///tmp/x", true}, {"S3://b", true},
		{"/data/flows", false}, {"flows", false}, {"http://x/y", false}, {"C:/x", false},
	} {
		if got := tape.IsBucketURL(c.loc); got != c.bucket {
			t.Errorf("IsBucketURL(%q) = %v", c.loc, got)
		}
	}
	ctx := context.Background()
	if _, err := tape.OpenBucket(ctx, "s3:///prefix"); err == nil || !strings.Contains(err.Error(), "no bucket name") {
		t.Errorf("s3 without a bucket: %v", err)
	}
	// gs:// without Google credentials: gocloud says so, named by URL.
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "none.json"))
	if _, err := tape.OpenBucket(ctx, "gs://flowtape-test/p"); err == nil || !strings.Contains(err.Error(), "gs://flowtape-test/p") {
		t.Errorf("gs without credentials: %v", err)
	}
	t.Setenv("AZURE_STORAGE_ACCOUNT", "")
	if _, err := tape.OpenBucket(ctx, "azblob://c/p"); err == nil || !strings.Contains(err.Error(), "azblob://c/p") {
		t.Errorf("azblob without an account: %v", err)
	}
	// A secret in a URL never reaches a message: not from a bad URL, nor
	// from gocloud's refusal of a parameter.
	for _, loc := range []string{"s3://b/p?endpont=http://key:s3cr3t@127.0.0.1:1", "s3://b/p\x7fs3cr3t", "s3://user:s3cr3t@b/p?bogus=1"} {
		if _, err := tape.OpenBucket(ctx, loc); err == nil || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("OpenBucket(%q): %v: want an error without the secret", loc, err)
		}
	}
	// file:// is a directory as a bucket.
	dir := t.TempDir()
	b, err := tape.OpenBucket(ctx, "file://"+dir+"/rec")
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
}
