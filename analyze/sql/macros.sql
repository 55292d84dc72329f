-- Macros the views and analyses share.
--
-- They read two kinds of DuckDB variables. The parameters of an analysis,
-- which a user sets (SET VARIABLE since = TIMESTAMP '...'), are read only
-- through ft_since() ... ft_bucket_seconds() below. The defaults and the
-- facts of the recording format (ft_default_*, ft_*) come from flowtape's
-- Go code, which sets them before this file runs (flowtape query DIR
-- --print-setup shows them), so that no value is written twice.
-- getvariable() is folded to a constant when a query is planned: a join
-- or filter on a parameter that does not apply is planned away.

-- The parameters; NULL when unset.

-- ft_since and ft_until bound the analysed window (--since, --until;
-- SET VARIABLE since, until).
CREATE OR REPLACE MACRO ft_since() AS getvariable('since')::TIMESTAMP_NS;
CREATE OR REPLACE MACRO ft_until() AS getvariable('until')::TIMESTAMP_NS;
-- ft_new_since is egress's --new-since: rows of destinations no flow
-- before it went to.
CREATE OR REPLACE MACRO ft_new_since() AS getvariable('new_since')::TIMESTAMP_NS;

-- ft_namespace keeps the rows of one namespace (--namespace; SET VARIABLE
-- namespace).
CREATE OR REPLACE MACRO ft_namespace() AS getvariable('namespace')::VARCHAR;

-- ft_reporter is whose view of a request counts (--reporter; SET VARIABLE
-- reporter): server (default), client or both; see requests_counted.
CREATE OR REPLACE MACRO ft_reporter() AS
    coalesce(getvariable('reporter')::VARCHAR, getvariable('ft_default_reporter')::VARCHAR);

-- ft_level is the graph's level (--level; SET VARIABLE level): workload
-- (default), service or pod.
CREATE OR REPLACE MACRO ft_level() AS
    coalesce(getvariable('level')::VARCHAR, getvariable('ft_default_level')::VARCHAR);

-- ft_errors_by is what a row of errors is (--by; SET VARIABLE errors_by):
-- path (default: an edge's method and path) or edge.
CREATE OR REPLACE MACRO ft_errors_by() AS
    coalesce(getvariable('errors_by')::VARCHAR, getvariable('ft_default_errors_by')::VARCHAR);

-- ft_bucket_seconds is the timeline's bucket in seconds (--bucket; SET
-- VARIABLE bucket).
CREATE OR REPLACE MACRO ft_bucket_seconds() AS
    coalesce(getvariable('bucket')::BIGINT, getvariable('ft_default_bucket_seconds')::BIGINT);

-- ft_in_namespace: whether a row with these namespaces passes --namespace
-- (NULL passes everything).
CREATE OR REPLACE MACRO ft_in_namespace(a, b) AS
    ft_namespace() IS NULL OR ft_namespace() IN (a, b);

-- ft_recorder_node is the node_name of the events a recorder writes about
-- itself (its stream broke): they concern the whole recording.
CREATE OR REPLACE MACRO ft_recorder_node() AS getvariable('ft_recorder_node')::VARCHAR;

-- The derived columns of the recording format, for the files that do not
-- store them (written before a column existed; http_request_id, from
-- schema 1.4 on: schema.ViewColumns), computed as package schema computes
-- them in Go (schema/flow_columns.go, derive_batch.go).

-- ft_fold case-folds an HTTP header name the way Go's strings.EqualFold
-- compares it with an ASCII name: every letter that folds to an ASCII
-- letter (A-Z, and the Kelvin sign and long s of Unicode) becomes that
-- lowercase letter.
CREATE OR REPLACE MACRO ft_fold(s) AS
    translate(s, getvariable('ft_fold_from')::VARCHAR, getvariable('ft_fold_to')::VARCHAR);

-- ft_header returns the first value of an HTTP header, case-insensitively.
CREATE OR REPLACE MACRO ft_header(headers, name) AS
    list_filter(headers, h -> ft_fold(h.key) = ft_fold(name))[1].value;

-- ft_request_id is the http_request_id column: the X-Request-Id header;
-- NULL when absent or empty.
CREATE OR REPLACE MACRO ft_request_id(headers) AS
    nullif(ft_header(headers, getvariable('ft_header_request_id')::VARCHAR), '');

