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

func (r Redaction) apply(f *flowpb.Flow) {
	h := f.GetL7().GetHttp()
	if h == nil || !r.enabled() {
		return
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
}
