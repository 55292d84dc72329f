-- edges: every flow between two endpoints, in the connection's direction
-- (replies swapped back), with what the analyses need per flow. See
-- analyze/sql/views/edges.sql for the rules; the derived traffic table
-- counts these rows by minute, and the analyses read edges only for the
-- minutes a --since or --until cuts.
SELECT
    time, node_name, type, l7_protocol, l7_type, l7_latency_ns, verdict, drop_reason_desc, drop_reason, l4_protocol, traffic_direction,
    coalesce(if(swap, destination_endpoint, source_endpoint), '(unknown)') AS source,
    if(swap, destination_namespace, source_namespace) AS source_namespace,
    if(swap, destination_pod_name, source_pod_name) AS source_pod,
    if(swap, ip_destination, ip_source) AS source_ip,
    if(swap, destination_port, source_port) AS source_port,
    coalesce(if(swap, source_endpoint, destination_endpoint), '(unknown)') AS destination,
    if(swap, source_namespace, destination_namespace) AS destination_namespace,
    if(swap, source_pod_name, destination_pod_name) AS destination_pod,
    if(swap, ip_source, ip_destination) AS destination_ip,
    if(swap, source_port, destination_port) AS destination_port,
    nullIf(if(swap, source_service_name, destination_service_name), '') AS destination_service,
    if(swap, destination_identity, source_identity) AS source_identity,
    if(swap, source_identity, destination_identity) AS destination_identity,
    if(swap, source_names, destination_names) AS destination_names,
    swap AS is_reply,
    coalesce(tcp_syn AND NOT coalesce(tcp_ack, false), false) AS tcp_syn_only,
    coalesce(tcp_syn AND tcp_ack, false) AS tcp_syn_ack,
    coalesce(tcp_rst, false) AS tcp_rst,
    coalesce(type = 'L7' AND l7_type = 'RESPONSE' AND dns_rcode <> 0, false) AS dns_error,
    source_endpoint AS flow_source, source_namespace AS flow_source_namespace,
    destination_endpoint AS flow_destination, destination_namespace AS flow_destination_namespace,
    uuid
FROM (
    SELECT f.* REPLACE (coalesce(rs.name, f.source_endpoint) AS source_endpoint, coalesce(rd.name, f.destination_endpoint) AS destination_endpoint),
        multiIf(tcp_syn AND NOT coalesce(tcp_ack, false), false,
                tcp_syn AND tcp_ack, true,
                is_reply IS NOT NULL, assumeNotNull(is_reply),
                reply, true,
                l4_protocol IN ('ICMPv4', 'ICMPv6'), coalesce(icmp_type IN (0, 129), false),
                coalesce(source_port < 32768 AND destination_port >= 32768, false)) AS swap
    FROM flows f
    LEFT JOIN pod_renames rs ON isNotDistinctFrom(rs.namespace, f.source_namespace) AND rs.pod = f.source_pod_name
    LEFT JOIN pod_renames rd ON isNotDistinctFrom(rd.namespace, f.destination_namespace) AND rd.pod = f.destination_pod_name
)
