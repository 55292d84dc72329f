-- egress: traffic that leaves the cluster, by client workload,
-- destination, port, protocol and verdict (as
-- analyze/sql/analyses/egress.sql).
WITH
new_since AS (
    SELECT ft_new_since AS t FROM flows
    WHERE throwIf(coalesce(ft_new_since <= (SELECT min(time) FROM flows), false),
        '--new-since is not after the recording''s first flow: nothing comes before it to compare with, so every destination would be new') = 0
      AND throwIf(coalesce(ft_new_since > (SELECT max(time) FROM flows), false),
        '--new-since is after the recording''s last flow: nothing comes after it (a relative time counts back from now, not from the recording''s end)') = 0
    LIMIT 1
),
cluster_ips AS (
    SELECT ip_source AS ip FROM flows
    WHERE ip_source IS NOT NULL AND (nullIf(source_pod_name, '') IS NOT NULL OR ft_node_identity(source_identity))
    UNION DISTINCT
    SELECT ip_destination FROM flows
    WHERE ip_destination IS NOT NULL AND (nullIf(destination_pod_name, '') IS NOT NULL OR ft_node_identity(destination_identity)
        OR (nullIf(destination_service_name, '') IS NOT NULL AND NOT coalesce(is_reply, false)))
),
out AS (
    SELECT e.time AS time, e.source AS source, e.source_namespace AS source_namespace,
        e.destination_ip AS destination_ip, e.destination_port AS destination_port, e.l4_protocol AS l4_protocol, e.verdict AS verdict,
        e.tcp_syn_only AND NOT lagInFrame(e.tcp_syn_only) OVER (PARTITION BY e.source_ip, e.source_port, e.destination_ip, e.destination_port
            ORDER BY e.time, NOT e.tcp_syn_only ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS opens,
        nullIf(trimRight(e.destination_names[1], '.'), '') AS flow_name
    FROM edges e, time_window w, new_since s
    WHERE (e.time BETWEEN w.t0 AND w.t1 OR coalesce(e.time < s.t, false))
      AND ft_outside(e.destination_identity, e.destination_pod) AND NOT ft_outside(e.source_identity, e.source_pod)
      AND e.destination_service IS NULL AND NOT coalesce(e.type = 'SOCK', false)
      AND e.destination_ip IS NOT NULL AND NOT ft_local_only(e.destination_ip)
      AND e.destination_ip NOT IN (SELECT ip FROM cluster_ips)
      AND ft_in_namespace(e.source_namespace, NULL)
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
        multiIf(p.flow_name IS NOT NULL, 'flows', c.query IS NOT NULL, 'dns', a.query IS NOT NULL, 'other-dns', 'address') AS named_by
    FROM pairs p
    LEFT JOIN by_client c ON c.client = p.source AND isNotDistinctFrom(c.client_namespace, p.source_namespace) AND c.ip = p.destination_ip
    LEFT JOIN by_ip a ON a.ip = p.destination_ip
),
flows_named AS (
    SELECT o.time AS time, o.source AS source, o.source_namespace AS source_namespace,
        o.destination_ip AS destination_ip, o.destination_port AS destination_port, o.l4_protocol AS l4_protocol, o.verdict AS verdict,
        o.opens AS opens, n.destination AS destination, n.named_by AS named_by
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
    toInt64(countIf(f.opens)) AS connections,
    min(f.time) AS first_seen, max(f.time) AS last_seen,
    argMax(f.named_by, multiIf(f.named_by = 'flows', 3, f.named_by = 'dns', 2, f.named_by = 'other-dns', 1, 0)) AS named_by
FROM flows_named f, time_window w, new_since s
WHERE f.time BETWEEN w.t0 AND w.t1
  AND (s.t IS NULL OR (f.source, coalesce(f.source_namespace, ''), f.destination, coalesce(f.destination_port, 0), coalesce(f.l4_protocol, ''))
      NOT IN (SELECT source, ns, destination, port, proto FROM seen_before))
GROUP BY f.source, f.source_namespace, f.destination, f.destination_port, f.l4_protocol, f.verdict
ORDER BY source_namespace, source, destination, port, protocol, verdict
