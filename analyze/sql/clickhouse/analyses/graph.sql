-- graph: the dependency graph, one row per edge (caller -> callee) at the
-- level of --level: workload (default), service or pod (as
-- analyze/sql/analyses/graph.sql). Nodes are named by ft_node, their
-- namespaces '' rather than NULL until the end.
WITH
-- the Kubernetes service each workload serves, learned from the flows
-- addressed to it anywhere in the recording (the one most of them named)
svc AS (
    SELECT name, namespace, argMax(service, n) AS service
    FROM (SELECT destination AS name, destination_namespace AS namespace, destination_service AS service, sum(flows) AS n
          FROM traffic WHERE destination_service IS NOT NULL
          GROUP BY ALL)
    GROUP BY name, namespace
),
-- requests with their endpoints named as nodes
req_nodes AS (
    SELECT ft_node(ft_level, r.client, r.client_pod, cs.service) AS source, coalesce(r.client_namespace, '') AS source_namespace,
        ft_node(ft_level, r.server, r.server_pod, ss.service) AS destination, coalesce(r.server_namespace, '') AS destination_namespace,
        r.protocol AS protocol, r.no_response AS no_response, r.error AS error, r.latency_ns AS latency_ns
    FROM (SELECT r.* FROM requests_counted r, time_window w WHERE r.time BETWEEN w.t0 AND w.t1) r
    LEFT JOIN svc cs ON ft_level = 'service' AND cs.name = r.client AND isNotDistinctFrom(cs.namespace, r.client_namespace)
    LEFT JOIN svc ss ON ft_level = 'service' AND ss.name = r.server AND isNotDistinctFrom(ss.namespace, r.server_namespace)
),
l7 AS (
    SELECT source, source_namespace, destination, destination_namespace,
        toInt64(countIf(NOT no_response)) AS requests,
        toInt64(countIf(error)) AS errors,
        toInt64(countIf(no_response)) AS no_response,
        groupUniqArray(protocol) AS protocols,
        ft_quantiles(arraySort(groupArrayIf(latency_ns, latency_ns IS NOT NULL)), [0.5, 0.95, 0.99]) AS q
    FROM req_nodes
    GROUP BY source, source_namespace, destination, destination_namespace
),
fl AS (
    SELECT ft_node(ft_level, t.source, t.source_pod, cs.service) AS source, coalesce(t.source_namespace, '') AS source_namespace,
        ft_node(ft_level, t.destination, t.destination_pod, coalesce(t.destination_service, ss.service)) AS destination,
        coalesce(t.destination_namespace, '') AS destination_namespace,
        t.verdict AS verdict, t.l4_protocol AS l4_protocol, t.destination_port AS destination_port, t.is_reply AS is_reply,
        t.flows AS flows, t.tcp_resets AS tcp_resets
    FROM traffic_in t
    LEFT JOIN svc cs ON ft_level = 'service' AND cs.name = t.source AND isNotDistinctFrom(cs.namespace, t.source_namespace)
    LEFT JOIN svc ss ON ft_level = 'service' AND ss.name = t.destination AND isNotDistinctFrom(ss.namespace, t.destination_namespace)
),
-- per edge and kind of flow first
fl_kinds AS (
    SELECT source, source_namespace, destination, destination_namespace, verdict, l4_protocol,
        if(NOT is_reply, destination_port, NULL) AS port,
        sum(flows) AS flows, sum(tcp_resets) AS tcp_resets
    FROM fl GROUP BY ALL
),
verdicts AS (
    SELECT source, source_namespace, destination, destination_namespace,
        ft_counts_of(groupArray((verdict, n))) AS verdicts
    FROM (SELECT source, source_namespace, destination, destination_namespace, verdict, toInt64(sum(flows)) AS n
          FROM fl_kinds GROUP BY ALL)
    GROUP BY source, source_namespace, destination, destination_namespace
),
l4 AS (
    SELECT source, source_namespace, destination, destination_namespace,
        toInt64(sum(flows)) AS flows,
        toInt64(coalesce(sumIf(flows, verdict = 'DROPPED'), 0)) AS drops,
        toInt64(sum(tcp_resets)) AS tcp_resets,
        groupUniqArray(l4_protocol) AS l4_protocols,
        arraySort(groupUniqArray(port)) AS ports
    FROM fl_kinds
    GROUP BY source, source_namespace, destination, destination_namespace
),
conns AS (
    SELECT source, source_namespace, destination, destination_namespace,
        toInt64(count()) AS connections,
        toInt64(countIf(failed)) AS connection_failures,
        toInt64(countIf(dropped OR unanswered)) AS connections_lost,
        toInt64(countIf(judged)) AS judged_connections
    FROM (SELECT ft_node(ft_level, c.source, c.source_pod, cs.service) AS source, coalesce(c.source_namespace, '') AS source_namespace,
              ft_node(ft_level, c.destination, c.destination_pod, coalesce(c.destination_service, ss.service)) AS destination,
              coalesce(c.destination_namespace, '') AS destination_namespace,
              c.failed AS failed, c.dropped AS dropped, c.unanswered AS unanswered, c.judged AS judged
          FROM (SELECT c.* FROM connections c, time_window w WHERE c.time BETWEEN w.t0 AND w.t1) c
          LEFT JOIN svc cs ON ft_level = 'service' AND cs.name = c.source AND isNotDistinctFrom(cs.namespace, c.source_namespace)
          LEFT JOIN svc ss ON ft_level = 'service' AND ss.name = c.destination AND isNotDistinctFrom(ss.namespace, c.destination_namespace))
    GROUP BY source, source_namespace, destination, destination_namespace
),
edges4 AS (
    SELECT l4.*, v.verdicts FROM l4
    JOIN verdicts v ON v.source = l4.source AND v.source_namespace = l4.source_namespace
        AND v.destination = l4.destination AND v.destination_namespace = l4.destination_namespace
),
g AS (
    SELECT
        coalesce(e.source, l7.source) AS source, coalesce(e.source_namespace, l7.source_namespace) AS source_namespace,
        coalesce(e.destination, l7.destination) AS destination, coalesce(e.destination_namespace, l7.destination_namespace) AS destination_namespace,
        e.flows AS flows, e.drops AS drops, e.tcp_resets AS tcp_resets, e.l4_protocols AS l4_protocols, e.ports AS ports, e.verdicts AS verdicts,
        l7.requests AS requests, l7.errors AS errors, l7.no_response AS no_response, l7.protocols AS protocols, l7.q AS q
    FROM edges4 e
    FULL JOIN l7 ON l7.source = e.source AND l7.source_namespace = e.source_namespace
        AND l7.destination = e.destination AND l7.destination_namespace = e.destination_namespace
),
gc AS (
    SELECT g.*, c.connections, c.connection_failures, c.connections_lost, c.judged_connections
    FROM g
    LEFT JOIN conns c ON c.source = g.source AND c.source_namespace = g.source_namespace
        AND c.destination = g.destination AND c.destination_namespace = g.destination_namespace
)
SELECT
    source, nullIf(source_namespace, '') AS source_namespace, destination, nullIf(destination_namespace, '') AS destination_namespace,
    arrayStringConcat(arraySort(arrayConcat(l4_protocols, protocols)), ',') AS protocols,
    nullIf(arrayStringConcat(arrayMap(p -> toString(p), ports), ','), '') AS ports,
    requests,
    ft_round(requests / w.seconds, 3) AS rps,
    errors,
    ft_error_rate(errors, requests) AS error_rate,
    no_response,
    q[1] / 1e6 AS p50_ms,
    q[2] / 1e6 AS p95_ms,
    q[3] / 1e6 AS p99_ms,
    ft_round(if(sum(requests) OVER (PARTITION BY source, source_namespace) > 0,
        coalesce(requests, 0) / sum(requests) OVER (PARTITION BY source, source_namespace),
        flows / nullIf(sum(flows) OVER (PARTITION BY source, source_namespace), 0)), 6) AS share,
    coalesce(flows, 0) AS flows,
    coalesce(connections, 0) AS connections,
    coalesce(connection_failures, 0) AS connection_failures,
    coalesce(drops, 0) AS drops,
    coalesce(tcp_resets, 0) AS tcp_resets,
    coalesce(verdicts, '') AS verdicts,
    ft_traffic_health(requests IS NOT NULL, errors, requests, connections_lost, judged_connections) AS health
FROM gc, time_window w
-- share is of all the source's traffic: the namespace filter comes after
QUALIFY ft_in_namespace(source_namespace, destination_namespace)
ORDER BY coalesce(requests, 0) + coalesce(no_response, 0) DESC, flows DESC, source, destination,
    source_namespace NULLS FIRST, destination_namespace NULLS FIRST
