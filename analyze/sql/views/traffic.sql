-- traffic: the rows of edges counted by minute and by everything the
-- analyses group flows by (node, type, verdict, drop reason, protocols,
-- direction, endpoints, service, port), with the flows' first and last
-- time: the derived traffic table (written with the flows, see
-- docs/schema.md), pods named as the pods view names them. Sums of its
-- counts over rows equal counts of edges over the same flows (but where
-- two sessions recorded the same flows: see ft_traffic_in). flow_source
-- and flow_destination are the flows' own endpoints (not swapped).
--
-- ft_traffic_of(rel) is the same over rel (by name): derived_traffic_all,
-- the whole recording's rows, for what an analysis learns from outside
-- its window (on the summary path derived_traffic holds the window's
-- rows only, see sql/summary/views.sql).
CREATE OR REPLACE MACRO ft_traffic_of(rel) AS TABLE
WITH t AS (
    SELECT t.* REPLACE (coalesce(rs.name, t.source) AS source, coalesce(rd.name, t.destination) AS destination)
    FROM query_table(rel) t
    LEFT JOIN pod_renames rs ON getvariable('ft_pods_renamed') AND rs.namespace IS NOT DISTINCT FROM t.source_namespace AND rs.pod = t.source_pod
    LEFT JOIN pod_renames rd ON getvariable('ft_pods_renamed') AND rd.namespace IS NOT DISTINCT FROM t.destination_namespace AND rd.pod = t.destination_pod
)
SELECT
    bucket, node_name, type, l7_protocol, l7_type, verdict, drop_reason_desc, drop_reason, l4_protocol,
    coalesce(source, '(unknown)') AS source, source_namespace, source_pod,
    coalesce(destination, '(unknown)') AS destination, destination_namespace, destination_pod,
    destination_port, destination_service, is_reply,
    flows::BIGINT AS flows, tcp_resets::BIGINT AS tcp_resets, dns_errors::BIGINT AS dns_errors, max_latency_ns,
    CASE WHEN is_reply THEN destination ELSE source END AS flow_source,
    CASE WHEN is_reply THEN destination_namespace ELSE source_namespace END AS flow_source_namespace,
    CASE WHEN is_reply THEN source ELSE destination END AS flow_destination,
    CASE WHEN is_reply THEN source_namespace ELSE destination_namespace END AS flow_destination_namespace,
    first_time, last_time,
    -- the recording session (recording id) whose file counted the flows;
    -- '' in a recording of one session
    session
FROM t;

CREATE OR REPLACE VIEW traffic AS FROM ft_traffic_of('derived_traffic');