-- ft_is_grpc tells gRPC calls from other HTTP: a content-type of
-- application/grpc, or, where Hubble left the headers out, an HTTP/2 POST
-- to /package.Service/Method.
CREATE OR REPLACE MACRO ft_is_grpc(protocol, method, url, headers) AS
    coalesce(starts_with(ft_header(headers, getvariable('ft_header_content_type')::VARCHAR),
                         getvariable('ft_grpc_content_type')::VARCHAR), false)
    OR coalesce(protocol = getvariable('ft_grpc_protocol')::VARCHAR AND method = getvariable('ft_grpc_method')::VARCHAR
                AND regexp_matches(url, getvariable('ft_grpc_url_pattern')::VARCHAR), false);

-- ft_bytes is a BLOB as the list of its bytes (0-255), for reading a
-- protobuf encoding.
CREATE OR REPLACE MACRO ft_bytes(b) AS
    list_transform(range(1, octet_length(b) + 1), i -> ('0x' || hex(b[i:i]))::INTEGER);

-- ft_varint_len is the length of the protobuf varint at byte p of bs.
CREATE OR REPLACE MACRO ft_varint_len(bs, p) AS
    list_position(list_transform(bs[p:p + 9], x -> x < 128), true);

-- ft_varint is the protobuf varint at byte p of bs, as read for a length
-- (up to 8 bytes).
CREATE OR REPLACE MACRO ft_varint(bs, p) AS
    list_sum(list_transform(range(ft_varint_len(bs, p)), k -> (bs[p + k] & 127)::BIGINT << (7 * k)));

-- ft_pb_next is the byte after the protobuf field at byte p of bs, whose
-- tag is one byte (a field numbered below 16); NULL for a group (proto3
-- has none).
CREATE OR REPLACE MACRO ft_pb_next(bs, p) AS
    p + 1 + CASE bs[p] & 7
        WHEN 0 THEN ft_varint_len(bs, p + 1)
        WHEN 1 THEN 8
        WHEN 2 THEN ft_varint_len(bs, p + 1) + ft_varint(bs, p + 1)
        WHEN 5 THEN 4 END;

-- ft_residual_l7 is the byte at which a flow residual's (extra) l7 field
-- starts, else where its fields numbered below l7's end. Go writes a
-- message's fields by number, and each field before l7 once at most:
-- ft_pb_fields_before_l7 steps reach it.
CREATE OR REPLACE MACRO ft_residual_l7(bs) AS
    list_reduce(range(getvariable('ft_pb_fields_before_l7')::INTEGER),
        (p, i) -> CASE WHEN p <= len(bs) AND bs[p] >> 3 < getvariable('ft_pb_l7_tag')::INTEGER >> 3
                       THEN ft_pb_next(bs, p) ELSE p END,
        1);

-- ft_kafka_at: whether the l7 field at byte p of bs holds a kafka record.
-- The columns hold all of Layer7 but its record (http, dns or kafka):
-- in the residual of a flow with neither HTTP nor DNS, the l7 field's
-- payload starts with kafka's tag when it has one.
CREATE OR REPLACE MACRO ft_kafka_at(bs, p) AS
    bs[p] = getvariable('ft_pb_l7_tag')::INTEGER
    AND ft_varint(bs, p + 1) >= len(getvariable('ft_pb_kafka_tag')::INTEGER[])
    AND bs[p + 1 + ft_varint_len(bs, p + 1):p + ft_varint_len(bs, p + 1) + len(getvariable('ft_pb_kafka_tag')::INTEGER[])]
        = getvariable('ft_pb_kafka_tag')::INTEGER[];

-- ft_l7_protocol is the l7_protocol column, grpc, http, dns or kafka, of
-- a flow's http_code, http_protocol, http_method, http_url, http_headers,
-- dns_rcode, l7_latency_ns and extra. A flow has an HTTP record exactly
-- when http_code is not NULL, a DNS record when dns_rcode is not NULL,
-- an L7 record when l7_latency_ns is not NULL; a kafka record only the
-- residual (extra) holds.
CREATE OR REPLACE MACRO ft_l7_protocol(code, protocol, method, url, headers, rcode, latency, residual) AS
    CASE WHEN code IS NOT NULL THEN CASE WHEN ft_is_grpc(protocol, method, url, headers) THEN 'grpc' ELSE 'http' END
         WHEN rcode IS NOT NULL THEN 'dns'
         WHEN latency IS NOT NULL AND coalesce(ft_kafka_at(ft_bytes(residual), ft_residual_l7(ft_bytes(residual))), false)
             THEN 'kafka' END;

