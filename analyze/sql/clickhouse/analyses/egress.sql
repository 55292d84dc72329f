-- egress: traffic that leaves the cluster, by client workload,
-- destination, port, protocol and verdict (as
-- analyze/sql/analyses/egress.sql).
WITH
new_since AS (
    SELECT ft_new_since AS t FROM flows
    WHERE throwIf(coalesce(ft_new_since <= (SELECT min(time) FROM flows), false),
        '--new-since is not after the recording''s first flow: nothing comes before it to compare with, so every destination would be new') = 0
    LIMIT 1
),
cluster_ips AS (
    SELECT ip_source AS ip FROM flows WHERE nullIf(source_pod_name, '') IS NOT NULL OR ft_node_identity(source_identity)
    UNION DISTINCT
    SELECT ip_destination FROM flows WHERE nullIf(destination_pod_name, '') IS NOT NULL OR ft_node_identity(destination_identity)
),
out AS (
    SELECT time, source, source_namespace, destination_ip, destination_port, l4_protocol, verdict, tcp_syn_only,
        nullIf(trimRight(destination_names[1], '.'), '') AS flow_name
    FROM edges
    WHERE ft_outside(destination_identity, destination_pod) AND NOT ft_outside(source_identity, source_pod)
      AND destination_ip IS NOT NULL AND destination_ip NOT IN (SELECT ip FROM cluster_ips)
      AND ft_in_namespace(source_namespace, NULL)
),
answers AS (
    SELECT client, client_namespace, arrayJoin(ips) AS ip, trimRight(query, '.') AS query, time FROM dns WHERE NOT error
),
by_client AS (
    SELECT client, client_namespace, ip, argMax(query, time) AS query FROM answers GROUP BY client, client_namespace, ip
),
by_ip AS (
    SELECT ip, argMax(query, time) AS query FROM answers GROUP BY ip
),
pairs AS (
    SELECT source, source_namespace, destination_ip, max(flow_name) AS flow_name
    FROM out GROUP BY source, source_namespace, destination_ip
),
named AS (
    SELECT p.source AS source, p.source_namespace AS source_namespace, p.destination_ip AS destination_ip,
        coalesce(p.flow_name, c.query, a.query, p.destination_ip) AS destination,
        multiIf(p.flow_name IS NOT NULL, 'flows', coalesce(c.query, a.query) IS NOT NULL, 'dns', 'address') AS named_by
    FROM pairs p
    LEFT JOIN by_client c ON c.client = p.source AND isNotDistinctFrom(c.client_namespace, p.source_namespace) AND c.ip = p.destination_ip
    LEFT JOIN by_ip a ON a.ip = p.destination_ip
),
flows_named AS (
    SELECT o.time AS time, o.source AS source, o.source_namespace AS source_namespace, o.destination_ip AS destination_ip,
        o.destination_port AS destination_port, o.l4_protocol AS l4_protocol, o.verdict AS verdict, o.tcp_syn_only AS tcp_syn_only,
        n.destination AS destination, n.named_by AS named_by
    FROM out o JOIN named n ON n.source = o.source AND isNotDistinctFrom(n.source_namespace, o.source_namespace)
        AND n.destination_ip = o.destination_ip
),
seen_before AS (
    SELECT DISTINCT source, coalesce(source_namespace, '') AS ns, destination, coalesce(destination_port, 0) AS port, coalesce(l4_protocol, '') AS proto
    FROM flows_named f, new_since s
    WHERE s.t IS NOT NULL AND f.time < s.t
)
SELECT
    f.source AS source, f.source_namespace AS source_namespace, f.destination AS destination,
    nullIf(arrayStringConcat(arraySort(groupUniqArray(f.destination_ip)), ','), '') AS ips,
    f.destination_port AS port, f.l4_protocol AS protocol, f.verdict AS verdict,
    toInt64(count()) AS flows,
    toInt64(countIf(f.tcp_syn_only)) AS connections,
    min(f.time) AS first_seen, max(f.time) AS last_seen,
    max(f.named_by) AS named_by
FROM flows_named f, time_window w, new_since s
WHERE f.time BETWEEN w.t0 AND w.t1
  AND (s.t IS NULL OR (f.source, coalesce(f.source_namespace, ''), f.destination, coalesce(f.destination_port, 0), coalesce(f.l4_protocol, ''))
      NOT IN (SELECT source, ns, destination, port, proto FROM seen_before))
GROUP BY f.source, f.source_namespace, f.destination, f.destination_port, f.l4_protocol, f.verdict
ORDER BY source_namespace, source, destination, port, protocol, verdict
