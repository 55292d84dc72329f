package analyze

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// chSource is where ClickHouse reads a recording: its files by kind, as
// ClickHouse addresses them (local paths for file(), https URLs for s3()
// and gcs()), and the manifests' facts.
type chSource struct {
	names []string // the locations as given, for messages
	// files by kind; for each, the table function that reads them
	files    map[string][]string
	fn       func(glob string) string
	sessions int              // the recording sessions of the flow files
	mans     []*tape.Manifest // the recordings' manifests
	secret   string           // the secret key the table function is given, if any
	token    string           // the session token it is given, if any
	// derivedErr says why the derived files cannot be read (missing):
	// the analyses fail with it, queries of the flows alone run.
	derivedErr error
}

var chKinds = append([]string{schema.KindFlows, schema.KindEvents}, schema.DerivedKinds...)

func newCHSource(ctx context.Context, locs []string, since, until time.Time, o ClickHouseOptions) (*chSource, error) {
	s := &chSource{names: locs, files: map[string][]string{}}
	var buckets, dirs []string
	for _, l := range locs {
		if tape.IsBucketURL(l) && !strings.HasPrefix(strings.ToLower(l), "file://") {
			buckets = append(buckets, l)
		} else {
			dirs = append(dirs, strings.TrimPrefix(l, "file://"))
		}
	}
	switch {
	case len(buckets) > 0 && len(dirs) > 0:
		return nil, fmt.Errorf("%s: give recordings in buckets or in directories, not both, to ClickHouse", strings.Join(locs, " "))
	case len(dirs) > 0:
		if o.Server != "" {
			return nil, fmt.Errorf("%s: a ClickHouse server reads recordings in object storage: give their s3:// or gs:// URL, "+
				"or use --engine chdb (ClickHouse in this process) for a directory", strings.Join(dirs, " "))
		}
		files, derived, derivedErr, err := findFiles(dirs)
		if err != nil {
			return nil, err
		}
		s.derivedErr = derivedErr
		for _, f := range files.Flows {
			// ClickHouse would read these characters as a glob.
			if strings.ContainsAny(filepath.Dir(f), "*?{}") {
				return nil, fmt.Errorf("%s: ClickHouse reads paths as globs: move the recording to a directory without * ? { } in its path", filepath.Dir(f))
			}
		}
		if err := checkFlowVersions(files.Flows); err != nil {
			return nil, err
		}
		s.files[schema.KindFlows], s.files[schema.KindEvents] = absAll(files.Flows), absAll(files.Events)
		for k, v := range derived {
			s.files[k] = absAll(v)
		}
		s.mans = filesManifests(files)
		s.fn = func(glob string) string { return fmt.Sprintf("file(%s, Parquet)", chQuote(glob)) }
	default:
		if len(buckets) > 1 {
			return nil, fmt.Errorf("%s: ClickHouse reads one bucket URL at a time", strings.Join(buckets, " "))
		}
		b, err := tape.OpenBucket(ctx, buckets[0])
		if err != nil {
			return nil, err
		}
		defer b.Close()
		keys, m, err := b.List(ctx, chKinds, since, until)
		if err != nil {
			return nil, err
		}
		if len(keys[schema.KindFlows])+len(keys[schema.KindEvents]) == 0 {
			return nil, fmt.Errorf("%s: no recording files%s (expected flows/date=.../hour=.../*.parquet from flowtape record -o URL or import -o URL)",
				b.URL, windowNote(since, until))
		}
		if err := checkDerivedKeys(b.URL, keys); err != nil {
			return nil, err
		}
		base, fn, err := chObjectStore(buckets[0], o.Cluster)
		s.secret, s.token = os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")
		if err != nil {
			return nil, err
		}
		for k, v := range keys {
			for _, key := range v {
				s.files[k] = append(s.files[k], base+"/"+key)
			}
		}
		if m != nil {
			s.mans = append(s.mans, m)
		}
		s.fn = fn
	}
	s.sessions = tape.Sessions(s.files[schema.KindFlows])
	return s, nil
}

func windowNote(since, until time.Time) string {
	if since.IsZero() && until.IsZero() {
		return ""
	}
	return " in the window"
}

func absAll(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		if a, err := filepath.Abs(p); err == nil {
			p = a
		}
		out[i] = p
	}
	return out
}

