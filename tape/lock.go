package tape

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/flowtape/flowtape/internal/defaults"
)

// Dir is a recording directory held by one writer: its lock is taken, so
// that no other writer, nor a recovery, touches its files meanwhile.
type Dir struct {
	path   string
	unlock func()
}

// OpenDir creates a recording directory if needed and takes its lock.
func OpenDir(path string) (*Dir, error) {
	if err := os.MkdirAll(path, dirMode); err != nil {
		return nil, fmt.Errorf("create recording directory: %w", err)
	}
	unlock, err := lockDir(path)
	if err != nil {
		return nil, err
	}
	return &Dir{path: path, unlock: sync.OnceFunc(unlock)}, nil
}

// Close releases the lock; it is safe to call more than once.
func (d *Dir) Close() { d.unlock() }

// Recover turns what a killed writer left in the directory into valid
// files (see Recover).
func (d *Dir) Recover(writer string) (RecoveryStats, error) {
	return recoverLocked(d.path, writer, defaults.LiveGrace)
}

// lockDir takes DIR/.lock exclusively: one recorder (or recovery) at a
// time, so that recovery never touches the files of a live recorder.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, fileMode)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s is in use by another flowtape record or recover (lock %s)", dir, f.Name())
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck
		f.Close()
	}, nil
}

// manifestLockFile serialises changes of the manifest between processes.
const manifestLockFile = ".manifest.lock"

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