-- ft_name names an endpoint the way the analyses group by it (the
-- source_endpoint and destination_endpoint columns): its workload, else
-- its app label, else its pod, else its reserved identity (world, host,
-- kube-apiserver, ...), else the DNS name its IP was resolved from, else
-- the IP. Reserved identities are named by number (Cilium's fixed
-- numbering): reading the identity's labels would cost more than the rest
-- of a query.
CREATE OR REPLACE MACRO ft_name(workload, app, pod, identity, names, ip) AS coalesce(
    nullif(workload, ''),
    nullif(app, ''),
    nullif(pod, ''),
    getvariable('ft_reserved_identities')[identity],
    nullif(rtrim(names[1], '.'), ''),
    ip);

-- ft_outside is whether an endpoint may be outside the cluster, by
-- Cilium's word for it: no pod, and the world identity (2; 9 and 10,
-- world-ipv4 and world-ipv6, in dual-stack clusters), a local-scope
-- identity (2^24 and up: the addresses CIDR and FQDN policies select), or
-- none Cilium could tell (0, or no endpoint at all). host, remote-node
-- and kube-apiserver are the cluster's own. egress also leaves out the
-- addresses the recording places in a pod or on a node.
CREATE OR REPLACE MACRO ft_outside(identity, pod) AS
    coalesce(nullif(pod, '') IS NULL AND (getvariable('ft_reserved_identities')[identity] IN ('world', 'world-ipv4', 'world-ipv6')
        OR identity >= 16777216 OR coalesce(identity, 0) = 0), false);

-- ft_local_only is whether an address never leaves its link or the
-- cluster's network: IPv4 multicast (224.0.0.0/4) and broadcast, IPv6
-- multicast (ff00::/8) and link-local (fe80::/10). 169.254.0.0/16 is not:
-- the cloud's metadata server lives there, outside the pod.
CREATE OR REPLACE MACRO ft_local_only(ip) AS
    ip = '255.255.255.255' OR regexp_matches(ip, '^(22[4-9]|23[0-9])\.') OR regexp_matches(lower(ip), '^(ff[0-9a-f]{0,2}:|fe[89ab][0-9a-f]?:)');

-- URLs.

-- ft_url_rest is a URL after its scheme (host, port and path), or the URL
-- when it has no scheme.
CREATE OR REPLACE MACRO ft_url_rest(url) AS
    CASE WHEN contains(url, '://') THEN substr(url, strpos(url, '://') + 3) ELSE url END;

-- ft_path is the path of a URL, without query string or fragment; the URL
-- itself when it has none. String functions, not a regular expression:
-- this runs once per request.
CREATE OR REPLACE MACRO ft_path(url) AS coalesce(nullif(split_part(split_part(
    CASE WHEN strpos(ft_url_rest(url), '/') > 0 THEN ft_url_rest(url)[strpos(ft_url_rest(url), '/'):] ELSE '' END,
    '?', 1), '#', 1), ''), url);

-- The graph's nodes.

