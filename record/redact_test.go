package record

import (
	"testing"

	flowpb "github.com/cilium/cilium/api/v1/flow"
)

func TestRedaction(t *testing.T) {
	tests := []struct {
		name    string
		r       Redaction
		url     string
		wantURL string
	}{
		{"query", Redaction{URLQuery: true}, "http://svc:80/a/b?token=secret&x=1", "http://svc:80/a/b"},
		{"userinfo", Redaction{UserInfo: true}, "http://user:pw@svc/a?x=1", "http://svc/a?x=1"},
		{"both", Redaction{URLQuery: true, UserInfo: true}, "http://user:pw@svc/a?x=1", "http://svc/a"},
		{"unparseable query", Redaction{URLQuery: true}, "http://svc/a%zz?token=secret", "http://svc/a%zz"},
		{"unparseable userinfo", Redaction{URLQuery: true, UserInfo: true}, "http://u:pw@svc:bad/x?token=s", "http://svc:bad/x"},
		{"off", Redaction{}, "http://u:pw@svc/x?token=s", "http://u:pw@svc/x?token=s"},
	}
	for _, tt := range tests {
		f := &flowpb.Flow{Summary: "HTTP/1.1 GET " + tt.url, L7: &flowpb.Layer7{Record: &flowpb.Layer7_Http{Http: &flowpb.HTTP{Url: tt.url}}}}
		tt.r.apply(f)
		if got := f.GetL7().GetHttp().GetUrl(); got != tt.wantURL {
			t.Errorf("%s: url = %q, want %q", tt.name, got, tt.wantURL)
		}
	}
	f := &flowpb.Flow{L7: &flowpb.Layer7{Record: &flowpb.Layer7_Http{Http: &flowpb.HTTP{Headers: []*flowpb.HTTPHeader{
		{Key: "X-Request-Id", Value: "1"}, {Key: "Authorization", Value: "Bearer x"}}}}}}
	Redaction{AllowHeaders: []string{"x-request-id"}}.apply(f)
	if h := f.GetL7().GetHttp().GetHeaders(); h[0].Value != "1" || h[1].Value != Redacted {
		t.Errorf("headers = %v", h)
	}
}
