package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// -o onto a named pipe (as onto /dev/null or /dev/stdout) writes into it:
// the pipe stays a pipe, and its reader gets everything.
func TestWriteOutputIntoAPipe(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "out")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- err.Error()
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		got <- string(b)
	}()
	if err := writeOutput(io.Discard, fifo, func(w io.Writer) error {
		_, err := io.WriteString(w, "line 1\nline 2\n")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the pipe was replaced by a file: %v", err)
	}
	if s := <-got; s != "line 1\nline 2\n" {
		t.Errorf("the pipe's reader got %q", s)
	}
	entries, _ := os.ReadDir(filepath.Dir(fifo))
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}

// A regular file appears only once complete; a failed write leaves the
// file that was there.
func TestWriteOutputReplacesAFileWhenComplete(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "report.md")
	if err := os.WriteFile(out, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := writeOutput(io.Discard, out, func(w io.Writer) error {
		io.WriteString(w, "half")
		return errors.New("disk full")
	})
	if b, _ := os.ReadFile(out); err == nil || string(b) != "old" {
		t.Errorf("after a failed write: %q, error %v", b, err)
	}
	if err := writeOutput(io.Discard, out, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "new" {
		t.Errorf("after a write: %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
	if err := writeOutput(io.Discard, dir, func(io.Writer) error { return nil }); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("-o DIR: %v", err)
	}
}
