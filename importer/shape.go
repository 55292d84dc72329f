package importer

import (
	"errors"
	"fmt"
)

// Format is the kind of JSON line an input holds.
type Format string

const (
	// FormatJSONPB is a GetFlowsResponse or an ExportEvent: the lines of
	// `hubble observe -o jsonpb`, sysdump hubble-flows files and Cilium's
	// flow exporter. Both messages print the same JSON for flows, lost
	// events and node status; ExportEvent adds agent and debug events.
	FormatJSONPB Format = "jsonpb"
	// FormatJSON is a bare Flow: `hubble observe -o json`, and older
	// tools that printed flows only.
	FormatJSON Format = "json"
)

// envelopeKeys are the members of GetFlowsResponse and ExportEvent, by
// proto and JSON name; responseKeys are those that say which kind it is.
var (
	envelopeKeys = map[string]bool{"node_name": true, "nodeName": true, "time": true}
	responseKeys = map[string]bool{"flow": true, "node_status": true, "nodeStatus": true,
		"lost_events": true, "lostEvents": true, "agent_event": true, "agentEvent": true,
		"debug_event": true, "debugEvent": true}
)

// detect tells a jsonpb envelope from a bare flow by the line's top-level
// keys: a response key makes an envelope; a key that is neither an
// envelope key nor a response key makes a flow (a flow has dozens); a line
// with only node_name and time besides unknown keys is refused.
func detect(line []byte) (Format, error) {
	envelope, flow := false, false
	err := topLevelKeys(line, func(key []byte) {
		k := string(key)
		switch {
		case responseKeys[k]:
			envelope = true
		case envelopeKeys[k]:
		case flowKeys[k]:
			flow = true
		}
	})
	switch {
	case err != nil:
		return "", err
	case flow && !envelope:
		return FormatJSON, nil
	case !envelope:
		// Only time and node_name besides unknown members: not Hubble, or
		// a response type newer than this build, which it cannot place.
		return "", errors.New("no member of a Hubble flow or event known to this flowtape")
	}
	return FormatJSONPB, nil
}

var errNotObject = errors.New("not a JSON object")

// topLevelKeys calls fn with each key of the JSON object in b (raw bytes,
// escapes not decoded), skipping values without decoding them. It checks
// only as much syntax as it needs; the decoder checks the rest.
func topLevelKeys(b []byte, fn func([]byte)) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errNotObject
	}
	i++
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return errors.New("unexpected end of JSON")
		}
		if b[i] == '}' {
			return nil
		}
		if b[i] == ',' {
			i++
			continue
		}
		if b[i] != '"' {
			return fmt.Errorf("invalid character %q looking for a key", b[i])
		}
		end, err := skipString(b, i)
		if err != nil {
			return err
		}
		fn(b[i+1 : end-1])
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return errors.New("missing ':' after a key")
		}
		if i, err = skipValue(b, i+1); err != nil {
			return err
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errors.New("unterminated string")
}

// skipValue returns the index after the value starting at or after b[i].
func skipValue(b []byte, i int) (int, error) {
	i = skipSpace(b, i)
	if i >= len(b) {
		return 0, errors.New("unexpected end of JSON")
	}
	if b[i] == '"' {
		return skipString(b, i)
	}
	if b[i] != '{' && b[i] != '[' {
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' {
			i++
		}
		return i, nil
	}
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			end, err := skipString(b, i)
			if err != nil {
				return 0, err
			}
			i = end - 1
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, nil
			}
		}
	}
	return 0, errors.New("unexpected end of JSON")
}
