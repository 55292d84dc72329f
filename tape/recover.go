package tape

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/proto"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/schema"
)

// RecoveryStats say what Recover did.
type RecoveryStats struct {
	Files     int   `json:"files"`      // Parquet files rebuilt from WALs
	Rows      int64 `json:"rows"`       // rows in them
	TornBytes int64 `json:"torn_bytes"` // bytes of records cut off by the crash
	Removed   int   `json:"removed"`    // leftovers removed (already published, or empty)
}

// Recover turns what a killed recorder left in DIR into valid Parquet
// files: every segment's WAL becomes the segment's file. It is safe to run
// on a directory no recorder is writing to, any number of times.
func Recover(dir, writer string) (RecoveryStats, error) {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return RecoveryStats{}, fmt.Errorf("%s: not a recording directory", dir)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return RecoveryStats{}, err
	}
	defer unlock()
	return recoverLocked(dir, writer, defaults.LiveGrace)
}

// recoverLocked recovers dir, whose lock the caller holds. A segment that
// cannot be recovered does not stop the others.
// Files a compaction replaced go once they have been replaced for grace
// (a negative grace leaves them to the caller).
func recoverLocked(dir, writer string, grace time.Duration) (RecoveryStats, error) {
	var st RecoveryStats
	var errs []error
	if err := removeStaging(dir); err != nil {
		errs = append(errs, err)
	}
	for _, sub := range kinds {
		wals, tmps, err := listHidden(filepath.Join(dir, sub))
		if err != nil {
			return st, err
		}
		for _, wal := range wals {
			var err error
			if sub == schema.KindFlows {
				err = recoverSegment(schema.Flows, func() *flowpb.Flow { return &flowpb.Flow{} }, wal, writer, &st)
			} else {
				err = recoverSegment(schema.Events, func() *observerpb.GetFlowsResponse { return &observerpb.GetFlowsResponse{} }, wal, writer, &st)
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
		// Pieces of files published before a crash cut the cleanup short.
		if err := removeSuperseded(filepath.Join(dir, sub), &st); err != nil {
			errs = append(errs, err)
		}
		parts, err := partitionDirs(filepath.Join(dir, sub))
		if err != nil {
			errs = append(errs, err)
		}
		for _, part := range parts {
			if grace < 0 {
				break
			}
			var cs CompactStats
			errs = append(errs, removeReplaced(part, CompactOptions{Grace: grace, Now: time.Now}, &cs))
			st.Removed += cs.Removed
		}
		for _, tmp := range tmps {
			// A .tmp without its WAL was never complete and holds nothing
			// the WAL did not (the WAL is removed only after publishing).
			if _, err := os.Stat(strings.TrimSuffix(tmp, tmpSuffix) + walSuffix); errors.Is(err, os.ErrNotExist) {
				if err := os.Remove(tmp); err == nil {
					st.Removed++
				}
			}
		}
	}
	return st, errors.Join(errs...)
}

func recoverSegment[M proto.Message](t *schema.Table[M], newMsg func() M, wal, writer string, st *RecoveryStats) error {
	final := finalFromHidden(wal, walSuffix)
	tmp := hiddenPath(final, tmpSuffix)
	if _, err := os.Stat(final); err == nil {
		// Published before the crash; only the cleanup was missed.
		st.Removed++
		os.Remove(tmp)
		return errors.Join(removePieces(final, st), os.Remove(wal))
	}
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, fileMode)
	if err != nil {
		return fmt.Errorf("recover %s: %w", final, err)
	}
	meta := map[string]string{}
	if id, ok := parseFileName(final); ok {
		meta[MetaRecordingID] = id
	}
	var rows, torn int64
	err = writeFile(t, f, WriterOptions{Writer: writer, Metadata: meta}, func(write func(M) error) error {
		var err error
		rows, torn, err = readWAL(wal, func(b []byte) error {
			m := newMsg()
			if err := proto.Unmarshal(b, m); err != nil {
				return fmt.Errorf("recover %s: corrupt record: %w", wal, err)
			}
			return write(m)
		})
		return err
	})
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("recover %s: %w", final, err)
	}
	st.TornBytes += torn
	if rows == 0 {
		st.Removed++
		os.Remove(tmp)
		return os.Remove(wal)
	}
	if err := publish(tmp, final); err != nil {
		return err
	}
	st.Files++
	st.Rows += rows
	return errors.Join(removePieces(final, st), os.Remove(wal))
}

// removeSuperseded removes the pieces under dir whose segment file is
// published.
func removeSuperseded(dir string, st *RecoveryStats) error {
	var errs []error
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		final, ok := pieceOf(p)
		if d.IsDir() || !ok {
			return nil
		}
		if _, err := os.Stat(final); err == nil {
			if err := os.Remove(p); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
			} else {
				st.Removed++
			}
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}

// removePieces removes the pieces a live segment published before the
// crash: its file, now published, holds their rows (see live.go).
func removePieces(final string, st *RecoveryStats) error {
	n, err := removePiecesOf(final)
	st.Removed += n
	return err
}
