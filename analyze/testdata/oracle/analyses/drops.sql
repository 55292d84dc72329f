-- drops: dropped packets by reason, edge and policy, most first, with
-- when they started and stopped and on which nodes. denied_by names the
-- policies (namespace/name) that denied the flow, for policy drops.
WITH win AS (FROM ft_window())
SELECT
    reason, source, source_namespace, destination, destination_namespace,
    l4_protocol AS protocol, destination_port AS port, traffic_direction AS direction,
    array_to_string(denied_by, ',') AS denied_by,
    count(*) AS drops,
    min(time) AS first, max(time) AS last,
    string_agg(DISTINCT node_name, ',' ORDER BY node_name) AS nodes
FROM ft_in_window('drops', 'win')
WHERE ft_in_namespace(source_namespace, destination_namespace)
GROUP BY ALL
ORDER BY drops DESC, reason, source, destination, port, protocol, direction, denied_by, source_namespace, destination_namespace;