-- ft_node names a graph node at a level: workload (the endpoint's name),
-- service (the Kubernetes service it serves, where known) or pod.
CREATE OR REPLACE MACRO ft_node(level, name, pod, service) AS
    CASE level WHEN 'pod' THEN coalesce(nullif(pod, ''), name) WHEN 'service' THEN coalesce(service, name) ELSE name END;

-- Counting.

-- ft_requests, ft_errors, ft_client_errors and ft_no_response count rows
-- of requests_counted (an aggregate; pass the row's no_response, error or
-- client_error): requests answered (what rates and error shares divide),
-- failed (5xx and failed gRPC calls), answered 4xx, and never answered.
CREATE OR REPLACE MACRO ft_requests(no_response) AS count(*) FILTER (NOT no_response);
CREATE OR REPLACE MACRO ft_errors(error) AS count(*) FILTER (error);
CREATE OR REPLACE MACRO ft_client_errors(client_error) AS count(*) FILTER (client_error);
CREATE OR REPLACE MACRO ft_no_response(no_response) AS count(*) FILTER (no_response);

-- ft_connections_lost counts the connections of a group of rows of
-- connections (an aggregate) that were dropped or never answered: what
-- health grades for L4 traffic.
CREATE OR REPLACE MACRO ft_connections_lost(dropped, unanswered) AS count(*) FILTER (dropped OR unanswered);

-- ft_error_rate is an error share, NULL without requests.
CREATE OR REPLACE MACRO ft_error_rate(errors, requests) AS round(errors / nullif(requests, 0), 6);

-- ft_health grades an error share by Kiali's default thresholds: >= 0.1%
-- degraded, >= 10% failure.
CREATE OR REPLACE MACRO ft_health(errors, total) AS
    CASE WHEN coalesce(total, 0) = 0 THEN 'unknown'
         WHEN errors / total >= getvariable('ft_default_health_failure')::DOUBLE THEN 'failure'
         WHEN errors / total >= getvariable('ft_default_health_degraded')::DOUBLE THEN 'degraded'
         ELSE 'healthy' END;

-- ft_traffic_health is the health of a service or edge: of its requests'
-- errors where an L7 proxy saw it (l7), else of its connections dropped
-- or never answered (resets are not failures: many clients close
-- connections so), of those the recording can judge (see connections):
-- unknown where it can judge none.
CREATE OR REPLACE MACRO ft_traffic_health(l7, errors, requests, connections_lost, judged_connections) AS
    CASE WHEN l7 THEN ft_health(errors, requests) ELSE ft_health(connections_lost, judged_connections) END;

-- ft_drop_status is how errors names the failure of a dropped connection:
-- dropped: and the reason that dropped most of its packets. drop_reasons
-- is the connections view's count string ("POLICY_DENY=3,..." most
-- first); its counts are packets, and errors counts connections by status
-- (ft_counts), so that "dropped:POLICY_DENY=17" is 17 connections.
CREATE OR REPLACE MACRO ft_drop_status(drop_reasons) AS
    'dropped:' || coalesce(split_part(split_part(drop_reasons, ',', 1), '=', 1), '');

-- ft_counts renders a list of names as "name=count,..." by count, then name.
CREATE OR REPLACE MACRO ft_counts(names) AS
    list_aggr(list_transform(
        list_sort(list_transform(map_entries(list_histogram(names)), e -> {n: -e.value, k: e.key})),
        e -> e.k || '=' || (-e.n)), 'string_agg', ',');

-- ft_counts_list is ft_counts of names already counted, as a list of
-- {n: count, k: name}.
CREATE OR REPLACE MACRO ft_counts_list(l) AS
    list_aggr(list_transform(list_sort(list_transform(l, e -> {n: -e.n, k: e.k})), e -> e.k || '=' || (-e.n)), 'string_agg', ',');

-- ft_sum_by_key is a list of {k: name, n: count} with each name once,
-- its counts summed; a NULL name is left out, as ft_counts_of leaves it.
CREATE OR REPLACE MACRO ft_sum_by_key(l) AS
    list_transform(list_distinct(list_transform(l, e -> e.k)),
        key -> {n: list_sum(list_transform(list_filter(l, e -> e.k = key), e -> e.n)), k: key});

-- ft_counts_of is ft_counts of names already counted (an aggregate over
-- rows of a name and its count n).
CREATE OR REPLACE MACRO ft_counts_of(name, n) AS
    string_agg(name || '=' || n, ',' ORDER BY n DESC, name);

-- ft_bound_at_call(l) is one row (l, a list parameter of a table macro,
-- as a list), cross joined first in the FROM of the final SELECT of the
-- big table macros over the views (ft_requests_of, ft_connections): it
-- makes DuckDB bind them once per query instead of also when they are
-- created. DuckDB (1.4 and later) binds a table macro's query when the
-- macro is created, and gives up without an error where it needs a
-- parameter's type first, which list_concat does (so does query_table of
-- a parameter: ft_traffic_in and the summary path's macros name their
-- window, query_table(win), first). It binds a CTE where the final
-- SELECT reaches it, so the guard is of no use inside one. The binding at
-- creation would bind every view the macro reads, for nothing, as the
-- query that calls the macro binds it anyway: services over 1M flows set
-- up in 66 ms instead of 115. A macro that calls a guarded one with its
-- own parameter (ft_requests_in, ft_requests_counted) is bound at the
-- call too; one that passes a constant list is bound at creation, as are
-- the small macros left unguarded (ft_window, ft_summary_rows). Should
-- DuckDB stop giving up so, it costs that time again, never a different
-- row. TestTableMacrosBoundAtCall guards it.
CREATE OR REPLACE MACRO ft_bound_at_call(l) AS TABLE SELECT list_concat(l, []) AS bound_at_call;
