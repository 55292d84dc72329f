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
-- Every row of an edge from one union of its kinds (src: req, flow and
-- conn), its endpoints named as nodes by one join with svc each, and
-- counted by one aggregate, as services.sql does: ClickHouse inlines a
-- CTE at each reference, and the first form of this file, a CTE per kind
-- each joined with svc, read svc six times and traffic_in twice (3.2-3.5 s
-- per run on chDB over the 768 flows of the real samples, against
-- 2.1-2.2 s).
ends AS (
    SELECT 'req' AS src, client AS s_name, client_namespace AS s_ns, client_pod AS s_pod,
        server AS d_name, server_namespace AS d_ns, server_pod AS d_pod, CAST(NULL, 'Nullable(String)') AS d_service,
        protocol, no_response AS r_no_response, error AS r_error, latency_ns,
        CAST(NULL, 'Nullable(String)') AS verdict, CAST(NULL, 'Nullable(String)') AS l4_protocol,
        CAST(NULL, 'Nullable(UInt32)') AS port, CAST(NULL, 'Nullable(Int64)') AS n_flows, CAST(NULL, 'Nullable(Int64)') AS n_tcp_resets,
        false AS c_failed, false AS c_lost, false AS c_judged
    FROM requests_in
    UNION ALL
    SELECT 'flow', source, source_namespace, source_pod, destination, destination_namespace, destination_pod, destination_service,
        NULL, NULL, NULL, NULL,
        verdict, l4_protocol, if(NOT is_reply, destination_port, NULL), flows, tcp_resets,
        false, false, false
    FROM traffic_in
    UNION ALL
    SELECT 'conn', source, source_namespace, source_pod, destination, destination_namespace, destination_pod, destination_service,
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        coalesce(failed, false), coalesce(dropped OR unanswered, false), coalesce(judged, false)
    FROM connections_in
),
nodes AS (
    SELECT e.src AS src,
        ft_node(ft_level, e.s_name, e.s_pod, cs.service) AS source, coalesce(e.s_ns, '') AS source_namespace,
        ft_node(ft_level, e.d_name, e.d_pod, coalesce(e.d_service, ss.service)) AS destination,
        coalesce(e.d_ns, '') AS destination_namespace,
        e.protocol AS protocol, e.r_no_response AS r_no_response, e.r_error AS r_error, e.latency_ns AS latency_ns,
        e.verdict AS verdict, e.l4_protocol AS l4_protocol, e.port AS port, e.n_flows AS n_flows, e.n_tcp_resets AS n_tcp_resets,
        e.c_failed AS c_failed, e.c_lost AS c_lost, e.c_judged AS c_judged
    FROM ends e
    LEFT JOIN svc cs ON ft_level = 'service' AND cs.name = e.s_name AND isNotDistinctFrom(cs.namespace, e.s_ns)
    LEFT JOIN svc ss ON ft_level = 'service' AND ss.name = e.d_name AND isNotDistinctFrom(ss.namespace, e.d_ns)
),
-- the edges of flows or requests: an edge without requests has NULL
-- requests, errors and no_response, one without flows NULL flows (and
-- drops, resets and verdicts, which the SELECT reads through coalesce),
-- as the outer joins of each count gave them; the connection counts are
-- 0 where it has none (read as 0 alike)
gc AS (
    SELECT source, source_namespace, destination, destination_namespace,
        countIf(src = 'req') AS req_rows,
        if(req_rows > 0, toInt64(countIf(src = 'req' AND NOT r_no_response)), NULL) AS requests,
        if(req_rows > 0, toInt64(countIf(src = 'req' AND r_error)), NULL) AS errors,
        if(req_rows > 0, toInt64(countIf(src = 'req' AND r_no_response)), NULL) AS no_response,
        groupUniqArrayIf(protocol, src = 'req') AS protocols,
        ft_quantiles(arraySort(groupArrayIf(latency_ns, src = 'req' AND latency_ns IS NOT NULL)), [0.5, 0.95, 0.99]) AS q,
        sumIf(n_flows, src = 'flow') AS flows,
        sumIf(n_flows, src = 'flow' AND verdict = 'DROPPED') AS drops,
        sumIf(n_tcp_resets, src = 'flow') AS tcp_resets,
        groupUniqArrayIf(l4_protocol, src = 'flow') AS l4_protocols,
        arraySort(groupUniqArrayIf(port, src = 'flow')) AS ports,
        sumMapIf([assumeNotNull(verdict)], [n_flows], src = 'flow' AND verdict IS NOT NULL) AS by_verdict,
        ft_counts_of(arrayZip(by_verdict.1, by_verdict.2)) AS verdicts,
        countIf(src = 'conn') AS connections,
        countIf(src = 'conn' AND c_failed) AS connection_failures,
        countIf(src = 'conn' AND c_lost) AS connections_lost,
        countIf(src = 'conn' AND c_judged) AS judged_connections
    FROM nodes
    GROUP BY source, source_namespace, destination, destination_namespace
    HAVING countIf(src IN ('req', 'flow')) > 0
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