// chObjectStore maps a bucket URL (tape.OpenBucket's) to the https base
// of its objects and the table function that reads them with the
// credentials of the environment (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, and AWS_SESSION_TOKEN; for gs://, HMAC keys in
// the same variables), else ClickHouse's own (its server's
// configuration). Objects are addressed path-style under an endpoint and
// virtual-host-style on AWS.
func chObjectStore(loc, cluster string) (base string, fn func(string) string, err error) {
	u, err := url.Parse(loc)
	if err != nil {
		return "", nil, fmt.Errorf("%s: not a bucket URL", tape.BucketIdentity(loc))
	}
	q := u.Query()
	prefix := strings.Trim(u.Path, "/")
	join := func(parts ...string) string {
		var keep []string
		for _, p := range parts {
			if p != "" {
				keep = append(keep, p)
			}
		}
		return strings.Join(keep, "/")
	}
	function := "s3"
	switch strings.ToLower(u.Scheme) {
	case "s3":
		switch ep := q.Get("endpoint"); {
		case ep != "":
			if !strings.Contains(ep, "://") {
				scheme := "https"
				if q.Get("disable_https") == "true" {
					scheme = "http"
				}
				ep = scheme + "://" + ep
			}
			base = join(strings.TrimRight(ep, "/"), u.Host, prefix)
		default:
			region := q.Get("region")
			if region == "" {
				region = os.Getenv("AWS_REGION")
			}
			host := u.Host + ".s3.amazonaws.com"
			if region != "" {
				host = u.Host + ".s3." + region + ".amazonaws.com"
			}
			base = join("https://"+host, prefix)
		}
	case "gs":
		function = "gcs"
		base = join("https://storage.googleapis.com", u.Host, prefix)
	default:
		return "", nil, fmt.Errorf("%s: flowtape maps s3:// and gs:// to ClickHouse; read %s:// with ClickHouse's azureBlobStorage() yourself (docs/engines.md)",
			tape.BucketIdentity(loc), u.Scheme)
	}
	key, secret, token := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")
	fn = func(glob string) string {
		args := []string{chQuote(glob)}
		if key != "" && secret != "" {
			args = append(args, chQuote(key), chQuote(secret))
			if token != "" {
				args = append(args, chQuote(token))
			}
		}
		args = append(args, "'Parquet'")
		if cluster != "" {
			return fmt.Sprintf("s3Cluster(%s, %s)", chQuote(cluster), strings.Join(args, ", "))
		}
		return fmt.Sprintf("%s(%s)", function, strings.Join(args, ", "))
	}
	return base, fn, nil
}

// table is the SELECT of a kind's table: its files as one glob per
// directory of files (ClickHouse globs match within a path component),
// each uuid once where several recording sessions wrote the recording,
// as the DuckDB views read them (engine.go, derived.go).
func (s *chSource) table(kind string) string {
	files := s.files[kind]
	if len(files) == 0 {
		return s.empty(kind)
	}
	byDir := map[string][]string{}
	var dirs []string
	for _, f := range files {
		// (not path.Dir, which would make http:// of a URL http:/)
		i := strings.LastIndexByte(f, '/')
		d, name := f[:i], f[i+1:]
		if _, ok := byDir[d]; !ok {
			dirs = append(dirs, d)
		}
		byDir[d] = append(byDir[d], strings.TrimSuffix(name, ".parquet"))
	}
	slices.Sort(dirs)
	cols := "*"
	if kind == schema.KindFlows {
		// Flow files of schema 1.4 on do not store http_request_id
		// (schema.ViewColumns); it is computed for every file, as the
		// stored one was: EXCEPT, unlike DuckDB's EXCLUDE, passes over a
		// column a file lacks, and no file's version need be read (a
		// bucket's objects are listed, not opened).
		cols = "* EXCEPT (http_request_id), ft_request_id(http_headers) AS http_request_id"
	}
	if kind == schema.KindTraffic {
		// the recording session whose file counted the flows
		cols = "* EXCEPT (tape_session, _path), if(tape_session = '', _path, tape_session) AS session"
	}
	var parts []string
	for _, d := range dirs {
		names := byDir[d]
		glob := d + "/" + names[0] + ".parquet"
		if len(names) > 1 {
			glob = d + "/{" + strings.Join(names, ",") + "}.parquet"
		}
		from := s.fn(glob)
		if kind == schema.KindTraffic {
			from = fmt.Sprintf("(SELECT *, extract(_file, '^[0-9]{8}T[0-9]{6}Z-([^-]+)-[0-9]+') AS tape_session, _path FROM %s)", from)
		}
		parts = append(parts, fmt.Sprintf("SELECT %s FROM %s", cols, from))
	}
	q := strings.Join(parts, "\nUNION ALL\n")
	if s.sessions > 1 {
		switch kind {
		case schema.KindFlows, schema.KindRequests:
			q = fmt.Sprintf("SELECT * FROM (%s) WHERE uuid IS NULL\nUNION ALL\nSELECT * FROM (%s) WHERE uuid IS NOT NULL ORDER BY time LIMIT 1 BY uuid", q, q)
		case schema.KindConnections:
			q = fmt.Sprintf("SELECT DISTINCT * FROM (%s)", q)
		}
	}
	return q
}

