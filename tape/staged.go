package tape

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"

	"github.com/flowtape/flowtape/schema"
)

// Staged writes a session that becomes part of the recording only when it
// is complete (an import, which can start again from its input): its files
// go to a hidden staging directory inside the recording, without
// write-ahead logs, and move into place at Commit. Abort, an error or a
// crash leaves the recording as it was; the next writer of the directory
// removes what a crash left.
type Staged struct {
	dir, stage string
	created    bool // the recording directory did not exist before
	held       *Dir
	sink       *Sink
	session    Session
	made       []string // directories publish made
}

var _ Writer = (*Staged)(nil)

// Stage starts a staged session in o.Dir, which may be new or an existing
// recording (the session is added to it).
func Stage(o SinkOptions, s Session) (*Staged, error) {
	if o.RecordingID == "" {
		o.RecordingID = NewRecordingID()
	}
	created := false
	if _, err := os.Stat(o.Dir); errors.Is(err, fs.ErrNotExist) {
		created = true
	}
	held, err := OpenSession(o.Dir, o.RecordingID)
	if err != nil {
		return nil, err
	}
	st := &Staged{dir: o.Dir, created: created, held: held, session: s}
	if _, err := held.Recover(o.Writer); err != nil {
		st.Abort()
		return nil, err
	}
	st.stage = filepath.Join(o.Dir, stagingPrefix+o.RecordingID)
	so := o
	so.Dir = st.stage
	if st.sink, err = newSink(so, false); err != nil {
		st.Abort()
		return nil, err
	}
	st.session.RecordingID, st.session.SchemaVersion = o.RecordingID, schema.Version
	if st.session.Tool == "" {
		st.session.Tool = o.Writer
	}
	return st, nil
}

// WriteFlow adds a flow.
func (s *Staged) WriteFlow(f *flowpb.Flow) error { return s.sink.WriteFlow(f) }

// WriteFlowEncoded adds a flow (a staged session keeps no write-ahead log:
// the encoding is not needed).
func (s *Staged) WriteFlowEncoded(f *flowpb.Flow, _ []byte) error { return s.sink.WriteFlow(f) }

// WriteEvent adds a non-flow GetFlows response.
func (s *Staged) WriteEvent(r *observerpb.GetFlowsResponse) error { return s.sink.WriteEvent(r) }

// Sync ends files that are due (it makes nothing durable: a staged
// session is redone after a crash).
func (s *Staged) Sync() error { return s.sink.Sync() }

// OnDisk is what the session's files take so far.
func (s *Staged) OnDisk() int64 { return s.sink.OnDisk() }

// ErrPartial marks a Commit that failed after some files moved into the
// recording and could not be moved back; the manifest marks the session
// failed.
var ErrPartial = errors.New("part of the session is in the recording")

// Commit finishes the files, moves them into the recording and adds the
// session, with its totals, to the manifest. If that fails, what was moved
// is moved back: the recording is as before (else the error is ErrPartial).
func (s *Staged) Commit(t Totals) (Session, error) {
	defer s.held.Close()
	if err := s.sink.Close(); err != nil {
		s.discard()
		return s.session, err
	}
	ss := s.sink.Stats()
	t.Files, t.Bytes = ss.Files, ss.Bytes
	end := time.Now().UTC()
	// The manifest names the session before its files appear, so that a
	// crash halfway through the moves leaves files the manifest explains.
	s.session.Totals, s.session.End, s.session.Status = t, &end, "publishing"
	if err := putSession(s.dir, s.session); err != nil {
		s.discard()
		return s.session, err
	}
	moved, err := s.publish()
	if err == nil {
		s.session.Status = "complete"
		err = putSession(s.dir, s.session)
	}
	if err != nil {
		if rerr := s.unpublish(moved); rerr != nil {
			s.session.Status, s.session.Error = "failed", err.Error()
			_ = putSession(s.dir, s.session)
			return s.session, fmt.Errorf("%w (%w; moving back: %w)", ErrPartial, err, rerr)
		}
		_ = dropSession(s.dir, s.session.RecordingID)
		s.discard()
		return s.session, err
	}
	_ = os.RemoveAll(s.stage) // emptied; a leftover is removed by the next writer
	return s.session, nil
}

