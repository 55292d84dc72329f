-- graph: the dependency graph, one row per edge (caller -> callee) at
-- the level of SET VARIABLE level: workload (default; as services names
-- them), service (the Kubernetes service the callee was addressed by,
-- callers by the service their pods serve) or pod.
--
-- L7 columns (requests ... p99_ms) come from requests_counted, NULL where
-- no L7 proxy saw the edge; flows, connections, drops, verdicts, protocols
-- and ports from every flow of the edge (the edges view). share is the
-- edge's part of its source's requests (0 for its edges without), or of
-- its flows where the source made no L7 requests. health: Kiali's thresholds on the L7 error share, else
-- on the share of connections dropped or never answered.
WITH win AS (FROM ft_window()),
-- namespaces are '' rather than NULL until the end, so that edges of
-- endpoints without one (world, host) join with themselves
-- the Kubernetes service each workload serves, learned from the flows
-- addressed to it
svc AS (
    SELECT destination AS name, destination_namespace AS namespace, mode(destination_service) AS service
    FROM edges WHERE destination_service IS NOT NULL
    GROUP BY ALL
),
req AS (
    SELECT
        ft_node(ft_level(), r.client, r.client_pod, cs.service) AS source,
        coalesce(r.client_namespace, '') AS source_namespace,
        ft_node(ft_level(), r.server, r.server_pod, ss.service) AS destination,
        coalesce(r.server_namespace, '') AS destination_namespace,
        r.protocol, r.error, r.no_response, r.latency_ns
    FROM requests_counted r CROSS JOIN win
    LEFT JOIN svc cs ON ft_level() = 'service' AND cs.name = r.client AND cs.namespace IS NOT DISTINCT FROM r.client_namespace
    LEFT JOIN svc ss ON ft_level() = 'service' AND ss.name = r.server AND ss.namespace IS NOT DISTINCT FROM r.server_namespace
    WHERE r.time BETWEEN win.t0 AND win.t1
),
l7 AS (
    SELECT source, source_namespace, destination, destination_namespace,
        count(*) FILTER (NOT no_response) AS requests,
        count(*) FILTER (error) AS errors,
        count(*) FILTER (no_response) AS no_response,
        quantile_disc(latency_ns, [0.5, 0.95, 0.99]) AS q,
        list(DISTINCT protocol) AS protocols
    FROM req GROUP BY ALL
),
fl AS (
    SELECT
        ft_node(ft_level(), e.source, e.source_pod, cs.service) AS source,
        coalesce(e.source_namespace, '') AS source_namespace,
        ft_node(ft_level(), e.destination, e.destination_pod, coalesce(e.destination_service, ss.service)) AS destination,
        coalesce(e.destination_namespace, '') AS destination_namespace,
        e.verdict, e.l4_protocol, e.destination_port, e.is_reply, e.tcp_rst
    FROM edges e CROSS JOIN win
    LEFT JOIN svc cs ON ft_level() = 'service' AND cs.name = e.source AND cs.namespace IS NOT DISTINCT FROM e.source_namespace
    LEFT JOIN svc ss ON ft_level() = 'service' AND ss.name = e.destination AND ss.namespace IS NOT DISTINCT FROM e.destination_namespace
    WHERE e.time BETWEEN win.t0 AND win.t1
),
-- per edge and kind of flow first: the lists below then gather a few rows
-- per edge, not every flow
fl_kinds AS (
    SELECT source, source_namespace, destination, destination_namespace, verdict, l4_protocol,
        CASE WHEN NOT is_reply THEN destination_port END AS port,
        count(*) AS flows, count(*) FILTER (tcp_rst) AS tcp_resets
    FROM fl GROUP BY ALL
),
verdicts AS (
    SELECT source, source_namespace, destination, destination_namespace,
        string_agg(verdict || '=' || n, ',' ORDER BY n DESC, verdict) AS verdicts
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
conns AS (
    SELECT
        ft_node(ft_level(), c.source, c.source_pod, cs.service) AS source,
        coalesce(c.source_namespace, '') AS source_namespace,
        ft_node(ft_level(), c.destination, c.destination_pod, coalesce(c.destination_service, ss.service)) AS destination,
        coalesce(c.destination_namespace, '') AS destination_namespace,
        count(*) AS connections,
        count(*) FILTER (failed) AS connection_failures,
        count(*) FILTER (dropped OR unanswered) AS connections_lost
    FROM connections c CROSS JOIN win
    LEFT JOIN svc cs ON ft_level() = 'service' AND cs.name = c.source AND cs.namespace IS NOT DISTINCT FROM c.source_namespace
    LEFT JOIN svc ss ON ft_level() = 'service' AND ss.name = c.destination AND ss.namespace IS NOT DISTINCT FROM c.destination_namespace
    WHERE c.time BETWEEN win.t0 AND win.t1
    GROUP BY ALL
),
g AS (
    SELECT *
    FROM l4
    JOIN verdicts USING (source, source_namespace, destination, destination_namespace)
    FULL JOIN l7 USING (source, source_namespace, destination, destination_namespace)
    LEFT JOIN conns USING (source, source_namespace, destination, destination_namespace)
)
SELECT
    source, nullif(source_namespace, '') AS source_namespace, destination, nullif(destination_namespace, '') AS destination_namespace,
    array_to_string(list_sort(list_concat(coalesce(l4_protocols, []), coalesce(protocols, []))), ',') AS protocols,
    array_to_string(ports, ',') AS ports,
    requests,
    round(requests / win.seconds, 3) AS rps,
    errors,
    round(errors / nullif(requests, 0), 6) AS error_rate,
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
    CASE WHEN requests IS NOT NULL THEN ft_health(errors, requests)
         ELSE ft_health(connections_lost, connections) END AS health
FROM g CROSS JOIN win
-- share is of all the source's traffic: the namespace filter comes after
QUALIFY ft_in_namespace(source_namespace, destination_namespace)
ORDER BY coalesce(requests, 0) + coalesce(no_response, 0) DESC, flows DESC, source, destination;
