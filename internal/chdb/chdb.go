// Package chdb runs SQL on chDB, ClickHouse as a library (libchdb.so),
// loaded when first used: flowtape builds and runs without it, and only
// --engine chdb needs it.
//
// The C API (chdb.h, chDB 3 and later): chdb_connect(argc, argv) returns
// a pointer to a connection (a struct of one pointer, passed by value to
// chdb_query); chdb_query(conn, sql, format) returns a result whose
// buffer, length and error the caller reads before
// chdb_destroy_query_result frees it. A process holds one connection:
// chDB's engine is a process-wide singleton, so queries are serialized.
//
// The library is opened RTLD_LOCAL: DuckDB is linked into the same
// binary, and both bundle libraries (re2, zstd, ...) whose symbols must
// not resolve to each other's.
package chdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// EnvLibPath names the library to load (as chdb-go reads it).
const EnvLibPath = "CHDB_LIB_PATH"

// npmLib is where npm puts the library of @chdb/lib-linux-x64-gnu
// (npm install @chdb/lib-linux-x64-gnu), below a node_modules directory.
var npmLib = filepath.Join("node_modules", "@chdb", "lib-linux-x64-gnu", "libchdb.so")

// Candidates are the paths tried in order when CHDB_LIB_PATH is unset:
// the npm package below the working directory, below flowtape's cache
// (where make test installs it), then the usual library directories.
func Candidates() []string {
	out := []string{npmLib}
	if dir, err := os.UserCacheDir(); err == nil {
		out = append(out, filepath.Join(dir, "flowtape-chdb", npmLib))
	}
	return append(out, "/usr/local/lib/libchdb.so", "/usr/lib/libchdb.so")
}

// ErrNoLibrary is returned when no libchdb.so is found.
var ErrNoLibrary = errors.New("libchdb.so not found: set " + EnvLibPath +
	" to its path, or install it with npm install @chdb/lib-linux-x64-gnu (in this directory or " +
	"under ~/.cache/flowtape-chdb), or use --engine duckdb")

// Find returns the library's path.
func Find() (string, error) {
	if p := os.Getenv(EnvLibPath); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvLibPath, p, err)
		}
		return p, nil
	}
	for _, p := range Candidates() {
		if _, err := os.Stat(p); err == nil {
			return filepath.Abs(p)
		}
	}
	return "", ErrNoLibrary
}

type connection struct{ internal unsafe.Pointer }

type result struct{ _ byte }

// The library's functions, registered by load.
var (
	connect       func(argc int, argv []*byte) *connection
	query         func(conn unsafe.Pointer, query string, format string) *result
	resultBuffer  func(r *result) unsafe.Pointer
	resultLength  func(r *result) uint
	resultError   func(r *result) unsafe.Pointer
	destroyResult func(r *result)
	closeConn     func(c *connection)
)

var (
	mu      sync.Mutex
	conn    *connection
	loadErr error
	loaded  bool
)

// load opens the library, once per process, and connects where no session
// is open (the first query, and the first after Close).
func load() error {
	if !loaded {
		loaded = true
		loadErr = openLibrary()
	}
	if loadErr != nil || conn != nil {
		return loadErr
	}
	// An in-memory session; argv[0] is the program's name.
	arg := append([]byte("clickhouse"), 0)
	c := connect(1, []*byte{&arg[0]})
	if c == nil || c.internal == nil {
		return errors.New("chdb: chdb_connect failed")
	}
	conn = c
	return nil
}

// Close ends the session, which removes the directory chDB made for it
// (clickhouse-embedded-<uuid> in the system's temp directory): a process
// that never closed left one behind at each run. The next Query starts a
// new session (about 25 ms). A query still running (one whose context
// ended: chDB cannot cancel it) keeps its session, and its directory
// stays: Close does not wait for it, so that an interrupted command exits
// at once.
func Close() {
	if !mu.TryLock() {
		return
	}
	defer mu.Unlock()
	if conn != nil {
		closeConn(conn)
		conn = nil
	}
}

// openLibrary opens libchdb.so and binds its functions.
func openLibrary() error {
	libPath, err := Find()
	if err != nil {
		return err
	}
	lib, err := purego.Dlopen(libPath, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return fmt.Errorf("load %s: %w", libPath, err)
	}
	for name, fn := range map[string]any{
		"chdb_connect": &connect, "chdb_query": &query, "chdb_result_buffer": &resultBuffer,
		"chdb_result_length": &resultLength, "chdb_result_error": &resultError,
		"chdb_destroy_query_result": &destroyResult, "chdb_close_conn": &closeConn,
	} {
		sym, err := purego.Dlsym(lib, name)
		if err != nil {
			return fmt.Errorf("%s: no %s (chDB 3 or later is needed): %w", libPath, name, err)
		}
		purego.RegisterFunc(fn, sym)
	}
	return nil
}

// Query runs one statement and returns its output in format (a
// ClickHouse output format, e.g. JSONCompactEachRowWithNamesAndTypes).
// chDB cannot cancel a running query: when ctx ends first, Query returns
// ctx's error at once and the query runs on to its end in the background
// (a command that was interrupted exits; the next Query waits for it).
func Query(ctx context.Context, sql, format string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type answer struct {
		out []byte
		err error
	}
	done := make(chan answer, 1)
	go func() {
		out, err := run(ctx, sql, format)
		done <- answer{out, err}
	}()
	select {
	case a := <-done:
		return a.out, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func run(ctx context.Context, sql, format string) ([]byte, error) {
	mu.Lock()
	defer mu.Unlock()
	// A query whose context ended while it waited is not run: its caller
	// has gone, and may have closed the session (Close), which running it
	// would open again and leave behind.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := load(); err != nil {
		return nil, err
	}
	r := query(conn.internal, sql, format)
	if r == nil {
		return nil, errors.New("chdb: the query returned no result")
	}
	defer destroyResult(r)
	if p := resultError(r); p != nil {
		if msg := cString(p); msg != "" {
			return nil, errors.New(msg)
		}
	}
	n := resultLength(r)
	if n == 0 {
		return nil, nil
	}
	return append([]byte(nil), unsafe.Slice((*byte)(resultBuffer(r)), n)...), nil
}

func cString(p unsafe.Pointer) string {
	n := 0
	for *(*byte)(unsafe.Add(p, n)) != 0 {
		n++
	}
	return string(unsafe.Slice((*byte)(p), n))
}
