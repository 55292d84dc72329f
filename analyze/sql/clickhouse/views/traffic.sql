-- traffic: the derived traffic table (flows of edges counted by minute and
-- kind), pods named as the pods view names them; flow_source and
-- flow_destination are the flows' own endpoints (not swapped). See
-- analyze/sql/views/traffic.sql.
SELECT
    bucket, node_name, type, l7_protocol, l7_type, verdict, drop_reason_desc, drop_reason, l4_protocol,
    coalesce(source, '(unknown)') AS source, source_namespace, source_pod,
    coalesce(destination, '(unknown)') AS destination, destination_namespace, destination_pod,
    destination_port, destination_service, is_reply,
    toInt64(flows) AS flows, toInt64(tcp_resets) AS tcp_resets, toInt64(dns_errors) AS dns_errors, max_latency_ns,
    if(is_reply, destination, source) AS flow_source,
    if(is_reply, destination_namespace, source_namespace) AS flow_source_namespace,
    if(is_reply, source, destination) AS flow_destination,
    if(is_reply, source_namespace, destination_namespace) AS flow_destination_namespace,
    first_time, last_time, session
FROM (
    SELECT t.* REPLACE (coalesce(rs.name, t.source) AS source, coalesce(rd.name, t.destination) AS destination)
    FROM derived_traffic t
    LEFT JOIN pod_renames rs ON isNotDistinctFrom(rs.namespace, t.source_namespace) AND rs.pod = t.source_pod
    LEFT JOIN pod_renames rd ON isNotDistinctFrom(rd.namespace, t.destination_namespace) AND rd.pod = t.destination_pod
)
