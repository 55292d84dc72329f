-- edges: every flow between two endpoints, in the connection's direction
-- (replies swapped back, so that a client -> server connection is one edge
-- whichever way its packets went), with what the analyses need per flow.
--
-- A TCP SYN goes from client to server and a SYN-ACK back, whatever
-- is_reply says; other flows are replies when Cilium says so (is_reply, or
-- the older reply flag when set). When it could not tell (is_reply NULL):
-- an ICMP echo reply is a reply, and so is a packet from a port below the
-- ephemeral range (32768) to one in it; anything else counts as sent.
-- destination_service is the Kubernetes service the client addressed, where
-- Cilium knew it; source_identity and destination_identity the endpoints'
-- security identities, destination_names the DNS names of the server's
-- address (Cilium's FQDN cache). Pods are named as the pods view names them; an endpoint
-- without a name (no IP either) is (unknown). flow_source and
-- flow_destination are the flow's own endpoints (not swapped, NULL when
-- unnamed).
--
-- The derived traffic table counts these rows by minute (schema/derive.go
-- writes it; the analyses' tests hold the two equal): the analyses read
-- it, and read edges only for the minutes a --since or --until cuts.
CREATE OR REPLACE VIEW edges AS
WITH f AS (
    SELECT *,
        CASE WHEN tcp_syn AND NOT coalesce(tcp_ack, false) THEN false
             WHEN tcp_syn AND tcp_ack THEN true
             WHEN is_reply IS NOT NULL THEN is_reply
             WHEN reply THEN true
             WHEN l4_protocol IN ('ICMPv4', 'ICMPv6') THEN icmp_type IN (0, 129)
             ELSE coalesce(source_port < 32768 AND destination_port >= 32768, false) END AS swap
    FROM flows
),
n AS (
    SELECT f.* REPLACE (coalesce(rs.name, f.source_endpoint) AS source_endpoint, coalesce(rd.name, f.destination_endpoint) AS destination_endpoint)
    FROM f
    LEFT JOIN pod_renames rs ON getvariable('ft_pods_renamed') AND rs.namespace IS NOT DISTINCT FROM f.source_namespace AND rs.pod = f.source_pod_name
    LEFT JOIN pod_renames rd ON getvariable('ft_pods_renamed') AND rd.namespace IS NOT DISTINCT FROM f.destination_namespace AND rd.pod = f.destination_pod_name
)
SELECT
    time, node_name, type, l7_protocol, l7_type, l7_latency_ns, verdict, drop_reason_desc, drop_reason, l4_protocol, traffic_direction,
    coalesce(CASE WHEN swap THEN destination_endpoint ELSE source_endpoint END, '(unknown)') AS source,
    CASE WHEN swap THEN destination_namespace ELSE source_namespace END AS source_namespace,
    CASE WHEN swap THEN destination_pod_name ELSE source_pod_name END AS source_pod,
    CASE WHEN swap THEN ip_destination ELSE ip_source END AS source_ip,
    CASE WHEN swap THEN destination_port ELSE source_port END AS source_port,
    coalesce(CASE WHEN swap THEN source_endpoint ELSE destination_endpoint END, '(unknown)') AS destination,
    CASE WHEN swap THEN source_namespace ELSE destination_namespace END AS destination_namespace,
    CASE WHEN swap THEN source_pod_name ELSE destination_pod_name END AS destination_pod,
    CASE WHEN swap THEN ip_source ELSE ip_destination END AS destination_ip,
    CASE WHEN swap THEN source_port ELSE destination_port END AS destination_port,
    nullif(CASE WHEN swap THEN source_service_name ELSE destination_service_name END, '') AS destination_service,
    CASE WHEN swap THEN destination_identity ELSE source_identity END AS source_identity,
    CASE WHEN swap THEN source_identity ELSE destination_identity END AS destination_identity,
    CASE WHEN swap THEN source_names ELSE destination_names END AS destination_names,
    swap AS is_reply,
    coalesce(tcp_syn AND NOT coalesce(tcp_ack, false), false) AS tcp_syn_only,
    coalesce(tcp_syn AND tcp_ack, false) AS tcp_syn_ack,
    coalesce(tcp_rst, false) AS tcp_rst,
    coalesce(type = 'L7' AND l7_type = 'RESPONSE' AND dns_rcode <> 0, false) AS dns_error,
    source_endpoint AS flow_source, source_namespace AS flow_source_namespace,
    destination_endpoint AS flow_destination, destination_namespace AS flow_destination_namespace,
    uuid
FROM n;
