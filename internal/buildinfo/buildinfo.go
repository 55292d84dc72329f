// Package buildinfo holds the version of this flowtape build, set at link
// time by the Makefile (-ldflags -X).
package buildinfo

import "runtime/debug"

// Set with -ldflags "-X github.com/flowtape/flowtape/internal/buildinfo.Version=...".
var (
	Version = "dev"
	Commit  = ""
)

// CommitHash returns the commit, from the linker flag or the Go build info.
func CommitHash() string {
	if Commit != "" {
		return Commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// Writer is how flowtape names itself in the files it writes.
func Writer() string { return "flowtape " + Version }
