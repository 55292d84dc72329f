-- services: the service list of a service mesh (requests/s, error rate,
-- latency percentiles), one row per service (the destination of flows),
-- with its outbound calls, connections, drops, policy denies, TCP resets
-- and DNS errors.
--
-- Parameters (SET VARIABLE; NULL when unset): since, until (TIMESTAMP),
-- namespace, reporter (see requests_counted).
-- visibility is L7 where an L7 proxy reported the service's requests, DNS
-- where only the DNS proxy saw its traffic (a DNS server), L4 where only
-- L3/L4 flows reached it (no L7 policy; GKE Dataplane V2): the L7 columns
-- are then NULL and connections, connection_failures and health come from
-- TCP handshakes (see the connections view).
-- Rates divide by the analysed window; percentiles are nearest-rank (the
-- smallest latency with at least p of the requests at or below it), exact.
-- health follows Kiali's defaults: error share >= 0.1% degraded, >= 10%
-- failure; for L4 services the share of connections dropped or never
-- answered (resets are counted, but many clients close connections so).
WITH win AS (FROM ft_window()),
req AS (
    SELECT r.* FROM requests_counted r, win WHERE r.time BETWEEN win.t0 AND win.t1
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
        quantile_disc(latency_ns, [0.5, 0.9, 0.95, 0.99, 1.0]) AS q
    FROM req
    GROUP BY server
),
outbound AS (
    SELECT client AS service, count(*) FILTER (NOT no_response) AS outbound_requests,
        count(*) FILTER (error) AS outbound_errors
    FROM req GROUP BY client
),
-- per destination and kind of flow first: the aggregates below then see a
-- few rows per service, not every flow
flow_kinds AS (
    SELECT destination AS service, destination_namespace AS namespace, l4_protocol, type, verdict, drop_reason_desc,
        count(*) AS flows, count(*) FILTER (tcp_rst) AS tcp_resets
    FROM edges e, win WHERE e.time BETWEEN win.t0 AND win.t1
    GROUP BY ALL
),
flows_in AS (
    SELECT service, arg_max(namespace, flows) AS namespace,
        string_agg(DISTINCT l4_protocol, ',' ORDER BY l4_protocol) AS l4_protocols,
        sum(flows)::BIGINT AS flows,
        coalesce(sum(flows) FILTER (type = 'L7'), 0) AS l7_flows,
        coalesce(sum(flows) FILTER (verdict = 'DROPPED'), 0)::BIGINT AS drops,
        coalesce(sum(flows) FILTER (drop_reason_desc IN ('POLICY_DENIED', 'POLICY_DENY')), 0)::BIGINT AS policy_denies,
        sum(tcp_resets)::BIGINT AS tcp_resets
    FROM flow_kinds
    GROUP BY service
),
reasons AS (
    SELECT service, string_agg(reason || '=' || n, ',' ORDER BY n DESC, reason) AS drops_by_reason
    FROM (SELECT d.destination AS service, d.reason, count(*) AS n
          FROM drops d, win WHERE d.time BETWEEN win.t0 AND win.t1 GROUP BY ALL)
    GROUP BY service
),
conns AS (
    SELECT destination AS service, count(*) AS connections,
        count(*) FILTER (failed) AS connection_failures,
        count(*) FILTER (dropped OR unanswered) AS connections_lost
    FROM connections c, win WHERE c.time BETWEEN win.t0 AND win.t1
    GROUP BY destination
),
dns_errors AS (
    SELECT client AS service, count(*) FILTER (error) AS dns_errors
    FROM dns d, win WHERE d.time BETWEEN win.t0 AND win.t1
    GROUP BY client
),
services AS (
    SELECT service FROM inbound UNION SELECT service FROM flows_in
)
SELECT
    s.service,
    coalesce(i.namespace, f.namespace) AS namespace,
    CASE WHEN i.service IS NOT NULL THEN 'L7' WHEN f.l7_flows > 0 THEN 'DNS' ELSE 'L4' END AS visibility,
    coalesce(i.protocols, f.l4_protocols) AS protocols,
    i.requests,
    round(i.requests / win.seconds, 3) AS rps,
    i.errors,
    round(i.errors / nullif(i.requests, 0), 6) AS error_rate,
    i.client_errors, i.no_response,
    i.q[1] / 1e6 AS p50_ms,
    i.q[2] / 1e6 AS p90_ms,
    i.q[3] / 1e6 AS p95_ms,
    i.q[4] / 1e6 AS p99_ms,
    i.q[5] / 1e6 AS max_ms,
    coalesce(o.outbound_requests, 0) AS outbound_requests,
    coalesce(o.outbound_errors, 0) AS outbound_errors,
    coalesce(f.flows, 0) AS flows,
    coalesce(c.connections, 0) AS connections,
    coalesce(c.connection_failures, 0) AS connection_failures,
    coalesce(f.drops, 0) AS drops,
    coalesce(dr.drops_by_reason, '') AS drops_by_reason,
    coalesce(f.policy_denies, 0) AS policy_denies,
    coalesce(f.tcp_resets, 0) AS tcp_resets,
    coalesce(n.dns_errors, 0) AS dns_errors,
    CASE WHEN i.service IS NOT NULL THEN ft_health(i.errors, i.requests)
         ELSE ft_health(c.connections_lost, c.connections) END AS health
FROM services s
CROSS JOIN win
LEFT JOIN inbound i USING (service)
LEFT JOIN flows_in f USING (service)
LEFT JOIN outbound o USING (service)
LEFT JOIN reasons dr USING (service)
LEFT JOIN conns c USING (service)
LEFT JOIN dns_errors n USING (service)
WHERE ft_in_namespace(coalesce(i.namespace, f.namespace), NULL)
ORDER BY i.service IS NULL, coalesce(i.errors, c.connections_lost) DESC, coalesce(i.requests, c.connections) DESC, s.service;
