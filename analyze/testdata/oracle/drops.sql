-- drops: one row per dropped packet (verdict DROPPED), with why and, for
-- policy denials, which policy.
CREATE OR REPLACE VIEW drops AS
SELECT
    time, node_name,
    source_endpoint AS source,
    source_namespace,
    destination_endpoint AS destination,
    destination_namespace,
    l4_protocol, destination_port,
    coalesce(drop_reason_desc, 'DROP_REASON_' || drop_reason) AS reason,
    list_concat(coalesce(egress_denied_by, []), coalesce(ingress_denied_by, [])) AS denied_by,
    traffic_direction, uuid
FROM flows
WHERE verdict = 'DROPPED';
