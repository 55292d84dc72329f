package tape

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
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
	if err := recordingDir(dir); err != nil {
		return RecoveryStats{}, err
	}
	unlock, err := lockDir(dir, syscall.LOCK_EX)
	if err != nil {
		return RecoveryStats{}, err
	}
	defer unlock()
	return recoverLocked(dir, writer, defaults.LiveGrace, nil)
}

// recoverLocked recovers dir, whose lock the caller holds. A segment that
// cannot be recovered does not stop the others. skip, when set, names the
// files (and staging directories) of live sessions of other writers,
// which are left alone.
// Files a compaction replaced go once they have been replaced for grace
// (a negative grace leaves them to the caller).
func recoverLocked(dir, writer string, grace time.Duration, skip func(string) bool) (RecoveryStats, error) {
	var st RecoveryStats
	var errs []error
	if skip == nil {
		skip = func(string) bool { return false }
	}
	if err := removeStaging(dir, skip); err != nil {
		errs = append(errs, err)
	}
	for _, sub := range kinds {
		ks, err := scanKind(filepath.Join(dir, sub))
		if err != nil {
			return st, err
		}
		ks = ks.without(skip)
		for _, wal := range ks.wals {
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
		// The pieces of published files (see live.go): of those just
		// recovered, and of those published before a crash cut the
		// cleanup short. Their file holds their rows.
		for _, p := range ks.pieces {
			final, _ := pieceOf(p)
			if _, err := os.Stat(final); err != nil {
				continue
			}
			if err := os.Remove(p); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
			} else {
				st.Removed++
			}
		}
		for _, part := range ks.parts {
			if grace < 0 {
				break
			}
			var cs CompactStats
			errs = append(errs, removeReplaced(part, CompactOptions{Grace: grace, Now: time.Now}, &cs))
			st.Removed += cs.Removed
		}
		for _, tmp := range ks.tmps {
			// A .tmp without its WAL was never complete and holds nothing
			// the WAL did not (the WAL is removed only after publishing).
			if _, err := os.Stat(strings.TrimSuffix(tmp, tmpSuffix) + walSuffix); errors.Is(err, os.ErrNotExist) {
				if err := os.Remove(tmp); err == nil {
					st.Removed++
				}
			}
		}
	}
	// The derived files (see derived.go): those a crash left being
	// written, and those whose flow file or piece is not there (a crash
	// between publishing them and their flow file, or removed with it).
	// A derived piece lives exactly as long as its flow piece: readers
	// skip both once the final file is there.
	for _, kind := range schema.DerivedKinds {
		ks, err := scanKind(filepath.Join(dir, kind))
		if err != nil {
			return st, err
		}
		ks = ks.without(skip)
		for _, tmp := range ks.tmps {
			if err := os.Remove(tmp); err == nil {
				st.Removed++
			}
		}
		for _, p := range ks.files {
			rel, err := filepath.Rel(filepath.Join(dir, kind), p)
			if err != nil {
				continue
			}
			if _, err := os.Stat(filepath.Join(dir, schema.KindFlows, rel)); err == nil {
				continue
			}
			if err := os.Remove(p); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
			} else {
				st.Removed++
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
		return os.Remove(wal)
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
	wo := WriterOptions{Writer: writer, Metadata: meta}
	d, err := derivationOf(t, final, wo)
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("recover %s: %w", final, err)
	}
	err = writeFile(t, f, wo, d, func(write func(M) error) error {
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
		d.discard()
		return fmt.Errorf("recover %s: %w", final, err)
	}
	st.TornBytes += torn
	if rows == 0 {
		st.Removed++
		os.Remove(tmp)
		d.discard()
		return os.Remove(wal)
	}
	if err := d.publish(final); err != nil {
		return err
	}
	if err := publish(tmp, final); err != nil {
		return err
	}
	st.Files++
	st.Rows += rows
	return os.Remove(wal)
}

// kindScan is what one walk of a kind's directory finds: what recovery
// finishes or removes, and the partitions it and compaction visit.
type kindScan struct {
	wals, tmps []string // hidden: segments' WALs, files being written
	pieces     []string // live segments' pieces (see live.go)
	files      []string // every published file, pieces included
	parts      []string // partition directories holding Parquet files
}

// without drops the files skip names: of live sessions.
func (ks kindScan) without(skip func(string) bool) kindScan {
	keep := func(ps []string) []string {
		return slices.DeleteFunc(ps, skip)
	}
	ks.wals, ks.tmps, ks.pieces, ks.files = keep(ks.wals), keep(ks.tmps), keep(ks.pieces), keep(ks.files)
	return ks
}

// scanKind walks a kind's directory (e.g. DIR/flows) once; hidden
// directories (staging) are not entered.
func scanKind(dir string) (kindScan, error) {
	var ks kindScan
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		name := d.Name()
		switch {
		case d.IsDir():
			if p != dir && hidden(name) {
				return filepath.SkipDir
			}
		case hidden(name) && strings.HasSuffix(name, walSuffix):
			ks.wals = append(ks.wals, p)
		case hidden(name) && strings.HasSuffix(name, tmpSuffix):
			ks.tmps = append(ks.tmps, p)
		case !hidden(name) && strings.HasSuffix(name, parquetSuffix):
			ks.files = append(ks.files, p)
			if _, ok := pieceOf(p); ok {
				ks.pieces = append(ks.pieces, p)
			}
			// A directory's files come one after another in the walk.
			if part := filepath.Dir(p); len(ks.parts) == 0 || ks.parts[len(ks.parts)-1] != part {
				ks.parts = append(ks.parts, part)
			}
		}
		return nil
	})
	return ks, err
}
