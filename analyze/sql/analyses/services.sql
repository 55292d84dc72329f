-- services: the service list of a service mesh (requests/s, error rate,
-- latency percentiles), one row per service that answered requests, with
-- its outbound calls, drops, policy denies, TCP resets and DNS errors.
--
-- Parameters (SET VARIABLE; NULL when unset): since, until (TIMESTAMP),
-- namespace, reporter ('server' default: each request counted at the
-- server's proxy, at the client's where no server proxy saw it; 'client';
-- 'both').
-- Rates divide by the analysed window; percentiles are nearest-rank (the
-- smallest latency with at least p of the requests at or below it), exact.
-- health follows Kiali's defaults: 5xx share >= 0.1% degraded, >= 10% failure.
WITH win AS (
    SELECT coalesce(getvariable('since')::TIMESTAMP_NS, min(time)) AS t0, coalesce(getvariable('until')::TIMESTAMP_NS, max(time)) AS t1
    FROM flows
),
req AS (
    -- has_server: a server proxy saw this request (same X-Request-Id); for
    -- requests without one, whether a server proxy saw any of the edge's.
    SELECT r.*,
        CASE WHEN r.request_id IS NULL THEN bool_or(r.reporter = 'server') OVER (PARTITION BY r.client, r.server)
             ELSE EXISTS (SELECT 1 FROM requests s WHERE s.reporter = 'server' AND s.request_id = r.request_id) END AS has_server
    FROM requests r, win
    WHERE r.time BETWEEN win.t0 AND win.t1
),
counted AS (
    SELECT * FROM req
    WHERE CASE coalesce(getvariable('reporter')::VARCHAR, 'server')
        WHEN 'server' THEN reporter = 'server' OR NOT has_server
        WHEN 'client' THEN reporter = 'client'
        ELSE true END
),
inbound AS (
    SELECT
        server AS service,
        mode(server_namespace) AS namespace,
        string_agg(DISTINCT protocol, ',' ORDER BY protocol) AS protocols,
        count(*) FILTER (NOT no_response) AS requests,
        count(*) FILTER (error) AS errors,
        count(*) FILTER (client_error) AS client_errors,
        count(*) FILTER (no_response) AS no_response,
        list_sort(list(latency_ns) FILTER (latency_ns IS NOT NULL)) AS lat
    FROM counted
    GROUP BY server
),
outbound AS (
    SELECT client AS service, count(*) FILTER (NOT no_response) AS outbound_requests,
        count(*) FILTER (error) AS outbound_errors
    FROM counted GROUP BY client
),
dropped AS (
    SELECT destination AS service, sum(n)::BIGINT AS drops,
        coalesce(sum(n) FILTER (reason IN ('POLICY_DENIED', 'POLICY_DENY')), 0)::BIGINT AS policy_denies,
        string_agg(reason || '=' || n, ',' ORDER BY n DESC, reason) AS drops_by_reason
    FROM (SELECT d.destination, d.reason, count(*) AS n
          FROM drops d, win WHERE d.time BETWEEN win.t0 AND win.t1
          GROUP BY ALL)
    GROUP BY destination
),
resets AS (
    SELECT destination AS service, count(*) AS tcp_resets
    FROM edges e, win WHERE e.tcp_rst AND e.time BETWEEN win.t0 AND win.t1
    GROUP BY destination
),
dns_errors AS (
    SELECT client AS service, count(*) FILTER (error) AS dns_errors
    FROM dns d, win WHERE d.time BETWEEN win.t0 AND win.t1
    GROUP BY client
)
SELECT
    i.service, i.namespace, i.protocols, i.requests,
    round(i.requests / greatest(epoch_ns(win.t1) - epoch_ns(win.t0), 1) * 1e9, 3) AS rps,
    i.errors,
    round(i.errors / nullif(i.requests, 0), 6) AS error_rate,
    i.client_errors, i.no_response,
    i.lat[greatest(1, ceil(0.50 * len(i.lat))::BIGINT)] / 1e6 AS p50_ms,
    i.lat[greatest(1, ceil(0.90 * len(i.lat))::BIGINT)] / 1e6 AS p90_ms,
    i.lat[greatest(1, ceil(0.95 * len(i.lat))::BIGINT)] / 1e6 AS p95_ms,
    i.lat[greatest(1, ceil(0.99 * len(i.lat))::BIGINT)] / 1e6 AS p99_ms,
    i.lat[len(i.lat)] / 1e6 AS max_ms,
    coalesce(o.outbound_requests, 0) AS outbound_requests,
    coalesce(o.outbound_errors, 0) AS outbound_errors,
    coalesce(d.drops, 0) AS drops,
    coalesce(d.drops_by_reason, '') AS drops_by_reason,
    coalesce(d.policy_denies, 0) AS policy_denies,
    coalesce(r.tcp_resets, 0) AS tcp_resets,
    coalesce(n.dns_errors, 0) AS dns_errors,
    CASE WHEN i.requests = 0 THEN 'unknown'
         WHEN i.errors / i.requests >= 0.10 THEN 'failure'
         WHEN i.errors / i.requests >= 0.001 THEN 'degraded'
         ELSE 'healthy' END AS health
FROM inbound i
CROSS JOIN win
LEFT JOIN outbound o USING (service)
LEFT JOIN dropped d USING (service)
LEFT JOIN resets r USING (service)
LEFT JOIN dns_errors n USING (service)
WHERE getvariable('namespace')::VARCHAR IS NULL OR i.namespace = getvariable('namespace')::VARCHAR
ORDER BY i.errors DESC, i.requests DESC, i.service;
