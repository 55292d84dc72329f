-- services over the summaries (sql/summary/views.sql): the columns and
-- rows of sql/analyses/services.sql, its counts equal; p50 ... p99 from
-- the summaries' latency sketch (within 1%), max_ms exact. See that file
-- for what each column means.
WITH win AS (FROM ft_window()),
-- namespaces are '' rather than NULL until the end, so that services of
-- endpoints without one (world, host) join with themselves
req AS (
    SELECT client, coalesce(client_namespace, '') AS client_namespace, server, coalesce(server_namespace, '') AS server_namespace,
        protocol, requests, errors, client_errors, no_response, max_latency_ns, lb, lc
    FROM ft_s_requests_in('win')
),
calls AS (
    SELECT client, client_namespace, server, server_namespace, protocol,
        sum(requests) AS requests, sum(errors) AS errors, sum(client_errors) AS client_errors, sum(no_response) AS no_response,
        max(max_latency_ns) AS max_latency_ns
    FROM req
    GROUP BY ALL
),
-- per service and protocol first: the protocols are listed from a few
-- rows, not every request
inbound AS (
    SELECT service, namespace, string_agg(protocol, ',' ORDER BY protocol) AS protocols,
        sum(requests)::BIGINT AS requests, sum(errors)::BIGINT AS errors, sum(client_errors)::BIGINT AS client_errors,
        sum(no_response)::BIGINT AS no_response
    FROM (SELECT server AS service, server_namespace AS namespace, protocol,
              sum(requests) AS requests, sum(errors) AS errors, sum(client_errors) AS client_errors, sum(no_response) AS no_response
          FROM calls
          GROUP BY ALL)
    GROUP BY ALL
),
latencies AS (SELECT {s: server, n: server_namespace} AS g, lb, lc FROM req),
-- the percentiles from the sketch (within 1%), the longest latency exact
quantiles AS (
    SELECT q.service, q.namespace, list_append(q.q, m.max_latency_ns) AS q
    FROM (SELECT g.s AS service, g.n AS namespace, q FROM ft_sketch_quantiles('latencies', [0.5, 0.9, 0.95, 0.99])) q
    JOIN (SELECT server AS service, server_namespace AS namespace, max(max_latency_ns) AS max_latency_ns FROM calls GROUP BY ALL) m
        USING (service, namespace)
),
outbound AS (
    SELECT client AS service, client_namespace AS namespace, sum(requests)::BIGINT AS outbound_requests,
        sum(errors)::BIGINT AS outbound_errors
    FROM calls GROUP BY ALL
),
-- the flows of the window, counted by minute and kind (the traffic view)
tr AS (FROM ft_traffic_in('win')),
-- per destination and kind of flow first: the aggregates below then see a
-- few rows per service
flow_kinds AS (
    SELECT destination AS service, coalesce(destination_namespace, '') AS namespace, l4_protocol, l7_protocol, verdict, drop_reason_desc,
        sum(flows) AS flows, sum(tcp_resets) AS tcp_resets
    FROM tr
    GROUP BY ALL
),
flows_in AS (
    SELECT service, namespace,
        string_agg(DISTINCT l4_protocol, ',' ORDER BY l4_protocol) AS l4_protocols,
        sum(flows)::BIGINT AS flows,
        coalesce(sum(flows) FILTER (l7_protocol IN ('http', 'grpc')), 0) AS http_flows,
        coalesce(sum(flows) FILTER (l7_protocol = 'dns'), 0) AS dns_flows,
        coalesce(sum(flows) FILTER (verdict = 'DROPPED'), 0)::BIGINT AS drops,
        coalesce(sum(flows) FILTER (drop_reason_desc IN ('POLICY_DENIED', 'POLICY_DENY')), 0)::BIGINT AS policy_denies,
        sum(tcp_resets)::BIGINT AS tcp_resets
    FROM flow_kinds
    GROUP BY ALL
),
-- dropped packets by their own destination (not swapped), as the drops
-- view lists them
reasons AS (
    SELECT service, namespace, ft_counts_of(reason, n) AS drops_by_reason
    FROM (SELECT flow_destination AS service, coalesce(flow_destination_namespace, '') AS namespace,
              coalesce(drop_reason_desc, 'DROP_REASON_' || drop_reason) AS reason, sum(flows)::BIGINT AS n
          FROM tr WHERE verdict = 'DROPPED' GROUP BY ALL)
    GROUP BY ALL
),
conns AS (
    SELECT destination AS service, coalesce(destination_namespace, '') AS namespace, sum(n)::BIGINT AS connections,
        coalesce(sum(n) FILTER (failed), 0)::BIGINT AS connection_failures,
        coalesce(sum(n) FILTER (dropped OR unanswered), 0)::BIGINT AS connections_lost,
        coalesce(sum(n) FILTER (judged), 0)::BIGINT AS judged_connections
    FROM ft_s_connections_in('win')
    GROUP BY ALL
),
-- DNS answers other than NOERROR, by the client that asked (the answer's
-- destination), as the dns view lists them
dns_errors AS (
    SELECT flow_destination AS service, coalesce(flow_destination_namespace, '') AS namespace, sum(dns_errors)::BIGINT AS dns_errors
    FROM tr
    GROUP BY ALL
),
services AS (
    SELECT service, namespace FROM inbound UNION SELECT service, namespace FROM flows_in
),
joined AS (
    SELECT *, i.service IS NOT NULL OR coalesce(f.http_flows, 0) > 0 AS l7
    FROM services s
    LEFT JOIN inbound i USING (service, namespace)
    LEFT JOIN flows_in f USING (service, namespace)
    LEFT JOIN outbound o USING (service, namespace)
    LEFT JOIN reasons dr USING (service, namespace)
    LEFT JOIN conns c USING (service, namespace)
    LEFT JOIN dns_errors n USING (service, namespace)
    LEFT JOIN quantiles USING (service, namespace)
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
