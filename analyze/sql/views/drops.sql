-- drops: one row per dropped packet (verdict DROPPED), with why and, for
-- policy denials, which policy. Pods are named as the pods view names them.
CREATE OR REPLACE VIEW drops AS
SELECT
    time, node_name,
    coalesce(rs.name, source_endpoint) AS source,
    source_namespace,
    coalesce(rd.name, destination_endpoint) AS destination,
    destination_namespace,
    l4_protocol, destination_port,
    coalesce(drop_reason_desc, 'DROP_REASON_' || drop_reason) AS reason,
    list_concat(coalesce(egress_denied_by, []), coalesce(ingress_denied_by, [])) AS denied_by,
    traffic_direction, uuid
FROM flows f
LEFT JOIN pod_renames rs ON getvariable('ft_pods_renamed') AND rs.namespace IS NOT DISTINCT FROM f.source_namespace AND rs.pod = f.source_pod_name
LEFT JOIN pod_renames rd ON getvariable('ft_pods_renamed') AND rd.namespace IS NOT DISTINCT FROM f.destination_namespace AND rd.pod = f.destination_pod_name
WHERE verdict = 'DROPPED';
