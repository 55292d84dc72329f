package analyze

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowtape/flowtape/internal/defaults"
	"github.com/flowtape/flowtape/schema"
	"github.com/flowtape/flowtape/tape"
)

// setupStep is one statement (or embedded file of statements) of the
// setup: file names the embedded file, for errors; it is empty for SQL
// made here.
type setupStep struct {
	title, file, sql string
}

// setupSteps are what Open runs to define the views over the engine's
// files, in order: a view is bound when created, so what it reads must
// exist already. SetupSQL prints the same steps.
func setupSteps(files tape.Files, versions map[string]string, filtered bool) ([]setupStep, error) {
	steps := []setupStep{
		// Every view reads the footers again when it is created and when
		// a query binds it: cached, opening 10 million flows takes a
		// fraction of a second instead of seconds.
		{title: "settings", sql: "SET parquet_metadata_cache = true"},
		{title: "defaults and facts of the recording format, from flowtape's Go code (internal/defaults, schema)", sql: variablesSQL()},
		{title: "facts of these recordings: recorded with filters (their manifests)", sql: fmt.Sprintf("SET VARIABLE ft_filtered_capture = %t", filtered)},
	}
	file := func(name string) error {
		b, err := SQL.ReadFile(name)
		if err != nil {
			return fmt.Errorf("set up: %w", err)
		}
		steps = append(steps, setupStep{title: "analyze/" + name, file: name, sql: string(b)})
		return nil
	}
	if err := file("sql/macros.sql"); err != nil {
		return nil, err
	}
	steps = append(steps,
		setupStep{title: "flows_all: the flow files", sql: flowsAllView(files.Flows, versions)},
		setupStep{title: "flows: flows_all, each uuid once", sql: flowsView(files.Flows)},
		setupStep{title: "events: the event files", sql: baseView("events", schema.KindEvents, files.Events)})
	// In ViewNames' order: a view reads the views before it.
	for _, v := range ViewNames {
		if f := "sql/views/" + v + ".sql"; fileExists(f) {
			if err := file(f); err != nil {
				return nil, err
			}
		}
	}
	if err := file("sql/window.sql"); err != nil {
		return nil, err
	}
	return steps, nil
}

// SetupSQL is the SQL that Open runs to define the views over the
// engine's files, as one script for the duckdb CLI (duckdb -init
// setup.sql): the analyses' SQL files then run in it as they are.
func (e *Engine) SetupSQL() (string, error) {
	// Absolute paths: the script runs wherever the user starts duckdb.
	files, versions := tape.Files{}, map[string]string{}
	abs := func(paths []string) ([]string, error) {
		out := make([]string, len(paths))
		for i, p := range paths {
			a, err := filepath.Abs(p)
			if err != nil {
				return nil, fmt.Errorf("set up: %w", err)
			}
			out[i] = a
			if v, ok := e.versions[p]; ok {
				versions[a] = v
			}
		}
		return out, nil
	}
	var err error
	if files.Flows, err = abs(e.files.Flows); err != nil {
		return "", err
	}
	if files.Events, err = abs(e.files.Events); err != nil {
		return "", err
	}
	steps, err := setupSteps(files, versions, e.filtered)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "-- The views of flowtape query over %d flow and %d event files. The analyses'\n", len(e.files.Flows), len(e.files.Events))
	b.WriteString("-- parameters are variables: SET VARIABLE since = TIMESTAMP_NS '2026-11-25 13:00:00',\n")
	b.WriteString("-- until, namespace, reporter, level, bucket (seconds); flowtape analyze NAME --sql\n")
	b.WriteString("-- prints an analysis.\n")
	for _, s := range steps {
		q := strings.TrimSpace(s.sql)
		if !strings.HasSuffix(q, ";") {
			q += ";"
		}
		fmt.Fprintf(&b, "\n-- %s\n%s\n", s.title, q)
	}
	return b.String(), nil
}

// variablesSQL sets the DuckDB variables the macros read: the analysis
// defaults and the facts of the recording format that Go declares, so
// that the SQL holds no copy of them.
func variablesSQL() string {
	kafka := schema.ResidualKafka()
	foldFrom, foldTo := schema.HeaderFold()
	var ids []string
	for _, id := range slices.Sorted(maps.Keys(schema.ReservedIdentities)) {
		ids = append(ids, fmt.Sprintf("CAST(%d AS UINTEGER): %s", id, quote(schema.ReservedIdentities[id])))
	}
	var kafkaTag []string
	for _, b := range kafka.KafkaTag {
		kafkaTag = append(kafkaTag, strconv.Itoa(int(b)))
	}
	vars := []struct{ name, value string }{
		{"ft_default_reporter", quote(defaults.Reporter)},
		{"ft_default_level", quote(defaults.Level)},
		{"ft_default_bucket_seconds", strconv.FormatInt(int64(defaults.Bucket/time.Second), 10)},
		{"ft_default_health_degraded", sqlDouble(defaults.HealthDegraded)},
		{"ft_default_health_failure", sqlDouble(defaults.HealthFailure)},
		{"ft_recorder_node", quote(schema.RecorderNode)},
		{"ft_reserved_identities", "MAP {" + strings.Join(ids, ", ") + "}"},
		{"ft_fold_from", quote(foldFrom)},
		{"ft_fold_to", quote(foldTo)},
		{"ft_header_request_id", quote(schema.HeaderRequestID)},
		{"ft_header_content_type", quote(schema.HeaderContentType)},
		{"ft_grpc_content_type", quote(schema.GRPCContentType)},
		{"ft_grpc_protocol", quote(schema.GRPCProtocol)},
		{"ft_grpc_method", quote(schema.GRPCMethod)},
		{"ft_grpc_url_pattern", quote(schema.GRPCURLPattern)},
		{"ft_pb_l7_tag", strconv.Itoa(int(kafka.L7Tag))},
		{"ft_pb_kafka_tag", "[" + strings.Join(kafkaTag, ", ") + "]"},
		{"ft_pb_fields_before_l7", strconv.Itoa(kafka.FieldsBeforeL7)},
	}
	stmts := make([]string, len(vars))
	for i, v := range vars {
		stmts[i] = fmt.Sprintf("SET VARIABLE %s = %s;", v.name, v.value)
	}
	return strings.Join(stmts, "\n")
}

func sqlDouble(f float64) string {
	return "CAST(" + strconv.FormatFloat(f, 'g', -1, 64) + " AS DOUBLE)"
}
