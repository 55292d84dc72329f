// Package schema defines flowtape's recording format: the Parquet columns of
// flow rows and event rows, their versions, and the lossless conversion between
// Hubble's protobuf messages and rows.
//
// One table per row type (Flows, Events) drives everything else: the Arrow
// schema, the converters in both directions (Encoder, RowDecoder) and the
// column reference in docs/schema.md. Nothing here knows about gRPC, files
// on disk or DuckDB: package tape stores the rows in Parquet files.
package schema

import (
	"fmt"
	"strconv"
	"strings"
)

// The recording format version. A reader accepts any minor version of its
// major version and refuses other majors. Minor versions add columns, or
// derived tables (1.3), or stop storing a derived column that the engines
// compute from stored ones as cheaply (1.4: http_request_id, see
// ViewColumns): a reader of any minor sees the same columns.
const (
	MajorVersion = 1
	MinorVersion = 4
)

// Version is the recording format version as written to Parquet metadata.
var Version = fmt.Sprintf("%d.%d", MajorVersion, MinorVersion)

// Parquet key-value metadata keys written into every file.
const (
	MetaSchemaVersion = "flowtape.schema_version"
	MetaWriter        = "flowtape.writer"
	MetaKind          = "flowtape.kind"
)

// Row kinds, as written under MetaKind.
const (
	KindFlows  = "flows"
	KindEvents = "events"
)

// RecorderNode is the node_name of the events a recorder writes about
// itself (its stream from the server broke, and came back): they concern
// the whole recording, not one node.
const RecorderNode = "flowtape/recorder"

// CheckVersion returns an error when a file written with schema version v
// cannot be read by this build.
func CheckVersion(v string) error {
	if v == "" {
		return fmt.Errorf("no %s metadata: not a flowtape recording file", MetaSchemaVersion)
	}
	majorStr, _, _ := strings.Cut(v, ".")
	major, err := strconv.Atoi(majorStr)
	if err != nil {
		return fmt.Errorf("malformed schema version %q", v)
	}
	if major != MajorVersion {
		return fmt.Errorf("schema version %s is not supported by this flowtape (reads %d.x); use a flowtape release that supports %d.x", v, MajorVersion, major)
	}
	return nil
}
