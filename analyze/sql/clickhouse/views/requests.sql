-- requests: one row per L7 HTTP or gRPC request per reporting proxy,
-- endpoints in the request's direction (client -> server), paired with its
-- response (no_response where none came), as analyze/sql/views/requests.sql
-- defines it. The pairing was done when the flows were written, within
-- each file (the derived requests table); this view pairs what a file
-- could not, with the rows of the other files, by the names the views
-- give the endpoints.
WITH r AS (
    SELECT r.* REPLACE (coalesce(rc.name, r.client) AS client, coalesce(rs.name, r.server) AS server)
    FROM derived_requests r
    LEFT JOIN pod_renames rc ON isNotDistinctFrom(rc.namespace, r.client_namespace) AND rc.pod = r.client_pod
    LEFT JOIN pod_renames rs ON isNotDistinctFrom(rs.namespace, r.server_namespace) AND rs.pod = r.server_pod
),
-- rows that only the names pair: the open requests and the client rows
-- whose file could not tell whether a server proxy saw the request, with
-- the rows of the same call_key or proxy_key in any file
candidates AS (
    SELECT c.open, c.reporter, c.call_key, c.proxy_key,
        coalesce(rc.name, c.client) AS client, coalesce(rs.name, c.server) AS server
    FROM (SELECT open, reporter, call_key, proxy_key, client, client_namespace, client_pod, server, server_namespace, server_pod
          FROM derived_requests
          WHERE (call_key IS NOT NULL AND call_key IN (SELECT call_key FROM derived_requests WHERE open))
              OR (reporter = 'server' AND proxy_key IS NOT NULL
                  AND proxy_key IN (SELECT proxy_key FROM derived_requests WHERE seen_by_server IS NULL AND proxy_key IS NOT NULL))) c
    LEFT JOIN pod_renames rc ON isNotDistinctFrom(rc.namespace, c.client_namespace) AND rc.pod = c.client_pod
    LEFT JOIN pod_renames rs ON isNotDistinctFrom(rs.namespace, c.server_namespace) AND rs.pod = c.server_pod
),
-- the open requests a response answers: the same call_key, client and server
answered AS (SELECT DISTINCT call_key, client, server FROM candidates WHERE NOT open),
-- still in flight when the recording ended is not unanswered
horizon AS (
    SELECT max(last_time) - toIntervalMicrosecond(greatest(coalesce(intDiv(max(max_latency_ns), 1000), 0), 1000000)) AS t
    FROM derived_traffic WHERE l7_protocol IN ('http', 'grpc') AND l7_type IN ('REQUEST', 'RESPONSE')
),
-- the client rows a server proxy saw: the same proxy_key, client and server
seen AS (SELECT DISTINCT proxy_key, client, server FROM candidates WHERE reporter = 'server' AND proxy_key IS NOT NULL),
-- the client and server pairs a server proxy answered without X-Request-Id
server_pairs AS (SELECT DISTINCT client, server FROM r WHERE NOT open AND reporter = 'server' AND proxy_key IS NULL)
SELECT
    time, node_name, reporter, client, client_namespace, client_pod, client_ip,
    server, server_namespace, server_pod, server_ip, server_port,
    protocol, method, url, path, status, latency_ns, latency_bucket,
    open AS no_response,
    error,
    client_error,
    multiIf(seen_by_server IS NOT NULL, seen_by_server,
            proxy_key IS NOT NULL, (proxy_key, client, server) IN (SELECT proxy_key, client, server FROM seen),
            (client, server) IN (SELECT client, server FROM server_pairs)) AS seen_by_server,
    request_id, uuid
FROM r
WHERE NOT open
    OR (node_name IS NOT NULL AND reporter IS NOT NULL AND time < (SELECT t FROM horizon)
        AND (call_key, client, server) NOT IN (SELECT call_key, client, server FROM answered))
