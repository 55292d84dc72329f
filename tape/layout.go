// Package tape is the recording on disk: the directory layout and its file
// names, the lock and the manifest, Parquet file writing and reading,
// finding a recording's files and reading them in time order (Scan), the
// crash-safe writer of a live recorder (segment + write-ahead log), the
// staged writer of an import, and recovery after a crash.
//
// The row format itself (columns, versions, the flow <-> row codec) is
// package schema's; tape only stores rows. Record and import write through
// the Writer interface; analyze and replay read through FindFiles, Stat,
// ReadFile, ReadColumns and Scan.
package tape

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowtape/flowtape/schema"
)

// A recording directory holds one subdirectory per row kind, named after
// the kind, Hive-partitioned by the UTC hour of its rows, so that DuckDB
// (hive_partitioning) and flowtape's own readers skip hours a query does
// not need:
//
//	DIR/manifest.json    every session (recorder run, import) that wrote here
//	DIR/.lock            held by the one writer at a time
//	DIR/flows/date=2026-11-25/hour=13/20261125T130102Z-<recording id>-000001.parquet
//	DIR/events/date=2026-11-25/hour=13/...parquet
//
// A file is named after the time of its first row, the recording id of the
// session that wrote it and the session's count of files. Names starting
// with "." are being written (.NAME.parquet.tmp and .NAME.parquet.wal, see
// segment), or staged (.staging-<id>/, see Staged); readers ignore them.
// Two kinds of name stand for rows another file holds too, and readers
// (FindFiles) take them by rule: NAME.p000001.parquet, a live segment's
// piece, until NAME.parquet exists (see live.go); and the files that a
// compacted TIME-<id>-000001-000012.parquet names in its hidden note
// .TIME-<id>-000001-000012.parquet.replaces, once that file exists (see
// Compact).

// Names in a recording directory.
const (
	// ManifestFile is the name of a recording's manifest.
	ManifestFile = "manifest.json"
	lockFile     = ".lock"
	// stagingPrefix names the hidden directory a staged session writes to.
	stagingPrefix = ".staging-"
	parquetSuffix = ".parquet"
	tmpSuffix     = ".tmp"
	walSuffix     = ".wal"
)

// File and directory modes: flows carry IPs, URLs and headers, so nothing a
// recording holds is readable by other users.
const (
	dirMode  = 0o700
	fileMode = 0o600
)

// kinds are the row kinds, each a subdirectory of the recording.
var kinds = []string{schema.KindFlows, schema.KindEvents}

// recordingDir checks that dir is a recording directory before a command
// that changes one (recover, compact, reindex) locks it: one that a
// writer has held (its lock, a session's lock or staging directory) or
// that holds a manifest or rows. Pointed at the wrong directory (an empty
// one, the recording's parent) such a command would otherwise report
// having done nothing and leave a lock file behind.
func recordingDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: not a recording directory (it does not exist)", dir)
		}
		return fmt.Errorf("%s: not a recording directory: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == ManifestFile, name == lockFile,
			strings.HasPrefix(name, sessionLockPrefix) && strings.HasSuffix(name, ".lock"),
			e.IsDir() && (slices.Contains(kinds, name) || strings.HasPrefix(name, stagingPrefix)):
			return nil
		}
	}
	return fmt.Errorf("%s: not a flowtape recording (no %s, flows/ or events/): give the directory flowtape record or import wrote to", dir, ManifestFile)
}

// Partition is the partition directory of rows at t, relative to the kind's
// directory.
func Partition(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("date=%s/hour=%02d", t.Format("2006-01-02"), t.Hour())
}

// partitionWindow returns the hour a partition path (any path containing
// date=YYYY-MM-DD/hour=HH) covers.
func partitionWindow(path string) (start time.Time, ok bool) {
	var date, hour string
	for _, part := range strings.Split(filepath.ToSlash(path), "/") {
		if v, found := strings.CutPrefix(part, "date="); found {
			date = v
		}
		if v, found := strings.CutPrefix(part, "hour="); found {
			hour = v
		}
	}
	if date == "" || hour == "" {
		return time.Time{}, false
	}
	t, err := time.Parse("2006-01-02 15", date+" "+hour)
	return t, err == nil
}

