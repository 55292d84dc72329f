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
	Totals        Totals    `json:"totals"`
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
	Source        json.RawMessage `json:"source,omitempty"`
	Filters       Filters         `json:"filters"`
	Start         time.Time       `json:"start"`
	End           *time.Time      `json:"end,omitempty"`
	StatusAtStart json.RawMessage `json:"server_status_at_start,omitempty"`
	NodesAtStart  json.RawMessage `json:"nodes_at_start,omitempty"`
	StatusAtEnd   json.RawMessage `json:"server_status_at_end,omitempty"`
	NodesAtEnd    json.RawMessage `json:"nodes_at_end,omitempty"`
	Totals        Totals          `json:"totals"`
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
	if o.FirstFlow != nil && (t.FirstFlow == nil || o.FirstFlow.Before(*t.FirstFlow)) {
		t.FirstFlow = o.FirstFlow
	}
	if o.LastFlow != nil && (t.LastFlow == nil || o.LastFlow.After(*t.LastFlow)) {
		t.LastFlow = o.LastFlow
	}
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
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := writeSmall(filepath.Join(dir, "."+ManifestFile+tmpSuffix), filepath.Join(dir, ManifestFile), append(b, '\n')); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}
