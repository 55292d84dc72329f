package importer

// Source is what an import read: kept in the recording's manifest, as the
// session's source.
type Source struct {
	Files []SourceFile `json:"files"`
}

// SourceFile is one input of an import, and what came of it.
type SourceFile struct {
	Path   string `json:"path"` // "-" for standard input
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	// Format is what the lines were: jsonpb (GetFlowsResponse or
	// ExportEvent: hubble observe -o jsonpb, sysdump, Cilium's exporter),
	// json (bare flows: hubble observe -o json), or mixed.
	Format      string `json:"format"`
	Compression string `json:"compression,omitempty"` // gzip, zstd
	Lines       int64  `json:"lines"`
	Flows       int64  `json:"flows"`
	Events      int64  `json:"events"`
	BadLines    int64  `json:"bad_lines"`
}
