package printer

import (
	"bytes"
	"strings"
	"testing"
)

func TestPrint(t *testing.T) {
	tbl := Table{Columns: []string{"service", "requests", "error_rate", "labels"},
		Rows: [][]any{{"pay|ment", 3, 0.25, []string{"a", "b"}}, {"cart", 10, 0.0, nil}, {"email", 1883, 0.000531, nil}}}
	tests := []struct {
		format string
		want   string
	}{
		// the table rounds floats for the eye; CSV, for scripts, keeps them
		{"table", "SERVICE   REQUESTS  ERROR_RATE  LABELS\npay|ment  3         0.25        a,b\ncart      10        0\nemail     1883      0.001\n"},
		{"csv", "service,requests,error_rate,labels\npay|ment,3,0.25,\"a,b\"\ncart,10,0,\nemail,1883,0.000531,\n"},
		{"markdown", "| service | requests | error_rate | labels |\n| --- | --- | --- | --- |\n| pay\\|ment | 3 | 0.25 | a,b |\n| cart | 10 | 0 |  |\n| email | 1883 | 0.001 |  |\n"},
		{"json", "[\n  {\n    \"error_rate\": 0.25,\n    \"labels\": [\n      \"a\",\n      \"b\"\n    ],\n    \"requests\": 3,\n    \"service\": \"pay|ment\"\n  },\n  {\n    \"error_rate\": 0,\n    \"labels\": null,\n    \"requests\": 10,\n    \"service\": \"cart\"\n  },\n  {\n    \"error_rate\": 0.000531,\n    \"labels\": null,\n    \"requests\": 1883,\n    \"service\": \"email\"\n  }\n]\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := Print(&b, tt.format, tbl); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("%s:\ngot  %q\nwant %q", tt.format, b.String(), tt.want)
		}
	}
}

func TestCheckFormat(t *testing.T) {
	if err := CheckFormat("xml"); err == nil || !strings.Contains(err.Error(), "table, json, csv, markdown") {
		t.Errorf("CheckFormat(xml) = %v", err)
	}
	if err := CheckFormat("dot", "dot", "json"); err != nil {
		t.Errorf("CheckFormat(dot, allowed) = %v", err)
	}
}

// The table and Markdown print floats with three decimals, but never a
// float that is not zero as 0: an error rate of 0.0004 is errors.
func TestCell(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{0.25, "0.25"}, {0.0, "0"}, {12.3456, "12.346"}, {0.000531, "0.001"},
		{0.0004, "0.0004"}, {0.000417, "0.000417"}, {0.00012345, "0.000123"}, {-0.0002, "-0.0002"}, {1e-9, "0.000000001"}, {1.98e-5, "0.0000198"},
		{nil, ""}, {"x", "x"}, {[]string{"a", "b"}, "a,b"}, {int64(7), "7"},
	} {
		if got := Cell(tc.v); got != tc.want {
			t.Errorf("Cell(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}
