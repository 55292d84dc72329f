-- services: the service list of a service mesh, one row per service and
-- namespace: analyze/sql/analyses/services.sql says what each column
-- means; this file computes the same on ClickHouse.
WITH
-- namespaces are '' rather than NULL until the end, so that services of
-- endpoints without one (world, host) join with themselves
req AS (
    SELECT client, coalesce(client_namespace, '') AS client_namespace, server, coalesce(server_namespace, '') AS server_namespace,
        protocol, no_response, error, client_error, latency_ns
    FROM requests_in
),
-- Each source is read once, as the DuckDB file does: the first form of
-- this file, a CTE per count joined by service, read the requests three
-- times and the traffic four (ClickHouse inlines a CTE at each
-- reference), 2.5-2.8 s per run on chDB over the 768 flows of the real
-- samples, against 1.9-2.3 s (most of either is ClickHouse's analysis of
-- the views' query: 1.3-1.6 s of EXPLAIN QUERY TREE). calls: the requests
-- by edge and protocol, with their latencies.
calls AS (
    SELECT client, client_namespace, server, server_namespace, protocol,
        countIf(NOT no_response) AS requests, countIf(error) AS errors, countIf(client_error) AS client_errors,
        countIf(no_response) AS no_response,
        groupArrayIf(latency_ns, latency_ns IS NOT NULL) AS l
    FROM req
    GROUP BY ALL
),
-- Every count of a service from one aggregate over rows of each kind
-- (src): its requests as server (in) and as client (out), the flows to
-- it (flow), the flows by their own destination, not swapped (dst: its
-- dropped packets by reason, and the DNS answers to it) and its
-- connections (conn).
rows AS (
    SELECT src, if(src = 'in', server, client) AS service, if(src = 'in', server_namespace, client_namespace) AS namespace,
        if(src = 'in', protocol, NULL) AS protocol, toInt64(requests) AS n_requests, toInt64(errors) AS n_errors,
        toInt64(client_errors) AS n_client_errors, toInt64(no_response) AS n_no_response, if(src = 'in', l, []) AS l,
        NULL AS l4_protocol, NULL AS l7_protocol, NULL AS verdict, NULL AS drop_reason_desc, NULL AS reason, CAST(NULL, 'Nullable(Int64)') AS n_flows,
        CAST(NULL, 'Nullable(Int64)') AS n_tcp_resets, CAST(NULL, 'Nullable(Int64)') AS n_dns_errors,
        false AS failed, false AS lost, false AS judged
    FROM calls ARRAY JOIN ['in', 'out'] AS src
    UNION ALL
    SELECT src, if(src = 'flow', destination, flow_destination) AS service,
        coalesce(if(src = 'flow', destination_namespace, flow_destination_namespace), '') AS namespace,
        NULL, NULL, NULL, NULL, NULL, [],
        l4_protocol, l7_protocol, verdict, drop_reason_desc,
        if(verdict = 'DROPPED', coalesce(drop_reason_desc, concat('DROP_REASON_', toString(drop_reason))), NULL),
        flows, tcp_resets, dns_errors, false, false, false
    FROM traffic_in ARRAY JOIN ['flow', 'dst'] AS src
    UNION ALL
    SELECT 'conn', destination, coalesce(destination_namespace, ''), NULL, NULL, NULL, NULL, NULL, [],
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        coalesce(failed, false), coalesce(dropped OR unanswered, false), coalesce(judged, false)
    FROM connections_in
),
-- A count of a kind a service has no rows of is NULL, as the join of
-- each count gave it (the flows' counts are NULL where 0 too: the SELECT
-- reads them through coalesce or > 0); drops_by_reason sums the flows of
-- each reason.
joined AS (
    SELECT service, namespace,
        countIf(src = 'in') > 0 AS served,
        ft_join(groupArrayIf(protocol, src = 'in')) AS protocols,
        if(served, sumIf(n_requests, src = 'in'), NULL) AS requests,
        if(served, sumIf(n_errors, src = 'in'), NULL) AS errors,
        if(served, sumIf(n_client_errors, src = 'in'), NULL) AS client_errors,
        if(served, sumIf(n_no_response, src = 'in'), NULL) AS no_response,
        ft_quantiles(arraySort(arrayFlatten(groupArrayIf(l, src = 'in'))), [0.5, 0.9, 0.95, 0.99, 1.0]) AS q,
        sumIf(n_requests, src = 'out') AS outbound_requests,
        sumIf(n_errors, src = 'out') AS outbound_errors,
        ft_join(groupArrayIf(l4_protocol, src = 'flow')) AS l4_protocols,
        sumIf(n_flows, src = 'flow') AS flows,
        sumIf(n_flows, src = 'flow' AND l7_protocol IN ('http', 'grpc')) AS http_flows,
        sumIf(n_flows, src = 'flow' AND l7_protocol = 'dns') AS dns_flows,
        sumIf(n_flows, src = 'flow' AND verdict = 'DROPPED') AS drops,
        sumIf(n_flows, src = 'flow' AND drop_reason_desc IN ('POLICY_DENIED', 'POLICY_DENY')) AS policy_denies,
        sumIf(n_tcp_resets, src = 'flow') AS tcp_resets,
        sumMapIf([assumeNotNull(reason)], [n_flows], src = 'dst' AND reason IS NOT NULL) AS dropped_by,
        ft_counts_of(arrayZip(dropped_by.1, dropped_by.2)) AS drops_by_reason,
        sumIf(n_dns_errors, src = 'dst') AS dns_errors,
        countIf(src = 'conn') AS conn_rows,
        if(conn_rows > 0, toInt64(conn_rows), NULL) AS connections,
        if(conn_rows > 0, toInt64(countIf(src = 'conn' AND failed)), NULL) AS connection_failures,
        if(conn_rows > 0, toInt64(countIf(src = 'conn' AND lost)), NULL) AS connections_lost,
        if(conn_rows > 0, toInt64(countIf(src = 'conn' AND judged)), NULL) AS judged_connections,
        served OR coalesce(http_flows, 0) > 0 AS l7
    FROM rows
    GROUP BY service, namespace
    HAVING countIf(src IN ('in', 'flow')) > 0
)
SELECT
    service,
    nullIf(namespace, '') AS namespace,
    multiIf(l7, 'L7', dns_flows > 0, 'DNS', 'L4') AS visibility,
    coalesce(protocols, l4_protocols) AS protocols,
    if(l7, coalesce(requests, 0), NULL) AS requests,
    if(l7, ft_round(coalesce(requests, 0) / w.seconds, 3), NULL) AS rps,
    if(l7, coalesce(errors, 0), NULL) AS errors,
    ft_error_rate(errors, requests) AS error_rate,
    if(l7, coalesce(client_errors, 0), NULL) AS client_errors,
    if(l7, coalesce(no_response, 0), NULL) AS no_response,
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
FROM joined, time_window w
WHERE ft_in_namespace(nullIf(namespace, ''), NULL)
-- (namespace as the output names it: NULL, not '', sorts last)
ORDER BY NOT l7, coalesce(errors, connections_lost) DESC, coalesce(requests, connections) DESC, service, nullIf(namespace, '')
