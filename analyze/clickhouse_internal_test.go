package analyze

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Bucket URLs become the URLs and table functions ClickHouse reads them
// with; credentials come from the environment, and no secret is in the
// message of a URL flowtape does not map.
func TestCHObjectStore(t *testing.T) {
	for _, tc := range []struct {
		url, cluster, key, secret string
		base, fn                  string
		err                       string
	}{
		{url: "s3://flows/prod?region=eu-west-1", base: "https://flows.s3.eu-west-1.amazonaws.com/prod",
			fn: "s3('X', 'Parquet')"},
		{url: "s3://flows/a/b/?endpoint=http%3A%2F%2F127.0.0.1%3A7070&use_path_style=true", key: "AK", secret: "SK",
			base: "http://127.0.0.1:7070/flows/a/b", fn: "s3('X', 'AK', 'SK', 'Parquet')"},
		{url: "s3://flows?endpoint=minio:9000&disable_https=true", base: "http://minio:9000/flows", fn: "s3('X', 'Parquet')"},
		{url: "s3://flows/prod?region=us-east-1", cluster: "default", base: "https://flows.s3.us-east-1.amazonaws.com/prod",
			fn: "s3Cluster('default', 'X', 'Parquet')"},
		{url: "gs://flows/prod", base: "https://storage.googleapis.com/flows/prod", fn: "gcs('X', 'Parquet')"},
		{url: "azblob://flows/prod?sig=secret", err: "azureBlobStorage"},
	} {
		t.Setenv("AWS_ACCESS_KEY_ID", tc.key)
		t.Setenv("AWS_SECRET_ACCESS_KEY", tc.secret)
		t.Setenv("AWS_REGION", "")
		base, fn, err := chObjectStore(tc.url, tc.cluster)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "secret") {
				t.Errorf("%s: error %v, want one about %s without the secret", tc.url, err, tc.err)
			}
			continue
		}
		if err != nil || base != tc.base || fn("X") != tc.fn {
			t.Errorf("%s: %q, %q, %v; want %q, %q", tc.url, base, fn("X"), err, tc.base, tc.fn)
		}
	}
}

// chDB's JSON values become the Go values the DuckDB engine gives.
func TestCHValue(t *testing.T) {
	ts := time.Date(2026, 11, 25, 13, 0, 0, 123456789, time.UTC)
	for _, tc := range []struct {
		typ, raw string
		want     any
	}{
		{"Nullable(UInt64)", `18446744073709551615`, int64(-1)},
		{"Int64", `"42"`, int64(42)},
		{"Nullable(Float64)", `0.5`, 0.5},
		{"Nullable(String)", `null`, nil},
		{"LowCardinality(Nullable(String))", `"a"`, "a"},
		{"Bool", `true`, true},
		{"Nullable(DateTime64(9, 'UTC'))", `"2026-11-25 13:00:00.123456789"`, ts},
		{"Array(Nullable(String))", `["a",null]`, []any{"a", nil}},
		{"Array(Nullable(UInt32))", `[1,2]`, []any{int64(1), int64(2)}},
	} {
		got, err := chValue(tc.typ, json.RawMessage(tc.raw))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %s: %#v, %v; want %#v", tc.typ, tc.raw, got, err, tc.want)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"clickhouse://default:s3cret@ch:9000/db":                             "clickhouse://default:***@ch:9000/db",
		"clickhouse://ch:9000/db":                                            "clickhouse://ch:9000/db",
		"clickhouse://u:p@ss@ch:9000":                                        "clickhouse://u:***@ch:9000",
		"clickhouse://ch:9000/db?username=u&password=s3cret&dial_timeout=1s": "clickhouse://ch:9000/db?username=u&password=***&dial_timeout=1s",
	} {
		if got := redactDSN(in); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

// Comments go, -- inside a string stays.
func TestStripComments(t *testing.T) {
	in := "-- a view\nSELECT '--since' AS x, -- the flag\n  'it''s' -- quote\n\n"
	if got, want := stripComments(in), "SELECT '--since' AS x,\n  'it''s'"; got != want {
		t.Errorf("stripComments: %q, want %q", got, want)
	}
}
