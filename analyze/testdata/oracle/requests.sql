-- requests: one row per L7 HTTP or gRPC request, endpoints in the request's
-- direction (client -> server), as Hubble's httpV2 metrics count them.
--
-- A request is a RESPONSE flow: Hubble reports responses with source and
-- destination swapped, so the client is the response's destination. A
-- REQUEST flow whose response was never seen (no RESPONSE with the same
-- node, proxy side, X-Request-Id, client and server: applications pass the
-- ID on to the calls they make, so one ID names a tree of calls) is a
-- request without response
-- (no_response = true, status NULL); a request younger than the longest
-- latency seen (at least 1 s) at the end of the recording may still have
-- been answered, and is left out. Without X-Request-Id (proxies other
-- than Envoy) a request cannot be paired, and is not counted as unanswered.
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
CREATE OR REPLACE VIEW requests AS
WITH l7 AS NOT MATERIALIZED (
    -- inlined where used, so that each use reads only the columns it needs
    SELECT
        time, node_name, uuid, l7_type = 'RESPONSE' AS is_response,
        CASE traffic_direction WHEN 'EGRESS' THEN 'client' WHEN 'INGRESS' THEN 'server' END AS reporter,
        http_request_id AS request_id,
        source_endpoint AS src, source_namespace AS src_namespace, source_pod_name AS src_pod, ip_source AS src_ip, source_port AS src_port,
        destination_endpoint AS dst, destination_namespace AS dst_namespace, destination_pod_name AS dst_pod, ip_destination AS dst_ip, destination_port AS dst_port,
        -- the call's endpoints, whichever way the flow went
        CASE WHEN l7_type = 'RESPONSE' THEN destination_endpoint ELSE source_endpoint END AS caller,
        CASE WHEN l7_type = 'RESPONSE' THEN source_endpoint ELSE destination_endpoint END AS callee,
        http_method AS method, http_url AS url, l7_protocol = 'grpc' AS grpc,
        http_code, l7_latency_ns
    FROM flows
    WHERE l7_protocol IN ('http', 'grpc') AND l7_type IN ('REQUEST', 'RESPONSE')
),
-- the requests a proxy logged no response for: one grouping over requests
-- and responses, cheaper than matching every request with its response
unanswered_keys AS (
    SELECT request_id, node_name, reporter, caller, callee FROM l7
    WHERE request_id IS NOT NULL
    GROUP BY ALL HAVING NOT bool_or(is_response)
),
-- still in flight when the recording ended is not unanswered
horizon AS (
    SELECT max(time) - to_microseconds(greatest(max(l7_latency_ns) // 1000, 1000000)::BIGINT) AS t FROM l7
),
r AS (
    SELECT
        time, node_name, reporter, request_id, uuid,
        dst AS client, dst_namespace AS client_namespace, dst_pod AS client_pod, dst_ip AS client_ip,
        src AS server, src_namespace AS server_namespace, src_pod AS server_pod, src_ip AS server_ip,
        src_port AS server_port,
        method, url, grpc, http_code AS status, nullif(l7_latency_ns, 0) AS latency_ns, false AS no_response
    FROM l7 WHERE is_response
    UNION ALL
    SELECT
        q.time, q.node_name, q.reporter, q.request_id, q.uuid,
        q.src, q.src_namespace, q.src_pod, q.src_ip,
        q.dst, q.dst_namespace, q.dst_pod, q.dst_ip,
        q.dst_port,
        q.method, q.url, q.grpc, NULL::UINTEGER, NULL::UBIGINT, true
    FROM (SELECT * FROM l7 WHERE NOT is_response AND request_id IS NOT NULL) q
    SEMI JOIN unanswered_keys k ON k.request_id = q.request_id AND k.node_name = q.node_name AND k.reporter = q.reporter
        AND k.caller IS NOT DISTINCT FROM q.caller AND k.callee IS NOT DISTINCT FROM q.callee
    WHERE q.time < (SELECT t FROM horizon)
),
-- the client and server pairs a server proxy answered without X-Request-Id
server_pairs AS (
    SELECT DISTINCT dst AS client, src AS server FROM l7 WHERE is_response AND reporter = 'server' AND request_id IS NULL
)
SELECT
    time, node_name, reporter, client, client_namespace, client_pod, client_ip,
    server, server_namespace, server_pod, server_ip, server_port,
    CASE WHEN grpc THEN 'grpc' ELSE 'http' END AS protocol,
    method, url,
    CASE WHEN grpc THEN ltrim(ft_path(url), '/') ELSE ft_path(url) END AS path,
    status,
    latency_ns,
    no_response,
    -- 5xx; and gRPC calls not answered 200 (gRPC reports errors at HTTP
    -- level only when the call fails before the handler)
    coalesce(status >= 500 OR (grpc AND status <> 200), false) AS error,
    coalesce(status BETWEEN 400 AND 499, false) AS client_error,
    CASE WHEN reporter = 'server' THEN true
         WHEN request_id IS NOT NULL THEN (request_id, client, server) IN
            (SELECT (request_id, caller, callee) FROM l7 WHERE reporter = 'server' AND request_id IS NOT NULL)
         ELSE (client, server) IN (SELECT (client, server) FROM server_pairs) END AS seen_by_server,
    request_id, uuid
FROM r;