// publish moves every staged file to the same place in the recording and
// returns where they went.
func (s *Staged) publish() ([]string, error) {
	var moved []string
	// Derived files before the flow files they belong to: a reader that
	// takes a flow file finds them (see derived.go).
	var tops []string
	for _, kind := range schema.DerivedKinds {
		tops = append(tops, filepath.Join(s.stage, kind))
	}
	entries, err := os.ReadDir(s.stage)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", s.stage, err)
	}
	for _, e := range entries {
		if p := filepath.Join(s.stage, e.Name()); !slices.Contains(tops, p) {
			tops = append(tops, p)
		}
	}
	synced := 0
	for i, top := range tops {
		m, err := s.publishTree(top)
		moved = append(moved, m...)
		if err != nil {
			return moved, err
		}
		// The derived files' names durable before any flow file's.
		if i == len(schema.DerivedKinds)-1 || i == len(tops)-1 {
			if err := syncDirsOf(moved[synced:]); err != nil {
				return moved, err
			}
			synced = len(moved)
		}
	}
	return moved, nil
}

// syncDirsOf syncs the directories files were moved to.
func syncDirsOf(files []string) error {
	dirs := map[string]bool{}
	for _, p := range files {
		dirs[filepath.Dir(p)] = true
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// publishTree moves the staged files under top to the same place in the
// recording.
func (s *Staged) publishTree(top string) ([]string, error) {
	var moved []string
	if _, err := os.Stat(top); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(s.stage, p)
		final := filepath.Join(s.dir, rel)
		// The directories made here go again if the files move back.
		for d := filepath.Dir(final); d != s.dir && len(d) > len(s.dir); d = filepath.Dir(d) {
			if _, err := os.Stat(d); err == nil {
				break
			}
			s.made = append(s.made, d)
		}
		if err := os.MkdirAll(filepath.Dir(final), dirMode); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Dir(final), err)
		}
		if err := os.Rename(p, final); err != nil {
			return fmt.Errorf("publish %s: %w", final, err)
		}
		moved = append(moved, final)
		return nil
	})
	return moved, err
}

// unpublish moves files back into the staging directory.
func (s *Staged) unpublish(moved []string) error {
	var errs []error
	for _, final := range moved {
		rel, _ := filepath.Rel(s.dir, final)
		if err := os.Rename(final, filepath.Join(s.stage, rel)); err != nil {
			errs = append(errs, err)
		}
	}
	// Deepest first: a directory made here is empty once its files and
	// the directories made in it are gone.
	slices.SortFunc(s.made, func(a, b string) int { return len(b) - len(a) })
	for _, d := range s.made {
		os.Remove(d)
	}
	return errors.Join(errs...)
}

// Abort drops everything the session wrote.
func (s *Staged) Abort() {
	if s.sink != nil {
		s.sink.discard()
	}
	s.discard()
	s.held.Close()
}

func (s *Staged) discard() {
	if s.stage != "" {
		os.RemoveAll(s.stage)
	}
	if s.created && onlyOwnFiles(s.dir, s.held) {
		// Only what this session made: the lock files and manifest, and
		// the directory; not when another writer came meanwhile (its
		// locks and manifest are in use).
		os.Remove(filepath.Join(s.dir, ManifestFile))
		os.Remove(filepath.Join(s.dir, lockFile))
		os.Remove(filepath.Join(s.dir, manifestLockFile))
		os.Remove(filepath.Join(s.dir, recoverLockFile))
		if s.held != nil && s.held.id != "" {
			os.Remove(sessionLock(s.dir, s.held.id))
		}
		os.Remove(s.dir)
	}
}

// onlyOwnFiles reports whether dir holds nothing but what a session that
// created it makes there (its lock files and manifest).
func onlyOwnFiles(dir string, held *Dir) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	own := []string{ManifestFile, lockFile, manifestLockFile, recoverLockFile}
	if held != nil && held.id != "" {
		own = append(own, filepath.Base(sessionLock(dir, held.id)))
	}
	for _, e := range entries {
		if !slices.Contains(own, e.Name()) {
			return false
		}
	}
	return true
}

// removeStaging removes what staged sessions killed before Commit left
// (not the staging of live sessions, which skip names).
func removeStaging(dir string, skip func(string) bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), stagingPrefix) && !skip(e.Name()) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// Stats returns what the session has written so far (it is published at
// Commit).
func (s *Staged) Stats() Stats { return s.sink.Stats() }

// SetSource records what the session read, in the writer's terms, for the
// manifest.
func (s *Staged) SetSource(src json.RawMessage) { s.session.Source = src }
