-- drops: one row per dropped packet (verdict DROPPED), with why and, for
-- policy denials, which policy. Pods are named as the pods view names them.
SELECT
    time, node_name,
    coalesce(rs.name, source_endpoint) AS source,
    source_namespace,
    coalesce(rd.name, destination_endpoint) AS destination,
    destination_namespace,
    l4_protocol, destination_port,
    coalesce(drop_reason_desc, concat('DROP_REASON_', toString(drop_reason))) AS reason,
    arrayConcat(egress_denied_by, ingress_denied_by) AS denied_by,
    traffic_direction, uuid
FROM flows f
LEFT JOIN pod_renames rs ON isNotDistinctFrom(rs.namespace, f.source_namespace) AND rs.pod = f.source_pod_name
LEFT JOIN pod_renames rd ON isNotDistinctFrom(rd.namespace, f.destination_namespace) AND rd.pod = f.destination_pod_name
WHERE verdict = 'DROPPED'