// PartitionHour is the hour of the date=/hour= partition a file lies in.
func PartitionHour(path string) (time.Time, bool) { return partitionWindow(path) }

// FileName is the name of a session's seq-th file, whose first row is at t.
func FileName(t time.Time, recordingID string, seq int) string {
	return fmt.Sprintf("%s-%s-%06d%s", t.UTC().Format("20060102T150405Z"), recordingID, seq, parquetSuffix)
}

// NewRecordingID returns a random recording id: what tells the files of
// one session from those of another in one directory.
func NewRecordingID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NodeRecordingID is a recording id for a recorder of one node (record
// --per-node): random, and the node's name, so that recorders of two
// nodes writing one bucket (a DaemonSet's pods) never name a file alike,
// whatever their random parts. The name's letters and digits are kept,
// others become '_' (file names split at '-'); a long name is cut and a
// hash of it added.
func NodeRecordingID(node string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(node) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	if len(name) > 64 {
		sum := sha256.Sum256([]byte(node))
		name = name[:min(len(name), 48)] + "_" + hex.EncodeToString(sum[:4])
	}
	return NewRecordingID() + "_" + name
}

// compactedName is the name of the file that holds the rows of a
// session's files first to last of one partition (see Compact).
func compactedName(t time.Time, recordingID string, first, last int) string {
	return fmt.Sprintf("%s-%s-%06d-%06d%s", t.UTC().Format("20060102T150405Z"), recordingID, first, last, parquetSuffix)
}

// parseFileName returns the recording id in a file name FileName,
// compactedName or pieceName made (the directories of path do not
// matter); ok is false for other names.
func parseFileName(path string) (recordingID string, ok bool) {
	if final, isPiece := pieceOf(path); isPiece {
		path = final
	}
	return parseSegmentName(path)
}

// parseSegmentName is parseFileName for the names of files that are not
// pieces.
func parseSegmentName(path string) (recordingID string, ok bool) {
	parts := strings.Split(strings.TrimSuffix(filepath.Base(path), parquetSuffix), "-")
	if (len(parts) != 3 && len(parts) != 4) || parts[1] == "" {
		return "", false
	}
	if _, err := time.Parse("20060102T150405Z", parts[0]); err != nil {
		return "", false
	}
	for _, seq := range parts[2:] {
		if _, err := strconv.Atoi(seq); err != nil {
			return "", false
		}
	}
	return parts[1], true
}

// RecordingDir is the recording directory of a file in a recording's
// layout (DIR/KIND/date=.../hour=.../NAME.parquet), and its kind.
func RecordingDir(file string) (dir, kind string, ok bool) {
	part := filepath.Dir(file)
	hour, date := filepath.Base(part), filepath.Base(filepath.Dir(part))
	if !strings.HasPrefix(hour, "hour=") || !strings.HasPrefix(date, "date=") {
		return "", "", false
	}
	kindDir := filepath.Dir(filepath.Dir(part))
	return filepath.Dir(kindDir), filepath.Base(kindDir), true
}

// Sessions counts the sessions (recording ids) files come from; a file not
// named by FileName counts as a session of its own.
func Sessions(files []string) int {
	ids := map[string]bool{}
	for _, f := range files {
		ids[SessionOf(f)] = true
	}
	return len(ids)
}

// SessionOf is the session (recording id) a file's name says it comes
// from; a file whose name says none is a session of its own, named by
// its path.
func SessionOf(path string) string {
	if id, ok := parseFileName(path); ok {
		return id
	}
	return path
}

// hiddenPath is where the file to be published as final is written: a
// hidden name beside it, with suffix.
func hiddenPath(final, suffix string) string {
	return filepath.Join(filepath.Dir(final), "."+filepath.Base(final)+suffix)
}

// finalFromHidden is the published name of a hidden .wal or .tmp file.
func finalFromHidden(p, suffix string) string {
	return filepath.Join(filepath.Dir(p), strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "."), suffix))
}

// hidden reports whether a name is one readers skip.
func hidden(name string) bool { return strings.HasPrefix(name, ".") }
