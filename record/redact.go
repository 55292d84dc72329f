package record

import (
	"net/url"
	"strings"

	flowpb "github.com/cilium/cilium/api/v1/flow"
)

// Redaction removes sensitive parts of L7 flows before they are written,
// like Cilium's hubble-redact options.
type Redaction struct {
	// URLQuery drops query strings from HTTP URLs; UserInfo drops user:password@.
	URLQuery, UserInfo bool
	// AllowHeaders, when set, keeps the values of only these HTTP headers
	// (case-insensitive); the others read HUBBLE_REDACTED, as in Cilium.
	AllowHeaders []string
}

// Redacted is what Cilium writes in place of a redacted value.
const Redacted = "HUBBLE_REDACTED"

func (r Redaction) enabled() bool { return r.URLQuery || r.UserInfo || len(r.AllowHeaders) > 0 }

// apply redacts an HTTP flow; mayChange is false when the flow was left
// as it is for certain: a flow that may have changed (every HTTP flow
// when redaction is on) is encoded anew for the WAL.
func (r Redaction) apply(f *flowpb.Flow) (mayChange bool) {
	h := f.GetL7().GetHttp()
	if h == nil || !r.enabled() {
		return false
	}
	if (r.URLQuery || r.UserInfo) && h.Url != "" {
		if u, err := url.Parse(h.Url); err == nil {
			if r.URLQuery {
				u.RawQuery, u.ForceQuery = "", false
			}
			if r.UserInfo {
				u.User = nil
			}
			h.Url = u.String()
		} else {
			h.Url = redactRaw(h.Url, r)
		}
	}
	if len(r.AllowHeaders) > 0 {
		for _, hd := range h.Headers {
			keep := false
			for _, a := range r.AllowHeaders {
				if strings.EqualFold(a, hd.Key) {
					keep = true
				}
			}
			if !keep {
				hd.Value = Redacted
			}
		}
	}
	if f.Summary != "" && (r.URLQuery || r.UserInfo) {
		f.Summary = "" // it repeats the URL
	}
	return true
}

// redactRaw redacts a URL that does not parse, by cutting strings: what
// the flags ask to remove must not reach the disk because a URL is odd.
func redactRaw(u string, r Redaction) string {
	if r.URLQuery {
		u, _, _ = strings.Cut(u, "?")
	}
	if r.UserInfo {
		scheme, rest, ok := strings.Cut(u, "://")
		if !ok {
			scheme, rest = "", u
		}
		host, path, _ := strings.Cut(rest, "/")
		if i := strings.LastIndex(host, "@"); i >= 0 {
			host = host[i+1:]
		}
		u = host
		if path != "" || strings.Contains(rest, "/") {
			u += "/" + path
		}
		if ok {
			u = scheme + "://" + u
		}
	}
	return u
}
