// Package architecture holds no code: its test holds the import rules of
// flowtape's packages (README, Development) against the code, so that the
// one-way data flow Hubble -> record/import -> tape -> analyze/replay ->
// report stays the way the packages are built.
package architecture
