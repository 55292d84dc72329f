package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"golang.org/x/term"
)

// statusLine shows the progress of long work: one live line on a terminal,
// otherwise a log line every 10 seconds (so that CI logs and pipes stay
// readable).
type statusLine struct {
	w       io.Writer
	what    string
	tty     bool
	last    time.Time
	printed bool
}

func newStatusLine(w io.Writer, what string) *statusLine {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &statusLine{w: w, what: what, tty: tty, last: time.Now()}
}

// show displays line on a terminal, or logs attrs.
func (s *statusLine) show(line string, attrs ...any) {
	if s.tty {
		fmt.Fprintf(s.w, "\r\033[K%s", line)
		s.printed = true
		return
	}
	if time.Since(s.last) >= 10*time.Second {
		slog.Info(s.what, attrs...)
		s.last = time.Now()
	}
}

// logger returns a logger that clears the live line before it writes, so
// that warnings do not land at the end of the status line.
func (s *statusLine) logger(level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewTextHandler(clearingWriter{s}, &slog.HandlerOptions{Level: level}))
}

type clearingWriter struct{ s *statusLine }

func (c clearingWriter) Write(p []byte) (int, error) {
	if c.s.printed {
		fmt.Fprint(c.s.w, "\r\033[K")
		c.s.printed = false
	}
	return c.s.w.Write(p)
}

// done ends the live line.
func (s *statusLine) done() {
	if s.printed {
		fmt.Fprintln(s.w)
		s.printed = false
	}
}
