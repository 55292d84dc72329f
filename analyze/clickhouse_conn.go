package analyze

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/flowtape/flowtape/internal/chdb"
	"github.com/flowtape/flowtape/printer"
)

// chdbConn runs queries on chDB in this process.
type chdbConn struct{}

// chdbFormat gives each row as a JSON array, after two rows of the
// columns' names and types, which say how to read the values.
const chdbFormat = "JSONCompactEachRowWithNamesAndTypes"

func (chdbConn) query(ctx context.Context, q string) (printer.Table, error) {
	out, err := chdb.Query(ctx, q, chdbFormat)
	if err != nil {
		return printer.Table{}, chError(err)
	}
	return parseCompactJSON(out)
}

func (chdbConn) columns(ctx context.Context, q string) ([]Column, error) {
	out, err := chdb.Query(ctx, q, chdbFormat)
	if err != nil {
		return nil, chError(err)
	}
	// the first two lines: the names, then the types
	lines := bytes.SplitN(out, []byte("\n"), 3)
	if len(lines) < 2 {
		return nil, fmt.Errorf("read ClickHouse's output: no header")
	}
	var names, types []string
	if err := json.Unmarshal(lines[0], &names); err != nil {
		return nil, fmt.Errorf("read ClickHouse's output: %w", err)
	}
	if err := json.Unmarshal(lines[1], &types); err != nil || len(types) != len(names) {
		return nil, fmt.Errorf("read ClickHouse's output: the types of %d columns", len(names))
	}
	cols := make([]Column, len(names))
	for i := range names {
		cols[i] = Column{Name: names[i], Type: types[i]}
	}
	return cols, nil
}

// close ends the process's chDB session (and removes its directory); a
// ClickHouse engine opened later, or still open, starts a new one.
func (chdbConn) close() error {
	chdb.Close()
	return nil
}

// chError keeps the first line of ClickHouse's message, without its
// "Code: N. DB::Exception: " prefix and stack.
func chError(err error) error {
	s := strings.TrimSpace(err.Error())
	if i := strings.IndexByte(s, '\n'); i > 0 {
		s = s[:i]
	}
	if _, rest, ok := strings.Cut(s, "DB::Exception: "); ok {
		s = rest
	}
	// not the whole query, which ClickHouse quotes after "In scope", nor
	// the function that raised it (throwIf: the SQL's own message)
	for _, cut := range []string{" In scope ", ": while executing '"} {
		if i := strings.Index(s, cut); i > 0 {
			s = s[:i]
		}
	}
	return fmt.Errorf("%s", s)
}

func parseCompactJSON(out []byte) (printer.Table, error) {
	var t printer.Table
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	var types []string
	for line := 0; sc.Scan(); line++ {
		var row []json.RawMessage
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.UseNumber()
		if err := d.Decode(&row); err != nil {
			return t, fmt.Errorf("read ClickHouse's output: %w", err)
		}
		switch line {
		case 0:
			for _, r := range row {
				var s string
				_ = json.Unmarshal(r, &s)
				t.Columns = append(t.Columns, s)
			}
		case 1:
			for _, r := range row {
				var s string
				_ = json.Unmarshal(r, &s)
				types = append(types, s)
			}
		default:
			vals := make([]any, len(row))
			for i, r := range row {
				v, err := chValue(types[i], r)
				if err != nil {
					return t, fmt.Errorf("read ClickHouse's column %s (%s): %w", t.Columns[i], types[i], err)
				}
				vals[i] = plain(v)
			}
			t.Rows = append(t.Rows, vals)
		}
	}
	return t, sc.Err()
}

