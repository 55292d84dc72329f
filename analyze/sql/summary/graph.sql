-- graph over the summaries (sql/summary/views.sql): the columns and rows
-- of sql/analyses/graph.sql at level workload or service (the summaries
-- keep no pods), its counts equal; p50 ... p99 from the summaries' latency
-- sketch (within 1%). See that file for what each column means.
WITH win AS (FROM ft_window()),
-- the Kubernetes service each workload serves, learned from the flows
-- addressed to it anywhere in the recording (the one most of them named;
-- the summary path reads no two sessions of the same flows)
svc AS (
    SELECT name, namespace, arg_max(service, n) AS service
    FROM (SELECT destination AS name, destination_namespace AS namespace, destination_service AS service, sum(flows) AS n
          FROM ft_traffic_of('derived_traffic_all') WHERE destination_service IS NOT NULL
          GROUP BY ALL)
    GROUP BY ALL
),
-- requests, their endpoints by the names of edges' columns, counted by
-- endpoints, protocol and latency bucket with their latencies: named as
-- nodes, then summed per edge and sorted for the percentiles, without
-- keeping millions of requests for the two uses
req AS (
    SELECT client AS source, client_namespace AS source_namespace, client_pod AS source_pod,
        server AS destination, server_namespace AS destination_namespace, server_pod AS destination_pod,
        NULL::VARCHAR AS destination_service,
        protocol, requests, errors, no_response, lb, lc
    FROM ft_s_requests_in('win')
),
req_nodes AS (FROM ft_graph_nodes('req', 'svc')),
l7 AS (
    SELECT source, source_namespace, destination, destination_namespace,
        sum(requests)::BIGINT AS requests,
        sum(errors)::BIGINT AS errors,
        sum(no_response)::BIGINT AS no_response,
        list(DISTINCT protocol) AS protocols
    FROM req_nodes GROUP BY ALL
),
latencies AS (
    SELECT {s: source, sn: source_namespace, d: destination, dn: destination_namespace} AS g, lb, lc
    FROM req_nodes
),
quantiles AS (
    SELECT g.s AS source, g.sn AS source_namespace, g.d AS destination, g.dn AS destination_namespace, q
    FROM ft_sketch_quantiles('latencies', [0.5, 0.95, 0.99])
),
tr AS (FROM ft_traffic_in('win')),
fl AS (
    SELECT source, source_namespace, destination, destination_namespace,
        verdict, l4_protocol, destination_port, is_reply, flows, tcp_resets
    FROM ft_graph_nodes('tr', 'svc')
),
-- per edge and kind of flow first: the lists below then gather a few rows
-- per edge, not every flow
fl_kinds AS (
    SELECT source, source_namespace, destination, destination_namespace, verdict, l4_protocol,
        CASE WHEN NOT is_reply THEN destination_port END AS port,
        sum(flows) AS flows, sum(tcp_resets) AS tcp_resets
    FROM fl GROUP BY ALL
),
verdicts AS (
    SELECT source, source_namespace, destination, destination_namespace,
        ft_counts_of(verdict, n) AS verdicts
    FROM (SELECT source, source_namespace, destination, destination_namespace, verdict, sum(flows)::BIGINT AS n
          FROM fl_kinds GROUP BY ALL)
    GROUP BY ALL
),
l4 AS (
    SELECT source, source_namespace, destination, destination_namespace,
        sum(flows)::BIGINT AS flows,
        coalesce(sum(flows) FILTER (verdict = 'DROPPED'), 0)::BIGINT AS drops,
        sum(tcp_resets)::BIGINT AS tcp_resets,
        list(DISTINCT l4_protocol) FILTER (l4_protocol IS NOT NULL) AS l4_protocols,
        list(DISTINCT port ORDER BY port) FILTER (port IS NOT NULL) AS ports
    FROM fl_kinds GROUP BY ALL
),
conns_in AS (FROM ft_s_connections_in('win')),
conns AS (
    SELECT source, source_namespace, destination, destination_namespace,
        sum(n)::BIGINT AS connections,
        coalesce(sum(n) FILTER (failed), 0)::BIGINT AS connection_failures,
        coalesce(sum(n) FILTER (dropped OR unanswered), 0)::BIGINT AS connections_lost,
        coalesce(sum(n) FILTER (judged), 0)::BIGINT AS judged_connections
    FROM ft_graph_nodes('conns_in', 'svc')
    GROUP BY ALL
),
g AS (
    SELECT *
    FROM l4
    JOIN verdicts USING (source, source_namespace, destination, destination_namespace)
    FULL JOIN l7 USING (source, source_namespace, destination, destination_namespace)
    LEFT JOIN conns USING (source, source_namespace, destination, destination_namespace)
    LEFT JOIN quantiles USING (source, source_namespace, destination, destination_namespace)
)
SELECT
    source, nullif(source_namespace, '') AS source_namespace, destination, nullif(destination_namespace, '') AS destination_namespace,
    array_to_string(list_sort(list_concat(coalesce(l4_protocols, []), coalesce(protocols, []))), ',') AS protocols,
    array_to_string(ports, ',') AS ports,
    requests,
    round(requests / win.seconds, 3) AS rps,
    errors,
    ft_error_rate(errors, requests) AS error_rate,
    no_response,
    q[1] / 1e6 AS p50_ms,
    q[2] / 1e6 AS p95_ms,
    q[3] / 1e6 AS p99_ms,
    round(CASE WHEN sum(requests) OVER (PARTITION BY source, source_namespace) > 0
        THEN coalesce(requests, 0) / sum(requests) OVER (PARTITION BY source, source_namespace)
        ELSE flows / nullif(sum(flows) OVER (PARTITION BY source, source_namespace), 0) END, 6) AS share,
    coalesce(flows, 0) AS flows,
    coalesce(connections, 0) AS connections,
    coalesce(connection_failures, 0) AS connection_failures,
    coalesce(drops, 0) AS drops,
    coalesce(tcp_resets, 0) AS tcp_resets,
    coalesce(verdicts, '') AS verdicts,
    ft_traffic_health(requests IS NOT NULL, errors, requests, connections_lost, judged_connections) AS health
FROM g CROSS JOIN win
-- share is of all the source's traffic: the namespace filter comes after
QUALIFY ft_in_namespace(source_namespace, destination_namespace)
ORDER BY coalesce(requests, 0) + coalesce(no_response, 0) DESC, flows DESC, source, destination,
    source_namespace NULLS FIRST, destination_namespace NULLS FIRST;
