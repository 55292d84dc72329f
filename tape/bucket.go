package tape

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // azblob://
	_ "gocloud.dev/blob/fileblob"  // file://
	_ "gocloud.dev/blob/gcsblob"   // gs://
	_ "gocloud.dev/blob/s3blob"    // s3://
	"gocloud.dev/gcerrors"
)

// A recording can live in object storage: the same layout as on disk
// (layout.go) under a bucket prefix, its keys Hive-partitioned as its
// paths are, which BigQuery, ClickHouse, Spark and DuckDB read as they are.
// Buckets are opened by gocloud.dev/blob from URLs, with the library's URL
// parameters and each cloud's standard credential chain (AWS environment
// and profiles, Google Application Default Credentials / Workload
// Identity, Azure's environment):
//
//	s3://bucket/prefix?region=eu-west-1
//	s3://bucket/prefix?endpoint=http://127.0.0.1:7070&use_path_style=true&disable_https=true
//	gs://bucket/prefix
//	azblob://container/prefix   (AZURE_STORAGE_ACCOUNT, ...)
//	file:///srv/flows           (a directory, as a bucket: tests, NFS)
//
// One thing differs from a directory: each writer's manifest is its own
// object, manifests/<spool id>.json, because several recorders (a
// DaemonSet's pods) write one prefix and an object store has no lock for
// a read-modify-write of one shared manifest.json; readers merge them
// (MergeManifests).

// bucketSchemes are the URL schemes a recording's location may have.
var bucketSchemes = []string{"s3", "gs", "azblob", "file"}

// IsBucketURL reports whether a recording's location is a bucket URL
// rather than a directory.
func IsBucketURL(loc string) bool {
	scheme, _, ok := strings.Cut(loc, "://")
	if !ok {
		return false
	}
	for _, s := range bucketSchemes {
		if strings.EqualFold(scheme, s) {
			return true
		}
	}
	return false
}

// manifestsPrefix holds each writer's manifest in a bucket.
const manifestsPrefix = "manifests/"

// Bucket is a recording in object storage.
type Bucket struct {
	b *blob.Bucket
	// URL names it in messages, without credentials.
	URL string
}

// OpenBucket opens the bucket a URL names, its path as the recording's
// prefix (s3://bucket/a/b holds a/b/flows/...). It checks that the bucket
// exists and that the credentials may list it, so that a typo or a
// missing credential is one line at start, not a failure later.
func OpenBucket(ctx context.Context, loc string) (*Bucket, error) {
	u, err := url.Parse(loc)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a secret
		}
		return nil, fmt.Errorf("%s: not a bucket URL: %w", redactURL(loc), err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	name := redactURL(loc)
	var open string
	var prefix string
	switch u.Scheme {
	case "file":
		// The path is the directory; fileblob creates it on request.
		q := u.Query()
		if q.Get("create_dir") == "" {
			q.Set("create_dir", "true")
		}
		u.RawQuery = q.Encode()
		open = u.String()
	case "s3", "gs", "azblob":
		if u.Host == "" {
			return nil, fmt.Errorf("%s: no bucket name: use %s://BUCKET/PREFIX", name, u.Scheme)
		}
		prefix = strings.Trim(u.Path, "/")
		u.Path, u.RawPath = "", ""
		open = u.String()
	default:
		return nil, fmt.Errorf("%s: unknown scheme %q: use s3://, gs://, azblob:// or file://", name, u.Scheme)
	}
	b, err := blob.OpenBucket(ctx, open)
	if err != nil {
		// gocloud's message quotes the URL, parameters and all: said
		// again without them.
		msg := strings.NewReplacer(open, name, loc, name).Replace(err.Error())
		return nil, fmt.Errorf("%s: %s", name, msg)
	}
	if prefix != "" {
		b = blob.PrefixedBucket(b, path.Clean(prefix)+"/")
	}
	bk := &Bucket{b: b, URL: name}
	if err := bk.check(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return bk, nil
}

// check lists one key to tell a missing bucket and refused credentials
// apart from a working one.
func (b *Bucket) check(ctx context.Context) error {
	it := b.b.List(&blob.ListOptions{})
	_, err := it.Next(ctx)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	return b.explain("list", "", err)
}

// Close releases the bucket's clients.
func (b *Bucket) Close() error { return b.b.Close() }

// explain turns a store's error into one line that says what to do.
func (b *Bucket) explain(op, key string, err error) error {
	what := b.URL
	if key != "" {
		what = b.URL + " " + key
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		if key == "" {
			return refused("%s: the bucket does not exist (create it, or check the name and the region/endpoint)", b.URL)
		}
		return fmt.Errorf("%s: not found: %w", what, err)
	case gcerrors.PermissionDenied:
		return refused("%s: %s refused: check the credentials (AWS_ACCESS_KEY_ID/AWS_PROFILE, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*) and that they may %s here", what, op, op)
	}
	msg := err.Error()
	// S3-compatible servers answer a missing bucket and bad keys with
	// codes gocloud does not map.
	for _, c := range []struct{ code, say string }{
		{"NoSuchBucket", "the bucket does not exist (create it, or check the name and the region/endpoint)"},
		{"InvalidAccessKeyId", "the access key is not known to the store: check AWS_ACCESS_KEY_ID / the profile"},
		{"SignatureDoesNotMatch", "the secret key is wrong: check AWS_SECRET_ACCESS_KEY / the profile"},
		{"AccessDenied", "access denied: check the credentials and the bucket's policy"},
	} {
		if strings.Contains(msg, c.code) {
			return refused("%s: %s: %s", what, op, c.say)
		}
	}
	return fmt.Errorf("%s: %s: %w", what, op, err)
}

// ErrBucket marks errors that retrying will not fix: a missing bucket,
// refused credentials.
var ErrBucket = errors.New("object storage refused")

// refusedError is an ErrBucket whose message says it all.
type refusedError struct{ msg string }

func (e refusedError) Error() string        { return e.msg }
func (e refusedError) Is(target error) bool { return target == ErrBucket }

func refused(format string, a ...any) error { return refusedError{fmt.Sprintf(format, a...)} }

// BucketIdentity names the place a bucket URL points at whatever its
// spelling (parameters, their order, a region): scheme, bucket, prefix
// and endpoint. Spools and caches are keyed by it.
func BucketIdentity(loc string) string { return redactURL(loc) }

// DisplayName is how a document names a recording: a directory as given,
// a bucket URL as scheme://bucket/prefix, without its parameters (an
// endpoint, a region: the reader's, not the recording's) or user.
func DisplayName(loc string) string {
	if !IsBucketURL(loc) {
		return loc
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}

// redactURL names a bucket URL in messages: its scheme, bucket and
// prefix, and the endpoint of an S3-compatible server; never credentials
// (user:password@, keys in parameters), nor the other parameters.
func redactURL(loc string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	ep := u.Query().Get("endpoint")
	u.RawQuery = ""
	if e, err := url.Parse(ep); ep != "" && err == nil {
		e.User, e.RawQuery = nil, ""
		return u.String() + " (at " + e.String() + ")"
	}
	return u.String()
}
