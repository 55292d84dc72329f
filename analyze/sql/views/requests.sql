-- requests: one row per L7 HTTP or gRPC request, endpoints in the request's
-- direction (client -> server), as Hubble's httpV2 metrics count them.
--
-- A request is a RESPONSE flow: Hubble reports responses with source and
-- destination swapped, so the client is the response's destination. A
-- REQUEST flow whose response was never seen (no RESPONSE with the same
-- node, proxy side, X-Request-Id, client and server: applications pass the
-- ID on to the calls they make, so one ID names a tree of calls) is a
-- request without response (no_response = true, status NULL); a request
-- younger than the longest latency seen (at least 1 s) at the end of the
-- recording may still have been answered, and is left out. Without
-- X-Request-Id (proxies other than Envoy) a request cannot be paired, and
-- is not counted as unanswered. Client and server are compared by the
-- names the views give them (the pods view).
--
-- latency_ns is the proxy's request-to-response time; NULL where the proxy
-- did not measure it (Hubble then reports 0).
--
-- reporter is the proxy that saw it: client (the caller's egress proxy) or
-- server (the callee's ingress proxy). A request seen by both proxies has
-- two rows, one per reporter (requests_counted counts it once);
-- seen_by_server tells whether a server proxy saw the request at all (a
-- flow with the same X-Request-Id, client and server; without an ID,
-- whether a server proxy answered any request of that client and server
-- without one).
--
-- The pairing was done when the flows were written, within each file (the
-- derived requests table, see docs/schema.md): this view pairs what a file
-- could not, the requests it holds open and the client rows it could not
-- tell were seen by a server, with the rows of the other files.
-- ft_requests_of is the rows of the requests view; with skip_counted, not
-- the client proxy's rows of requests whose server proxy's row is in the
-- same file (counted_by_server): requests_counted's server rule, which
-- counts the server's rows, reads those row groups not at all. cols are
-- the columns to give (NULL: all): DuckDB reads every column of the files
-- otherwise (it prunes no column below the filter on answered requests),
-- twice the time of services' scan.
CREATE OR REPLACE MACRO ft_requests_of(skip_counted, cols) AS TABLE
WITH r AS NOT MATERIALIZED (
    SELECT r.* REPLACE (coalesce(rc.name, r.client) AS client, coalesce(rs.name, r.server) AS server)
    FROM derived_requests r
    LEFT JOIN pod_renames rc ON getvariable('ft_pods_renamed') AND rc.namespace IS NOT DISTINCT FROM r.client_namespace AND rc.pod = r.client_pod
    LEFT JOIN pod_renames rs ON getvariable('ft_pods_renamed') AND rs.namespace IS NOT DISTINCT FROM r.server_namespace AND rs.pod = r.server_pod
    WHERE NOT skip_counted OR counted_by_server = false
),
-- Rows that only the names the views give their endpoints pair (their
-- files pair rows of the same pods): the open requests and the client
-- rows whose file could not tell whether a server proxy saw the request,
-- with the rows of the same call_key (node, proxy, X-Request-Id) or
-- proxy_key (X-Request-Id) in any file, hashed with the names. From the
-- stored rows first (joined with pod names, all rows would be read), a
-- semi join for each key: DuckDB then filters the scan by the few keys,
-- and reads the other columns of those rows only (their OR read every
-- row's: 0.55 s of CPU over 10M flows).
-- answered: the open requests a response answers (the same call_key,
-- client and server)
answered AS (
    SELECT DISTINCT hash(c.call_key, coalesce(rc.name, c.client), coalesce(rs.name, c.server)) AS h
    FROM (SELECT call_key, client, client_namespace, client_pod, server, server_namespace, server_pod
          FROM derived_requests
          WHERE NOT open AND call_key IN (SELECT call_key FROM derived_requests WHERE open)) c
    LEFT JOIN pod_renames rc ON getvariable('ft_pods_renamed') AND rc.namespace IS NOT DISTINCT FROM c.client_namespace AND rc.pod = c.client_pod
    LEFT JOIN pod_renames rs ON getvariable('ft_pods_renamed') AND rs.namespace IS NOT DISTINCT FROM c.server_namespace AND rs.pod = c.server_pod
),
-- still in flight when the recording ended is not unanswered
horizon AS (
    SELECT max(last_time) - to_microseconds(greatest(max(max_latency_ns) // 1000, 1000000)::BIGINT) AS t
    FROM derived_traffic_all WHERE l7_protocol IN ('http', 'grpc') AND l7_type IN ('REQUEST', 'RESPONSE')
),
-- the client rows a server proxy saw: the same proxy_key, client and server
seen AS (
    SELECT DISTINCT hash(c.proxy_key, coalesce(rc.name, c.client), coalesce(rs.name, c.server)) AS h
    FROM (SELECT proxy_key, client, client_namespace, client_pod, server, server_namespace, server_pod
          FROM derived_requests
          WHERE reporter = 'server' AND proxy_key IN (SELECT proxy_key FROM derived_requests WHERE seen_by_server IS NULL AND proxy_key IS NOT NULL)) c
    LEFT JOIN pod_renames rc ON getvariable('ft_pods_renamed') AND rc.namespace IS NOT DISTINCT FROM c.client_namespace AND rc.pod = c.client_pod
    LEFT JOIN pod_renames rs ON getvariable('ft_pods_renamed') AND rs.namespace IS NOT DISTINCT FROM c.server_namespace AND rs.pod = c.server_pod
),
-- the client and server pairs a server proxy answered without X-Request-Id
-- (proxy_key is NULL exactly then: a fixed-width column is cheaper to
-- read than the IDs)
server_pairs AS (
    SELECT DISTINCT client, server FROM r WHERE NOT open AND reporter = 'server' AND proxy_key IS NULL
),
-- the rows of this view: all, or on the summary path (ft_unsettled_only)
-- the rows their file did not settle, which it keeps in row groups of
-- their own: a branch for each of two columns' tests, which DuckDB applies
-- in the scan, skipping the other columns of the rows they leave out
-- (their OR it applies after reading every column of every row: half a
-- second over 10M flows)
own AS NOT MATERIALIZED (
    FROM r WHERE NOT coalesce(getvariable('ft_unsettled_only'), false)
    UNION ALL
    FROM r WHERE coalesce(getvariable('ft_unsettled_only'), false) AND open
    UNION ALL
    FROM r WHERE coalesce(getvariable('ft_unsettled_only'), false) AND NOT open AND seen_by_server IS NULL
),
req_rows AS NOT MATERIALIZED (
SELECT
    time, node_name, reporter, client, client_namespace, client_pod, client_ip,
    server, server_namespace, server_pod, server_ip, server_port,
    protocol, method, url, path, status, latency_ns, latency_bucket,
    open AS no_response,
    -- 5xx; and gRPC calls not answered 200 (gRPC reports errors at HTTP
    -- level only when the call fails before the handler)
    error,
    client_error,
    CASE WHEN seen_by_server IS NOT NULL THEN seen_by_server
         WHEN proxy_key IS NOT NULL THEN hash(proxy_key, client, server) IN (SELECT h FROM seen)
         ELSE (client, server) IN (SELECT (client, server) FROM server_pairs) END AS seen_by_server,
    request_id, uuid,
    call_key,
    -- what the summary leaves out (see sql/summary/views.sql)
    r.open OR r.seen_by_server IS NULL AS unsettled
FROM own r
)
-- (ft_bound_at_call first: the macro is bound when called, see macros.sql)
SELECT q.* FROM ft_bound_at_call(cols), (
SELECT COLUMNS(c -> CASE WHEN cols IS NULL THEN c NOT IN ('call_key', 'unsettled') ELSE list_contains(cols, c) END)
FROM req_rows
WHERE (NOT no_response
        OR (node_name IS NOT NULL AND reporter IS NOT NULL AND time < (SELECT t FROM horizon)
            AND hash(call_key, client, server) NOT IN (SELECT h FROM answered)))
    -- the summary path reads only what the summary leaves out
    AND (NOT coalesce(getvariable('ft_unsettled_only'), false) OR unsettled)) q;

CREATE OR REPLACE VIEW requests AS FROM ft_requests_of(false, NULL);
