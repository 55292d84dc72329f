-- services: the service list of a service mesh, one row per service and
-- namespace: analyze/sql/analyses/services.sql says what each column
-- means; this file computes the same on ClickHouse.
WITH
-- namespaces are '' rather than NULL until the end, so that services of
-- endpoints without one (world, host) join with themselves
req AS (
    SELECT client, coalesce(client_namespace, '') AS client_namespace, server, coalesce(server_namespace, '') AS server_namespace,
        protocol, no_response, error, client_error, latency_ns
    FROM requests_counted r, time_window w
    WHERE r.time BETWEEN w.t0 AND w.t1
),
inbound AS (
    SELECT service, namespace, ft_join(groupArray(protocol)) AS protocols,
        toInt64(sum(requests)) AS requests, toInt64(sum(errors)) AS errors, toInt64(sum(client_errors)) AS client_errors,
        toInt64(sum(no_response)) AS no_response
    FROM (SELECT server AS service, server_namespace AS namespace, protocol,
              countIf(NOT no_response) AS requests, countIf(error) AS errors, countIf(client_error) AS client_errors,
              countIf(no_response) AS no_response
          FROM req
          GROUP BY ALL)
    GROUP BY service, namespace
),
quantiles AS (
    SELECT server AS service, server_namespace AS namespace,
        ft_quantiles(arraySort(groupArrayIf(latency_ns, latency_ns IS NOT NULL)), [0.5, 0.9, 0.95, 0.99, 1.0]) AS q
    FROM req
    GROUP BY server, server_namespace
    HAVING countIf(latency_ns IS NOT NULL) > 0
),
outbound AS (
    SELECT client AS service, client_namespace AS namespace, toInt64(countIf(NOT no_response)) AS outbound_requests,
        toInt64(countIf(error)) AS outbound_errors
    FROM req GROUP BY ALL
),
tr AS (SELECT * FROM traffic_in),
flow_kinds AS (
    SELECT destination AS service, coalesce(destination_namespace, '') AS namespace, l4_protocol, l7_protocol, verdict, drop_reason_desc,
        sum(flows) AS flows, sum(tcp_resets) AS tcp_resets
    FROM tr
    GROUP BY ALL
),
flows_in AS (
    SELECT service, namespace,
        ft_join(groupArray(l4_protocol)) AS l4_protocols,
        toInt64(sum(flows)) AS flows,
        coalesce(sumIf(flows, l7_protocol IN ('http', 'grpc')), 0) AS http_flows,
        coalesce(sumIf(flows, l7_protocol = 'dns'), 0) AS dns_flows,
        toInt64(coalesce(sumIf(flows, verdict = 'DROPPED'), 0)) AS drops,
        toInt64(coalesce(sumIf(flows, drop_reason_desc IN ('POLICY_DENIED', 'POLICY_DENY')), 0)) AS policy_denies,
        toInt64(sum(tcp_resets)) AS tcp_resets
    FROM flow_kinds
    GROUP BY service, namespace
),
-- dropped packets by their own destination (not swapped)
reasons AS (
    SELECT service, namespace, ft_counts_of(groupArray((reason, n))) AS drops_by_reason
    FROM (SELECT flow_destination AS service, coalesce(flow_destination_namespace, '') AS namespace,
              coalesce(drop_reason_desc, concat('DROP_REASON_', toString(drop_reason))) AS reason, toInt64(sum(flows)) AS n
          FROM tr WHERE verdict = 'DROPPED' GROUP BY ALL)
    GROUP BY service, namespace
),
conns AS (
    SELECT destination AS service, coalesce(destination_namespace, '') AS namespace, toInt64(count()) AS connections,
        toInt64(countIf(failed)) AS connection_failures,
        toInt64(countIf(dropped OR unanswered)) AS connections_lost,
        toInt64(countIf(judged)) AS judged_connections
    FROM connections c, time_window w
    WHERE c.time BETWEEN w.t0 AND w.t1
    GROUP BY ALL
),
-- DNS answers other than NOERROR, by the client that asked
dns_errors AS (
    SELECT flow_destination AS service, coalesce(flow_destination_namespace, '') AS namespace, toInt64(sum(dns_errors)) AS dns_errors
    FROM tr
    GROUP BY ALL
),
services AS (
    SELECT service, namespace FROM inbound UNION DISTINCT SELECT service, namespace FROM flows_in
),
joined AS (
    SELECT s.service AS service, s.namespace AS namespace, i.protocols, i.requests, i.errors, i.client_errors, i.no_response,
        f.l4_protocols, f.flows, f.dns_flows, f.drops, f.policy_denies, f.tcp_resets,
        o.outbound_requests, o.outbound_errors, dr.drops_by_reason,
        c.connections, c.connection_failures, c.connections_lost, c.judged_connections,
        n.dns_errors, qs.q,
        i.service IS NOT NULL OR coalesce(f.http_flows, 0) > 0 AS l7
    FROM services s
    LEFT JOIN inbound i ON i.service = s.service AND i.namespace = s.namespace
    LEFT JOIN flows_in f ON f.service = s.service AND f.namespace = s.namespace
    LEFT JOIN outbound o ON o.service = s.service AND o.namespace = s.namespace
    LEFT JOIN reasons dr ON dr.service = s.service AND dr.namespace = s.namespace
    LEFT JOIN conns c ON c.service = s.service AND c.namespace = s.namespace
    LEFT JOIN dns_errors n ON n.service = s.service AND n.namespace = s.namespace
    LEFT JOIN quantiles qs ON qs.service = s.service AND qs.namespace = s.namespace
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