// empty is a kind's table without rows, its columns typed as the files'.
func (s *chSource) empty(kind string) string {
	var cols []string
	for _, c := range tableColumns(kind) {
		cols = append(cols, fmt.Sprintf("CAST(%s AS %s) AS `%s`", chEmptyValue(c[1]), chType(c[1]), c[0]))
	}
	if kind == schema.KindTraffic {
		cols = append(cols, "'' AS session")
	}
	return "SELECT " + strings.Join(cols, ", ") + " WHERE 0"
}

// chType is the ClickHouse type of a column of DuckDB type t, as
// ClickHouse reads the Parquet files.
func chType(t string) string {
	switch {
	case strings.HasSuffix(t, "[]"):
		return "Array(" + chType(strings.TrimSuffix(t, "[]")) + ")"
	case strings.HasPrefix(t, "STRUCT"):
		return "Tuple(key Nullable(String), value Nullable(String))"
	}
	m := map[string]string{"VARCHAR": "String", "BLOB": "String", "BOOLEAN": "Bool", "UINTEGER": "UInt32", "INTEGER": "Int32",
		"UBIGINT": "UInt64", "BIGINT": "Int64", "TIMESTAMP_NS": "DateTime64(9, 'UTC')", "UUID": "UUID", "DOUBLE": "Float64"}
	if ct, ok := m[t]; ok {
		return "Nullable(" + ct + ")"
	}
	return "Nullable(String)"
}

func chEmptyValue(t string) string {
	if strings.HasSuffix(t, "[]") || strings.HasPrefix(t, "STRUCT") {
		return "[]"
	}
	return "NULL"
}

func (s *chSource) noFlows() bool { return len(s.files[schema.KindFlows]) == 0 }

// filtered: a session was recorded with filters (filteredCapture).
func (s *chSource) filtered() bool { return filteredCapture(s.mans) }

// losses are what retention removed and a full spool dropped
// (manifestLosses).
func (s *chSource) losses() (expired, dropped tape.Expired) { return manifestLosses(s.mans) }

// checkFlowVersions refuses flow files written before the columns the
// ClickHouse views read existed (source_endpoint, ...: schema 1.2):
// DuckDB computes them for such files (engine.go, addedColumns), the
// ClickHouse SQL does not.
func checkFlowVersions(files []string) error {
	need := addedColumns[len(addedColumns)-1].minor
	for _, f := range files {
		info, err := tape.Stat(f)
		if err != nil {
			return err
		}
		if _, m, ok := strings.Cut(info.SchemaVersion, "."); ok {
			if v, err := strconv.Atoi(m); err == nil && v < need {
				return fmt.Errorf("%s: a flow file of schema %s: ClickHouse reads flow files of schema %d.%d and newer "+
					"(DuckDB computes the columns older files lack): use --engine duckdb", f, info.SchemaVersion, schema.MajorVersion, need)
			}
		}
	}
	return nil
}

// checkDerivedKeys says which derived file of a flow file a bucket lacks,
// as findFiles does for a directory: an analysis must not count fewer
// files' requests than flows.
func checkDerivedKeys(bucket string, keys map[string][]string) error {
	for _, kind := range schema.DerivedKinds {
		have := map[string]bool{}
		for _, k := range keys[kind] {
			have[k] = true
		}
		for _, f := range keys[schema.KindFlows] {
			want := kind + strings.TrimPrefix(f, schema.KindFlows)
			if !have[want] {
				return fmt.Errorf("%s/%s is missing (a derived file of %s): run flowtape reindex on the recording "+
					"(or wait for its writer to upload it), or use --engine duckdb", bucket, want, f)
			}
		}
	}
	return nil
}