// chValue reads a JSON value of ClickHouse type typ as the Go value
// DuckDB gives for the column: integers int64, floats float64, times
// time.Time in UTC, arrays and tuples []any, NULL nil (plain then
// formats them as the DuckDB engine's rows are).
func chValue(typ string, raw json.RawMessage) (any, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	typ = unwrapType(typ)
	switch {
	case strings.HasPrefix(typ, "Array("):
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, err
		}
		out := make([]any, len(items))
		for i, it := range items {
			v, err := chValue(typ[len("Array("):len(typ)-1], it)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case strings.HasPrefix(typ, "Tuple("), strings.HasPrefix(typ, "Map("):
		var v any
		err := json.Unmarshal(raw, &v)
		return v, err
	case strings.HasPrefix(typ, "Int"), strings.HasPrefix(typ, "UInt"):
		s := strings.Trim(string(raw), `"`)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			u, uerr := strconv.ParseUint(s, 10, 64)
			if uerr != nil {
				return nil, err
			}
			return int64(u), nil
		}
		return n, nil
	case strings.HasPrefix(typ, "Float"), strings.HasPrefix(typ, "Decimal"):
		s := strings.Trim(string(raw), `"`)
		switch s {
		case "nan":
			return math.NaN(), nil
		case "inf", "+inf":
			return math.Inf(1), nil
		case "-inf":
			return math.Inf(-1), nil
		}
		return strconv.ParseFloat(s, 64)
	case typ == "Bool":
		return string(raw) == "true", nil
	case strings.HasPrefix(typ, "DateTime"), typ == "Date", typ == "Date32":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		layout := "2006-01-02 15:04:05.999999999"
		if strings.HasPrefix(typ, "Date") && !strings.HasPrefix(typ, "DateTime") {
			layout = "2006-01-02"
		}
		return time.ParseInLocation(layout, s, time.UTC)
	default:
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
}

// unwrapType drops Nullable() and LowCardinality().
func unwrapType(t string) string {
	for _, w := range []string{"Nullable(", "LowCardinality("} {
		for strings.HasPrefix(t, w) {
			t = t[len(w) : len(t)-1]
		}
	}
	return t
}

// chServer runs queries on a ClickHouse server over its native protocol.
type chServer struct{ conn driver.Conn }

func openCHServer(ctx context.Context, dsn string) (chConn, error) {
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("--clickhouse %s: %w (use clickhouse://USER:PASSWORD@HOST:9000/DATABASE)", redactDSN(dsn), err)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("--clickhouse %s: %w", redactDSN(dsn), err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("--clickhouse %s: %w", redactDSN(dsn), chError(err))
	}
	return chServer{conn}, nil
}

// redactDSN hides a DSN's password, given as user:password@ or as the
// password parameter.
func redactDSN(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	hostPart, query, hasQuery := strings.Cut(rest, "?")
	if at := strings.LastIndex(hostPart, "@"); at >= 0 {
		user, _, _ := strings.Cut(hostPart[:at], ":")
		hostPart = user + ":***" + hostPart[at:]
	}
	if hasQuery {
		params := strings.Split(query, "&")
		for i, p := range params {
			if k, _, ok := strings.Cut(p, "="); ok && strings.EqualFold(k, "password") {
				params[i] = k + "=***"
			}
		}
		hostPart += "?" + strings.Join(params, "&")
	}
	return scheme + "://" + hostPart
}

func (s chServer) query(ctx context.Context, q string) (printer.Table, error) {
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return printer.Table{}, chError(err)
	}
	defer rows.Close()
	t := printer.Table{Columns: rows.Columns()}
	types := rows.ColumnTypes()
	for rows.Next() {
		ptrs := make([]any, len(types))
		for i, ct := range types {
			ptrs[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			return t, chError(err)
		}
		vals := make([]any, len(ptrs))
		for i, p := range ptrs {
			vals[i] = plain(normalizeValue(reflect.ValueOf(p).Elem()))
		}
		t.Rows = append(t.Rows, vals)
	}
	if err := rows.Err(); err != nil {
		return t, chError(err)
	}
	return t, nil
}

func (s chServer) columns(ctx context.Context, q string) ([]Column, error) {
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, chError(err)
	}
	defer rows.Close()
	var cols []Column
	for _, ct := range rows.ColumnTypes() {
		cols = append(cols, Column{Name: ct.Name(), Type: ct.DatabaseTypeName()})
	}
	return cols, nil
}

func (s chServer) close() error { return s.conn.Close() }

// normalizeValue turns a value the Go client scanned into the Go value
// DuckDB gives (see chValue).
func normalizeValue(v reflect.Value) any {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch x := v.Interface().(type) {
	case time.Time:
		return x.UTC()
	case fmt.Stringer:
		if v.Kind() == reflect.Array { // UUID
			return x.String()
		}
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int64(v.Uint())
	case reflect.Float32, reflect.Float64:
		return v.Float()
	case reflect.Bool:
		return v.Bool()
	case reflect.String:
		return v.String()
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = normalizeValue(v.Index(i))
		}
		return out
	}
	return v.Interface()
}
