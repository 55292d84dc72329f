-- requests: one row per L7 HTTP or gRPC request, endpoints in the request's
-- direction (client -> server), as Hubble's httpV2 metrics count them.
--
-- A request is a RESPONSE flow: Hubble reports responses with source and
-- destination swapped, so the client is the response's destination. A
-- REQUEST flow whose response was never seen (no RESPONSE with the same
-- node, proxy side and X-Request-Id) is a request without response
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
-- two rows, one per reporter.
CREATE OR REPLACE VIEW requests AS
WITH l7 AS (
    SELECT *,
        CASE traffic_direction WHEN 'EGRESS' THEN 'client' WHEN 'INGRESS' THEN 'server' END AS reporter,
        ft_header(http_headers, 'x-request-id') AS request_id
    FROM flows
    WHERE type = 'L7' AND http_method IS NOT NULL
),
responses AS (
    SELECT
        time, node_name, reporter, request_id, uuid,
        ft_name(destination_workload, destination_app, destination_pod_name, destination_labels, destination_names, ip_destination) AS client,
        destination_namespace AS client_namespace, destination_pod_name AS client_pod, ip_destination AS client_ip,
        ft_name(source_workload, source_app, source_pod_name, source_labels, source_names, ip_source) AS server,
        source_namespace AS server_namespace, source_pod_name AS server_pod, ip_source AS server_ip,
        source_port AS server_port,
        http_method AS method, http_url AS url, http_protocol, http_headers,
        http_code AS status, nullif(l7_latency_ns, 0) AS latency_ns, false AS no_response
    FROM l7 WHERE l7_type = 'RESPONSE'
),
unanswered AS (
    SELECT
        q.time, q.node_name, q.reporter, q.request_id, q.uuid,
        ft_name(q.source_workload, q.source_app, q.source_pod_name, q.source_labels, q.source_names, q.ip_source),
        q.source_namespace, q.source_pod_name, q.ip_source,
        ft_name(q.destination_workload, q.destination_app, q.destination_pod_name, q.destination_labels, q.destination_names, q.ip_destination),
        q.destination_namespace, q.destination_pod_name, q.ip_destination,
        q.destination_port,
        q.http_method, q.http_url, q.http_protocol, q.http_headers,
        NULL::UINTEGER, NULL::UBIGINT, true
    FROM l7 q
    WHERE q.l7_type = 'REQUEST' AND q.request_id IS NOT NULL
      -- still in flight when the recording ended is not unanswered
      AND q.time < (SELECT max(time) - to_microseconds(greatest(max(l7_latency_ns) // 1000, 1000000)::BIGINT) FROM l7)
      AND NOT EXISTS (
        SELECT 1 FROM l7 r
        WHERE r.l7_type = 'RESPONSE' AND r.request_id = q.request_id
          AND r.node_name = q.node_name AND r.reporter = q.reporter)
)
SELECT
    time, node_name, reporter, client, client_namespace, client_pod, client_ip,
    server, server_namespace, server_pod, server_ip, server_port,
    CASE WHEN ft_is_grpc(http_protocol, method, url, http_headers) THEN 'grpc' ELSE 'http' END AS protocol,
    method, url,
    CASE WHEN ft_is_grpc(http_protocol, method, url, http_headers) THEN ltrim(ft_path(url), '/') ELSE ft_path(url) END AS path,
    status,
    latency_ns,
    no_response,
    -- 5xx; and gRPC calls not answered 200 (gRPC reports errors at HTTP
    -- level only when the call fails before the handler)
    coalesce(status >= 500 OR (ft_is_grpc(http_protocol, method, url, http_headers) AND status <> 200), false) AS error,
    coalesce(status BETWEEN 400 AND 499, false) AS client_error,
    request_id, uuid
FROM (SELECT * FROM responses UNION ALL SELECT * FROM unanswered);
