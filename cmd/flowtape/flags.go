package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	hubtime "github.com/cilium/cilium/hubble/pkg/time"

	"github.com/spf13/pflag"
)

// Flag parsers and flag sets that several commands share.

// windowFlags are --since and --until, parsed as hubble observe parses
// them (RFC 3339 or relative to now).
type windowFlags struct{ since, until string }

// add declares the flags; from and until start their help, e.g. "analyse
// from" and "analyse until".
func (w *windowFlags) add(fl *pflag.FlagSet, from, until string) {
	fl.StringVar(&w.since, "since", "", from+" this time (RFC 3339 or relative, e.g. 5m)")
	fl.StringVar(&w.until, "until", "", until+" this time (RFC 3339 or relative)")
}

// parse returns the window; a zero end is unset.
func (w windowFlags) parse() (since, until time.Time, err error) {
	return parseWindow(w.since, w.until)
}

// parseWindow parses --since and --until as hubble observe does (RFC 3339
// or relative to now); empty is unset.
func parseWindow(since, until string) (from, to time.Time, err error) {
	if from, err = parseTime("--since", since, "2026-11-25T13:00:00Z", "30m"); err != nil {
		return from, to, err
	}
	to, err = parseTime("--until", until, "2026-11-25T13:05:00Z", "5m")
	return from, to, err
}

// parseTime parses a time flag as hubble observe does; "" is unset (zero).
// A time without its zone, which hubble refuses too, gets an error that
// says so; one before 1970 or after 2262, which nanoseconds since 1970 in
// 64 bits (a recording's times) cannot hold or subtract, one that gives
// the range.
func parseTime(flag, s, example, relative string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := hubtime.FromString(s)
	if err != nil {
		for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02 15:04:05.999999999", "2006-01-02 15:04"} {
			if local, zerr := time.Parse(layout, s); zerr == nil {
				u := local.Format("2006-01-02T15:04:05.999999999")
				return t, usagef("invalid %s %q: give its zone, e.g. %sZ for UTC or %s+02:00", flag, s, u, u)
			}
		}
		return t, usagef("invalid %s %q: give a time (RFC 3339, e.g. %s, or relative to now, e.g. %s)", flag, s, example, relative)
	}
	if t.Before(time.Unix(0, 0)) || t.After(time.Unix(0, math.MaxInt64)) {
		return t, usagef("invalid %s %q: give a time between 1970 and 2262 (a recording's times are nanoseconds since 1970)", flag, s)
	}
	return t, nil
}

func parseSize(s string) (int64, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, x := range []struct {
		suffix string
		m      int64
	}{
		// Binary multiples, as Kubernetes' Gi and Mi: a volume's size is
		// what --max-disk is compared with.
		{"TIB", 1 << 40}, {"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10},
		{"TI", 1 << 40}, {"GI", 1 << 30}, {"MI", 1 << 20}, {"KI", 1 << 10},
		{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1},
	} {
		if strings.HasSuffix(u, x.suffix) {
			u, mult = strings.TrimSuffix(u, x.suffix), x.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(u), 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q: use e.g. 256MB or 20GiB", s)
	}
	return n * mult, nil
}

// parseMemoryLimit reads a --memory-limit (DuckDB's, or replay's Go
// heap): a size of at least minMemoryLimit. Less is no workable limit
// (DuckDB fails at once, the collector would run without pause), and is
// most often a number given without its unit: "2" is 2 bytes.
func parseMemoryLimit(s string) (int64, error) {
	n, err := parseSize(s)
	if err == nil && n < minMemoryLimit {
		err = fmt.Errorf("%q is less than %s, too little to work in: give e.g. 512MB or 2GiB (a number alone is bytes)", s, humanSize(minMemoryLimit))
	}
	return n, err
}

// minMemoryLimit is the least --memory-limit: DuckDB's set-up of the
// views alone failed under 1MiB, and services over 1M flows needed 16MiB
// to 64MiB; a replay stream holds about 50MB live.
const minMemoryLimit = 16 << 20

// humanSize writes a byte count as parseSize reads it, e.g. 256MB.
func humanSize(n int64) string {
	for _, x := range []struct {
		suffix string
		m      int64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}} {
		if n >= x.m && n%x.m == 0 {
			return fmt.Sprintf("%d%s", n/x.m, x.suffix)
		}
	}
	return fmt.Sprintf("%dB", n)
}

func parseSpeed(s string) (float64, error) {
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		return 0, usagef("invalid --speed %q: use a positive number or max", s)
	}
	return v, nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// thousands writes n with thousands separators.
func thousands(n uint64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// daysDuration is a duration flag that takes days and weeks too (7d, 2w,
// 36h), as Prometheus' retention does: retention is counted in days.
type daysDuration struct{ d *time.Duration }

func (v daysDuration) String() string {
	if v.d == nil || *v.d == 0 {
		return "0"
	}
	if *v.d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(*v.d/(24*time.Hour)), 10) + "d"
	}
	return v.d.String()
}

func (v daysDuration) Set(s string) error {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"d", 24 * time.Hour}, {"w", 7 * 24 * time.Hour}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			if k, err := strconv.ParseInt(n, 10, 64); err == nil {
				*v.d = time.Duration(k) * u.unit
				return nil
			}
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("use a duration such as 7d, 2w or 36h")
	}
	*v.d = d
	return nil
}

func (v daysDuration) Type() string { return "duration" }
