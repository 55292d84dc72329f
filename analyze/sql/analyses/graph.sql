-- graph: the dependency graph, one row per edge (caller -> callee) at
-- the level of SET VARIABLE level: workload (default; as services names
-- them), service (the Kubernetes service the callee was addressed by,
-- callers by the service their pods serve) or pod.
--
-- L7 columns (requests ... p99_ms) come from requests_counted, NULL where
-- no L7 proxy saw the edge; flows, connections, drops, verdicts, protocols
-- and ports from every flow of the edge (the edges view, counted in the
-- traffic view). share is the
-- edge's part of its source's requests (0 for its edges without), or of
-- its flows where the source made no L7 requests. health: Kiali's thresholds on the L7 error share, else
-- on the share of connections dropped or never answered.
-- Nodes are named by ft_graph_nodes, their namespaces '' rather than NULL
-- until the end.
WITH win AS (FROM ft_window()),
-- the whole recording, a window for ft_traffic_in
whole AS (SELECT min(first_time) AS t0, max(last_time) AS t1 FROM derived_traffic_all),
-- the Kubernetes service each workload serves, learned from the flows
-- addressed to it anywhere in the recording (the one most of them named;
-- each flow once, where sessions recorded the same flows)
svc AS (
    SELECT name, namespace, arg_max(service, n) AS service
    FROM (SELECT destination AS name, destination_namespace AS namespace, destination_service AS service, sum(flows) AS n
          FROM ft_traffic_in('whole') WHERE destination_service IS NOT NULL
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
        protocol, latency_bucket AS b,
        ft_requests(no_response) AS requests,
        ft_errors(error) AS errors,
        ft_no_response(no_response) AS no_response,
        list(latency_ns) FILTER (latency_ns IS NOT NULL) AS l
    FROM ft_requests_in('win', ['client', 'client_namespace', 'client_pod', 'server', 'server_namespace', 'server_pod',
        'protocol', 'error', 'no_response', 'latency_ns', 'latency_bucket'])
    GROUP BY ALL
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
    SELECT {s: source, sn: source_namespace, d: destination, dn: destination_namespace} AS g, b, l
    FROM req_nodes
),
quantiles AS (
    SELECT g.s AS source, g.sn AS source_namespace, g.d AS destination, g.dn AS destination_namespace, q
    FROM ft_quantiles('latencies', [0.5, 0.95, 0.99])
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
conns_in AS (
    FROM ft_connections_in('win', ['source', 'source_namespace', 'source_pod', 'destination', 'destination_namespace', 'destination_pod',
        'destination_service', 'failed', 'dropped', 'unanswered', 'judged'])
),
conns AS (
    SELECT source, source_namespace, destination, destination_namespace,
        count(*) AS connections,
        ft_errors(failed) AS connection_failures,
        ft_connections_lost(dropped, unanswered) AS connections_lost,
        count(*) FILTER (judged) AS judged_connections
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
