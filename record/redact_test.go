package record

import (
	"bytes"
	"testing"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/protobuf/proto"
)

// What redaction removes is nowhere in the flow written: not in the URL,
// not in the Summary that repeats it (cleared when URL parts are redacted),
// not in the headers; what it is not asked to remove stays.
func TestRedaction(t *testing.T) {
	const auth = "Bearer tok-9f8e7d"
	tests := []struct {
		name        string
		r           Redaction
		url         string
		wantURL     string
		gone, kept  []string // in the marshalled flow
		wantSummary bool
	}{
		{"query", Redaction{URLQuery: true}, "http://svc:80/a/b?token=secret&x=1", "http://svc:80/a/b",
			[]string{"token=secret"}, []string{auth}, false},
		{"userinfo", Redaction{UserInfo: true}, "http://user:pw@svc/a?x=1", "http://svc/a?x=1",
			[]string{"user:pw"}, []string{"x=1", auth}, false},
		{"both", Redaction{URLQuery: true, UserInfo: true}, "http://user:pw@svc/a?x=1", "http://svc/a",
			[]string{"user:pw", "x=1"}, []string{auth}, false},
		{"unparseable query", Redaction{URLQuery: true}, "http://svc/a%zz?token=secret", "http://svc/a%zz",
			[]string{"token=secret"}, nil, false},
		{"unparseable userinfo", Redaction{URLQuery: true, UserInfo: true}, "http://u:pw@svc:bad/x?token=s", "http://svc:bad/x",
			[]string{"u:pw", "token=s"}, nil, false},
		{"headers only", Redaction{AllowHeaders: []string{"x-request-id"}}, "http://u:pw@svc/x?token=s", "http://u:pw@svc/x?token=s",
			[]string{auth}, []string{"u:pw", "token=s", "req-1"}, true},
		{"headers and query", Redaction{URLQuery: true, AllowHeaders: []string{"X-Request-Id"}}, "http://svc/x?token=s", "http://svc/x",
			[]string{auth, "token=s"}, []string{"req-1"}, false},
		{"off", Redaction{}, "http://u:pw@svc/x?token=s", "http://u:pw@svc/x?token=s",
			nil, []string{"u:pw", "token=s", auth}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			summary := "HTTP/1.1 GET " + tt.url
			f := &flowpb.Flow{Summary: summary, L7: &flowpb.Layer7{Type: flowpb.L7FlowType_REQUEST,
				Record: &flowpb.Layer7_Http{Http: &flowpb.HTTP{Method: "GET", Url: tt.url, Protocol: "HTTP/1.1",
					Headers: []*flowpb.HTTPHeader{{Key: "X-Request-Id", Value: "req-1"}, {Key: "Authorization", Value: auth}}}}}}
			tt.r.apply(f)
			if got := f.GetL7().GetHttp().GetUrl(); got != tt.wantURL {
				t.Errorf("url = %q, want %q", got, tt.wantURL)
			}
			want := ""
			if tt.wantSummary {
				want = summary
			}
			if f.GetSummary() != want {
				t.Errorf("Summary = %q, want %q", f.GetSummary(), want)
			}
			if h := f.GetL7().GetHttp().GetHeaders(); len(tt.r.AllowHeaders) > 0 && h[1].GetValue() != Redacted {
				t.Errorf("Authorization = %q, want %s", h[1].GetValue(), Redacted)
			}
			b, err := proto.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.gone {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("%q is still in the flow: %v", s, f)
				}
			}
			for _, s := range tt.kept {
				if !bytes.Contains(b, []byte(s)) {
					t.Errorf("%q is gone from the flow, and was not to be redacted: %v", s, f)
				}
			}
		})
	}
}
