package tape

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flowtape/flowtape/internal/defaults"
)

// Dir is a recording directory held by a writer. Several recorders may
// write one directory at once (one per node, see record's per-node
// capture): each holds the directory's lock shared and its own session's
// lock exclusively, so that what each one recovers or cleans up is only
// what no live session is writing. Recover, Compact and Reindex hold the
// directory's lock exclusively: no writer at all meanwhile.
type Dir struct {
	path   string
	id     string // the session a writer holds; "" when held exclusively
	unlock func()
}

// OpenDir creates a recording directory if needed and takes its lock
// exclusively: no other writer, nor a recovery, touches its files
// meanwhile.
func OpenDir(path string) (*Dir, error) {
	if err := os.MkdirAll(path, dirMode); err != nil {
		return nil, fmt.Errorf("create recording directory: %w", err)
	}
	unlock, err := lockDir(path, syscall.LOCK_EX)
	if err != nil {
		return nil, err
	}
	return &Dir{path: path, unlock: sync.OnceFunc(unlock)}, nil
}

// OpenSession creates a recording directory if needed and holds it for
// the session id (a recording id): the directory's lock shared with other
// writers, and the session's own lock.
func OpenSession(path, id string) (*Dir, error) {
	if err := os.MkdirAll(path, dirMode); err != nil {
		return nil, fmt.Errorf("create recording directory: %w", err)
	}
	unlockDir, err := lockDir(path, syscall.LOCK_SH)
	if err != nil {
		return nil, err
	}
	lock := sessionLock(path, id)
	f, err := os.OpenFile(lock, os.O_CREATE|os.O_RDWR, fileMode)
	if err == nil {
		if err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			err = fmt.Errorf("session %s is being written by another process", id)
		}
	}
	if err != nil {
		unlockDir()
		return nil, fmt.Errorf("lock %s: %w", lock, err)
	}
	return &Dir{path: path, id: id, unlock: sync.OnceFunc(func() {
		os.Remove(lock)                             // before unlocking: a new holder of the name makes a new file
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck
		f.Close()
		unlockDir()
	})}, nil
}

// Close releases the locks; it is safe to call more than once.
func (d *Dir) Close() { d.unlock() }

// Recover turns what a killed writer left in the directory into valid
// files (see Recover): held for a session, only what no live session of
// another writer is writing.
func (d *Dir) Recover(writer string) (RecoveryStats, error) {
	var skip func(string) bool
	if d.id != "" {
		// What cannot be told to be of a dead session is left alone: it may
		// be a live one's.
		skip = func(p string) bool {
			id := sessionOfHidden(p)
			return id == "" || liveSession(d.path, id)
		}
		// One recovery at a time: the recorders of a per-node capture
		// start together, and each would recover the same dead session.
		unlock, err := lockFileWait(filepath.Join(d.path, recoverLockFile))
		if err != nil {
			return RecoveryStats{}, err
		}
		defer unlock()
	}
	return recoverLocked(d.path, writer, defaults.LiveGrace, skip)
}

// lockDir takes DIR/.lock: exclusively for one recorder (or recovery) at
// a time, shared for writers of a session each.
func lockDir(dir string, how int) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, fileMode)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		f.Close()
		if how == syscall.LOCK_SH {
			return nil, fmt.Errorf("%s is being recovered, compacted or reindexed (lock %s): try again when that is done", dir, f.Name())
		}
		return nil, fmt.Errorf("%s is in use by flowtape record, import or recover (lock %s)", dir, f.Name())
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck
		f.Close()
	}, nil
}

// sessionLockPrefix names a session's lock file: DIR/.session-<id>.lock.
const sessionLockPrefix = ".session-"

func sessionLock(dir, id string) string {
	return filepath.Join(dir, sessionLockPrefix+id+".lock")
}

// liveSession reports whether a writer holds session id's lock; the lock
// file of a session that is gone is removed. A path of no session ("") is
// not live.
func liveSession(dir, id string) bool {
	if id == "" {
		return false
	}
	lock := sessionLock(dir, id)
	f, err := os.OpenFile(lock, os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	os.Remove(lock)
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck
	return false
}

// sessionOfHidden is the session (recording id) of a file of the layout,
// hidden or not (.NAME.parquet.wal, .NAME.parquet.tmp, NAME.p000001.parquet,
// .staging-ID); "" for other names.
func sessionOfHidden(p string) string {
	base := filepath.Base(p)
	if id, ok := strings.CutPrefix(base, stagingPrefix); ok {
		return id
	}
	if hidden(base) {
		// .NAME.parquet.wal, .NAME.parquet.tmp, .NAME.p000001.parquet.tmp,
		// .NAME.parquet.piece-123.tmp: the name up to its first .parquet.
		name, _, ok := strings.Cut(strings.TrimPrefix(base, "."), parquetSuffix)
		if !ok {
			return ""
		}
		p = name + parquetSuffix
	}
	id, _ := parseFileName(p)
	return id
}

// manifestLockFile serialises changes of the manifest between processes,
// recoverLockFile the recoveries of the writers of a directory.
const (
	manifestLockFile = ".manifest.lock"
	recoverLockFile  = ".recover.lock"
)

// lockFileWait takes an exclusive lock on path, waiting for it.
func lockFileWait(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, fileMode)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck
		f.Close()
	}, nil
}

// lockFileCtx takes an exclusive lock on path, waiting for it until ctx
// ends (a user's Ctrl-C while another run holds it).
func lockFileCtx(ctx context.Context, path string) (func(), error) {
	for {
		unlock, ok, err := tryLockFile(path)
		if err != nil || ok {
			return unlock, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s, held by another flowtape process: %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tryLockFile takes an exclusive lock on path if no one holds it; ok is
// false if someone does.
func tryLockFile(path string) (unlock func(), ok bool, err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, fileMode)
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck
		f.Close()
	}, true, nil
}
