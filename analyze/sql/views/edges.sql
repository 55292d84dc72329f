-- edges: every flow between two endpoints, in the connection's direction
-- (replies swapped back, so that a client -> server connection is one edge
-- whichever way its packets went), with what the analyses need per flow.
CREATE OR REPLACE VIEW edges AS
WITH f AS (
    SELECT *, coalesce(is_reply, reply, false) AS is_reply_any FROM flows
)
SELECT
    time, node_name, type, verdict, drop_reason_desc, l4_protocol,
    CASE WHEN is_reply_any THEN
        ft_name(destination_workload, destination_app, destination_pod_name, destination_labels, destination_names, ip_destination)
    ELSE ft_name(source_workload, source_app, source_pod_name, source_labels, source_names, ip_source) END AS source,
    CASE WHEN is_reply_any THEN destination_namespace ELSE source_namespace END AS source_namespace,
    CASE WHEN is_reply_any THEN destination_pod_name ELSE source_pod_name END AS source_pod,
    CASE WHEN is_reply_any THEN
        ft_name(source_workload, source_app, source_pod_name, source_labels, source_names, ip_source)
    ELSE ft_name(destination_workload, destination_app, destination_pod_name, destination_labels, destination_names, ip_destination) END AS destination,
    CASE WHEN is_reply_any THEN source_namespace ELSE destination_namespace END AS destination_namespace,
    CASE WHEN is_reply_any THEN source_pod_name ELSE destination_pod_name END AS destination_pod,
    CASE WHEN is_reply_any THEN source_port ELSE destination_port END AS destination_port,
    is_reply_any AS is_reply,
    tcp_syn AND NOT coalesce(tcp_ack, false) AS tcp_syn_only,
    coalesce(tcp_rst, false) AS tcp_rst,
    uuid
FROM f;
