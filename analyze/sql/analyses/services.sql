-- services: the service list of a service mesh (requests/s, error rate,
-- latency percentiles), one row per service (the destination of flows) and
-- namespace,
-- with its outbound calls, connections, drops, policy denies, TCP resets
-- and DNS errors.
--
-- Parameters (SET VARIABLE; NULL when unset): since, until (TIMESTAMP),
-- namespace, reporter (see requests_counted).
-- visibility is L7 where an L7 proxy reported the service's HTTP or gRPC
-- traffic, DNS
-- where only the DNS proxy saw its traffic (a DNS server), L4 where only
-- L3/L4 flows reached it (no L7 policy; GKE Dataplane V2): the L7 columns
-- are then NULL and connections, connection_failures and health come from
-- TCP handshakes (see the connections view).
-- Rates divide by the analysed window; percentiles are nearest-rank (the
-- smallest latency with at least p of the requests at or below it), exact.
-- health follows Kiali's defaults: error share >= 0.1% degraded, >= 10%
-- failure; for L4 services the share of connections dropped or never
-- answered (resets are counted, but many clients close connections so), of
-- the connections the recording can judge (unknown where none: see
-- connections).
WITH win AS (FROM ft_window()),
-- namespaces are '' rather than NULL until the end, so that services of
-- endpoints without one (world, host) join with themselves
req AS (
    SELECT client, coalesce(client_namespace, '') AS client_namespace, server, coalesce(server_namespace, '') AS server_namespace,
        protocol, no_response, error, client_error, latency_ns, latency_bucket
    FROM ft_requests_in('win', ['client', 'client_namespace', 'server', 'server_namespace', 'protocol',
        'no_response', 'error', 'client_error', 'latency_ns', 'latency_bucket'])
),
-- the requests counted once, by edge, protocol and latency bucket, with
-- their latencies: what the counts (in, out) and the percentiles read
-- (read three times, millions of requests would be kept in memory)
calls AS (
    SELECT client, client_namespace, server, server_namespace, protocol, latency_bucket AS b,
        ft_requests(no_response) AS requests,
        ft_errors(error) AS errors,
        ft_client_errors(client_error) AS client_errors,
        ft_no_response(no_response) AS no_response,
        list(latency_ns) FILTER (latency_ns IS NOT NULL) AS l
    FROM req
    GROUP BY ALL
),
latencies AS (SELECT {s: server, n: server_namespace} AS g, b, l FROM calls),
quantiles AS (
    SELECT g.s AS service, g.n AS namespace, q FROM ft_quantiles('latencies', [0.5, 0.9, 0.95, 0.99, 1.0])
),
-- the flows of the window, counted by minute and kind (the traffic view)
tr AS (FROM ft_traffic_in('win')),
-- Every count of a service, from one aggregate over rows of each kind
-- (src): a service's requests as server (in) and as client (out), the
-- flows to it (flow), the flows by their own destination, not swapped
-- (dst: its dropped packets by reason, as the drops view lists them, and
-- the DNS answers to it, as the dns view does) and its connections
-- (conn). Why one: DuckDB gives each GROUP BY a hash table sized for many
-- groups, memory a fresh process faults in, several ms each; these counts
-- over a few rows each were ten aggregates and seven joins. With
-- ft_quantiles' change, services at 1M flows took 0.31-0.33 s against
-- 0.33-0.37 s (BenchmarkAnalyzeScale: 3.06x a plain scan against
-- 3.23-3.39x). The counts the final SELECT reads as they are (requests,
-- errors, connections lost and judged) are NULL for a service without
-- rows of their kind, as the LEFT JOIN of each count gave them; the rest
-- are NULL there too where they were 0, and only read through coalesce
-- or > 0. (A service whose name is NULL, which no endpoint of a flow
-- gets, now has its counts: no join matched it.)
rows AS (
    SELECT 'in' AS src, server AS service, server_namespace AS namespace, protocol, requests, errors, client_errors, no_response
    FROM calls
    UNION ALL BY NAME
    SELECT 'out' AS src, client AS service, client_namespace AS namespace, requests AS outbound_requests, errors AS outbound_errors
    FROM calls
    UNION ALL BY NAME
    SELECT 'flow' AS src, destination AS service, coalesce(destination_namespace, '') AS namespace, l4_protocol, l7_protocol, verdict,
        drop_reason_desc, flows, tcp_resets
    FROM tr
    UNION ALL BY NAME
    SELECT 'dst' AS src, flow_destination AS service, coalesce(flow_destination_namespace, '') AS namespace, dns_errors,
        CASE WHEN verdict = 'DROPPED' THEN {k: coalesce(drop_reason_desc, 'DROP_REASON_' || drop_reason), n: flows} END AS dropped_by
    FROM tr
    UNION ALL BY NAME
    SELECT 'conn' AS src, destination AS service, coalesce(destination_namespace, '') AS namespace, failed, dropped, unanswered, judged
    FROM ft_connections_in('win', ['destination', 'destination_namespace', 'failed', 'dropped', 'unanswered', 'judged'])
),
counts AS (
    SELECT service, namespace,
        -- the services listed: the destinations of requests or flows
        bool_or(src IN ('in', 'flow')) AS listed,
        bool_or(src = 'in') AS served,
        CASE WHEN count(protocol) > 0 THEN array_to_string(list_sort(list_distinct(list(protocol) FILTER (src = 'in'))), ',') END AS protocols,
        sum(requests)::BIGINT AS requests, sum(errors)::BIGINT AS errors, sum(client_errors)::BIGINT AS client_errors,
        sum(no_response)::BIGINT AS no_response,
        sum(outbound_requests)::BIGINT AS outbound_requests, sum(outbound_errors)::BIGINT AS outbound_errors,
        CASE WHEN count(l4_protocol) > 0 THEN array_to_string(list_sort(list_distinct(list(l4_protocol) FILTER (src = 'flow'))), ',') END AS l4_protocols,
        sum(flows)::BIGINT AS flows,
        sum(flows) FILTER (l7_protocol IN ('http', 'grpc')) AS http_flows,
        sum(flows) FILTER (l7_protocol = 'dns') AS dns_flows,
        (sum(flows) FILTER (verdict = 'DROPPED'))::BIGINT AS drops,
        (sum(flows) FILTER (drop_reason_desc IN ('POLICY_DENIED', 'POLICY_DENY')))::BIGINT AS policy_denies,
        sum(tcp_resets)::BIGINT AS tcp_resets,
        ft_counts_list(ft_sum_by_key(list(dropped_by) FILTER (dropped_by IS NOT NULL))) AS drops_by_reason,
        count(*) FILTER (src = 'conn') AS connections,
        ft_errors(failed) AS connection_failures,
        ft_connections_lost(dropped, unanswered) AS connections_lost,
        count(*) FILTER (judged) AS judged_connections,
        sum(dns_errors)::BIGINT AS dns_errors
    FROM rows
    GROUP BY service, namespace
),
-- (the connection counts NULL for a service without connections)
joined AS (
    SELECT * REPLACE (
            nullif(connections, 0) AS connections,
            CASE WHEN connections > 0 THEN connection_failures END AS connection_failures,
            CASE WHEN connections > 0 THEN connections_lost END AS connections_lost,
            CASE WHEN connections > 0 THEN judged_connections END AS judged_connections),
        served OR coalesce(http_flows, 0) > 0 AS l7
    FROM counts
    LEFT JOIN quantiles USING (service, namespace)
    WHERE listed
)
SELECT
    service,
    nullif(namespace, '') AS namespace,
    CASE WHEN l7 THEN 'L7' WHEN dns_flows > 0 THEN 'DNS' ELSE 'L4' END AS visibility,
    coalesce(protocols, l4_protocols) AS protocols,
    CASE WHEN l7 THEN coalesce(requests, 0) END AS requests,
    CASE WHEN l7 THEN round(coalesce(requests, 0) / win.seconds, 3) END AS rps,
    CASE WHEN l7 THEN coalesce(errors, 0) END AS errors,
    ft_error_rate(errors, requests) AS error_rate,
    CASE WHEN l7 THEN coalesce(client_errors, 0) END AS client_errors,
    CASE WHEN l7 THEN coalesce(no_response, 0) END AS no_response,
    q[1] / 1e6 AS p50_ms,
    q[2] / 1e6 AS p90_ms,
    q[3] / 1e6 AS p95_ms,
    q[4] / 1e6 AS p99_ms,
    q[5] / 1e6 AS max_ms,
    coalesce(outbound_requests, 0) AS outbound_requests,
    coalesce(outbound_errors, 0) AS outbound_errors,
    coalesce(flows, 0) AS flows,
    coalesce(connections, 0) AS connections,
    coalesce(connection_failures, 0) AS connection_failures,
    coalesce(drops, 0) AS drops,
    coalesce(drops_by_reason, '') AS drops_by_reason,
    coalesce(policy_denies, 0) AS policy_denies,
    coalesce(tcp_resets, 0) AS tcp_resets,
    coalesce(dns_errors, 0) AS dns_errors,
    ft_traffic_health(l7, errors, requests, connections_lost, judged_connections) AS health
FROM joined CROSS JOIN win
WHERE ft_in_namespace(nullif(namespace, ''), NULL)
ORDER BY NOT l7, coalesce(errors, connections_lost) DESC, coalesce(requests, connections) DESC, service, namespace;
