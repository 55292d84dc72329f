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
-- is not counted as unanswered. Client and server are pods where the flows
-- name one (so that flows that name a pod otherwise still pair), else the
-- endpoints' names.
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
CREATE OR REPLACE VIEW requests AS
WITH r AS NOT MATERIALIZED (
    SELECT r.* REPLACE (coalesce(rc.name, r.client) AS client, coalesce(rs.name, r.server) AS server),
        ft_endpoint_key(r.client_namespace, r.client_pod, r.client) AS client_key,
        ft_endpoint_key(r.server_namespace, r.server_pod, r.server) AS server_key
    FROM derived_requests r
    LEFT JOIN pod_renames rc ON getvariable('ft_pods_renamed') AND rc.namespace = r.client_namespace AND rc.pod = r.client_pod
    LEFT JOIN pod_renames rs ON getvariable('ft_pods_renamed') AND rs.namespace = r.server_namespace AND rs.pod = r.server_pod
),
-- the open requests that a response in another file answers
open_keys AS (
    SELECT DISTINCT request_id, node_name, reporter, client_key, server_key FROM r
    WHERE open AND request_id IS NOT NULL AND node_name IS NOT NULL AND reporter IS NOT NULL
),
answered AS (
    SELECT DISTINCT {id: k.request_id, node: k.node_name, reporter: k.reporter, c: k.client_key, s: k.server_key} AS k
    FROM open_keys k JOIN r x ON NOT x.open AND x.request_id = k.request_id AND x.node_name = k.node_name
        AND x.reporter = k.reporter AND x.client_key IS NOT DISTINCT FROM k.client_key AND x.server_key IS NOT DISTINCT FROM k.server_key
),
-- still in flight when the recording ended is not unanswered
horizon AS (
    SELECT (SELECT max(last_time) FROM derived_traffic WHERE l7_protocol IN ('http', 'grpc') AND l7_type IN ('REQUEST', 'RESPONSE'))
        - to_microseconds(greatest(max(latency_ns) // 1000, 1000000)::BIGINT) AS t
    FROM derived_requests
),
-- the client rows whose file could not tell whether a server proxy saw
-- the request, that one in another file did
seen AS (
    SELECT DISTINCT {id: u.request_id, c: u.client_key, s: u.server_key} AS k
    FROM (SELECT DISTINCT request_id, client_key, server_key FROM r WHERE seen_by_server IS NULL AND request_id IS NOT NULL) u
    JOIN r s ON s.reporter = 'server' AND s.request_id = u.request_id
        AND s.client_key IS NOT DISTINCT FROM u.client_key AND s.server_key IS NOT DISTINCT FROM u.server_key
),
-- the client and server pairs a server proxy answered without X-Request-Id
server_pairs AS (
    SELECT DISTINCT client, server FROM r WHERE NOT open AND reporter = 'server' AND request_id IS NULL
)
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
         WHEN request_id IS NOT NULL THEN {id: request_id, c: client_key, s: server_key} IN (SELECT k FROM seen)
         ELSE (client, server) IN (SELECT (client, server) FROM server_pairs) END AS seen_by_server,
    request_id, uuid
FROM r
WHERE NOT open
    OR (node_name IS NOT NULL AND reporter IS NOT NULL AND time < (SELECT t FROM horizon)
        AND {id: request_id, node: node_name, reporter: reporter, c: client_key, s: server_key} NOT IN (SELECT k FROM answered));
