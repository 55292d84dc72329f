-- drops: one row per dropped packet (verdict DROPPED), with why and, for
-- policy denials, which policy.
CREATE OR REPLACE VIEW drops AS
SELECT
    time, node_name,
    ft_name(source_workload, source_app, source_pod_name, source_identity, source_names, ip_source) AS source,
    source_namespace,
    ft_name(destination_workload, destination_app, destination_pod_name, destination_identity, destination_names, ip_destination) AS destination,
    destination_namespace,
    l4_protocol, destination_port,
    coalesce(drop_reason_desc, 'DROP_REASON_' || drop_reason) AS reason,
    list_concat(coalesce(egress_denied_by, []), coalesce(ingress_denied_by, [])) AS denied_by,
    traffic_direction, uuid
FROM flows
WHERE verdict = 'DROPPED';
