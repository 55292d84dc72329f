package tape

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Manifest describes a recording directory: every recorder run (session)
// that wrote to it, and the totals.
type Manifest struct {
	Tool          string    `json:"tool"`
	SchemaVersion string    `json:"schema_version"`
	Sessions      []Session `json:"sessions"`
	// Totals are every session's, those summed up in Expired included.
	Totals Totals `json:"totals"`
	// Expired is what retention removed (see Retention), absent if nothing.
	Expired *Expired `json:"expired,omitempty"`
	// Dropped is what a full spool dropped before it reached the bucket
	// (see upload.go): lost, absent if nothing.
	Dropped *Expired `json:"spool_dropped,omitempty"`
}

// Session is one writer's run: one `flowtape record` or `flowtape import`.
type Session struct {
	RecordingID   string     `json:"recording_id"`
	Tool          string     `json:"tool"`
	SchemaVersion string     `json:"schema_version"`
	Status        string     `json:"status"` // recording, complete, failed
	Error         string     `json:"error,omitempty"`
	Server        ServerInfo `json:"server"`
	// Source is what the writer read, in its own terms (an import: its
	// input files); absent for a live recording.
	Source  json.RawMessage `json:"source,omitempty"`
	Filters Filters         `json:"filters"`
	// Retention is what the writer removed as it wrote (record
	// --retention, --max-disk), if anything.
	Retention     *RetentionPolicy `json:"retention,omitempty"`
	Start         time.Time        `json:"start"`
	End           *time.Time       `json:"end,omitempty"`
	StatusAtStart json.RawMessage  `json:"server_status_at_start,omitempty"`
	NodesAtStart  json.RawMessage  `json:"nodes_at_start,omitempty"`
	StatusAtEnd   json.RawMessage  `json:"server_status_at_end,omitempty"`
	NodesAtEnd    json.RawMessage  `json:"nodes_at_end,omitempty"`
	Totals        Totals           `json:"totals"`
	// RingGapsEnd is, for each node whose last gap the recorder recorded
	// ended past the node's newest recorded flow (no flow came after it:
	// it ends at the ring's oldest flow when asked), where that gap
	// ended, in the flows' time: the flows before it are recorded or
	// counted lost, and the next session's gap of the node starts there
	// (see LastSession). Written when a stream breaks with gaps open and
	// when the session ends; none for a session that failed (what its
	// files hold is not sure).
	RingGapsEnd map[string]time.Time `json:"ring_gaps_end,omitempty"`
}

// RetentionPolicy is a Retention as the manifest shows it.
type RetentionPolicy struct {
	MaxAge   string `json:"max_age,omitempty"`
	MaxBytes int64  `json:"max_bytes,omitempty"`
}

// Policy is r as the manifest shows it; nil when r removes nothing.
func (r Retention) Policy() *RetentionPolicy {
	if !r.Enabled() {
		return nil
	}
	p := &RetentionPolicy{MaxBytes: r.MaxBytes}
	if r.MaxAge > 0 {
		p.MaxAge = r.MaxAge.String()
	}
	return p
}

// ServerInfo is what was recorded from.
type ServerInfo struct {
	Address       string `json:"address"`
	TLS           bool   `json:"tls"`
	ServerVersion string `json:"hubble_server_version,omitempty"`
	RelayVersion  string `json:"hubble_relay_version,omitempty"`
}

// Filters are the GetFlows filters, as hubble observe --print-raw-filters shows them.
type Filters struct {
	Raw   string     `json:"raw,omitempty"`
	Since *time.Time `json:"since,omitempty"`
	Until *time.Time `json:"until,omitempty"`
}

// Totals count what a session (or all of them) recorded.
type Totals struct {
	Flows             uint64            `json:"flows"`
	LostEvents        map[string]uint64 `json:"lost_events_by_source"`
	NodeStatusChanges uint64            `json:"node_status_changes"`
	Reconnects        uint64            `json:"reconnects"`
	Duplicates        uint64            `json:"duplicates_dropped"`
	Files             int64             `json:"files"`
	Bytes             int64             `json:"bytes"`
	FirstFlow         *time.Time        `json:"first_flow,omitempty"`
	LastFlow          *time.Time        `json:"last_flow,omitempty"`
}

func (t *Totals) add(o Totals) {
	t.Flows += o.Flows
	if t.LostEvents == nil {
		t.LostEvents = map[string]uint64{}
	}
	for k, v := range o.LostEvents {
		t.LostEvents[k] += v
	}
	t.NodeStatusChanges += o.NodeStatusChanges
	t.Reconnects += o.Reconnects
	t.Duplicates += o.Duplicates
	t.Files += o.Files
	t.Bytes += o.Bytes
	t.FirstFlow, t.LastFlow = earliest(t.FirstFlow, o.FirstFlow), latest(t.LastFlow, o.LastFlow)
}

// earliest and latest of two optional times.
func earliest(a, b *time.Time) *time.Time {
	if b != nil && (a == nil || b.Before(*a)) {
		return b
	}
	return a
}

func latest(a, b *time.Time) *time.Time {
	if b != nil && (a == nil || b.After(*a)) {
		return b
	}
	return a
}

// ReadManifest reads DIR/manifest.json.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, err
	}
	m := &Manifest{}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestFile), err)
	}
	return m, nil
}

// PutSession adds or replaces (by recording id) a session in
// DIR/manifest.json, atomically, and recomputes the totals.
func (d *Dir) PutSession(s Session) error { return putSession(d.path, s) }

func putSession(dir string, s Session) error {
	return updateManifest(dir, func(m *Manifest) {
		for i := range m.Sessions {
			if m.Sessions[i].RecordingID == s.RecordingID {
				m.Sessions[i] = s
				return
			}
		}
		m.Sessions = append(m.Sessions, s)
	})
}

// dropSession removes a session from DIR/manifest.json.
func dropSession(dir, id string) error {
	return updateManifest(dir, func(m *Manifest) {
		m.Sessions = slices.DeleteFunc(m.Sessions, func(s Session) bool { return s.RecordingID == id })
	})
}

// updateManifest changes DIR/manifest.json atomically and recomputes the
// totals.
func updateManifest(dir string, change func(*Manifest)) error {
	// Recorders of several nodes may share a directory: one change at a
	// time, each on the manifest the last one wrote.
	unlock, err := lockFileWait(filepath.Join(dir, manifestLockFile))
	if err != nil {
		return err
	}
	defer unlock()
	m, err := ReadManifest(dir)
	if errors.Is(err, os.ErrNotExist) {
		m, err = &Manifest{}, nil
	}
	if err != nil {
		return err
	}
	change(m)
	if n := len(m.Sessions); n > 0 {
		// The newest session's writer names the recording's.
		m.Tool, m.SchemaVersion = m.Sessions[n-1].Tool, m.Sessions[n-1].SchemaVersion
	}
	m.Totals = Totals{LostEvents: map[string]uint64{}}
	for _, x := range m.Sessions {
		m.Totals.add(x.Totals)
	}
	if m.Expired != nil {
		m.Totals.add(m.Expired.SessionTotals)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := writeSmall(filepath.Join(dir, "."+ManifestFile+tmpSuffix), filepath.Join(dir, ManifestFile), append(b, '\n')); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}
