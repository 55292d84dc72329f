-- drops: dropped packets by reason, edge and policy, most first, with
-- when they started and stopped and on which nodes (as
-- analyze/sql/analyses/drops.sql).
SELECT
    reason, source, source_namespace, destination, destination_namespace,
    l4_protocol AS protocol, destination_port AS port, traffic_direction AS direction,
    arrayStringConcat(denied_by, ',') AS denied_by,
    toInt64(count()) AS drops,
    min(time) AS first, max(time) AS last,
    ft_join(groupArray(node_name)) AS nodes
FROM drops d, time_window w
WHERE d.time BETWEEN w.t0 AND w.t1 AND ft_in_namespace(source_namespace, destination_namespace)
GROUP BY reason, source, source_namespace, destination, destination_namespace, protocol, port, direction, denied_by
ORDER BY drops DESC, reason, source, destination, port, protocol, direction, denied_by, source_namespace, destination_namespace
