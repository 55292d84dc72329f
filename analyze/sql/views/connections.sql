-- connections: one row per TCP connection attempt (a SYN), from whatever
-- L3/L4 flows of it were recorded; what L4-only recordings (GKE Dataplane
-- V2, no L7 proxy) say about health.
--
-- A connection is its client and server address and port, from a SYN to
-- the next SYN that follows other packets (a port used again). It failed
-- when it was reset (RST either way), when a packet of it was dropped, or
-- when no SYN-ACK came back (nor any other packet after the SYN); a SYN in
-- the last second of the recording may still be answered, and is not
-- counted as unanswered. A SYN redirected to the L7 proxy (verdict
-- REDIRECTED) is answered by the proxy.
--
-- Unanswered is judged on evidence only: judged is false where the
-- recording holds no packet of the other direction, neither of this client
-- and server nor on the node that saw the SYN (a capture filtered by
-- verdict or --from-pod, policy-verdict events only): there an unanswered
-- SYN cannot be told from an answer that was not recorded, and the
-- connection is neither answered nor failed (health unknown). A recording
-- made with filters (ft_filtered_capture, from its manifest: --from-pod
-- keeps a pod's replies to its clients and drops its servers' replies to
-- it) is judged by the replies of the same client and server only.
--
-- The flows of an attempt were gathered when they were written, within
-- each file (the derived connections table, see docs/schema.md): this
-- view joins the rows of an attempt across files, in time order (a row
-- whose first flow is a SYN after another row that did not end with one
-- opens the next attempt), and judges them.
CREATE OR REPLACE VIEW connections AS
WITH reverse AS (
    SELECT DISTINCT node_name, source, destination FROM traffic WHERE l4_protocol = 'TCP' AND type = 'L3_L4' AND is_reply
),
-- Rows of one connection from different files may overlap in time (flows
-- that arrived late, or two sessions that recorded the same flows): an
-- island is a run of rows each of which starts before the ones before it
-- have all ended; its flows are interleaved, so only its first row can
-- open an attempt, when its first flow is a SYN and the island before
-- did not end with one.
frag AS (
    SELECT *,
        coalesce(first_time >= max(last_time) OVER (PARTITION BY source_ip, source_port, destination_ip, destination_port
            ORDER BY first_time, last_time ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), true) AS starts
    FROM derived_connections
),
islands AS (
    SELECT *, sum(starts::INTEGER) OVER (PARTITION BY source_ip, source_port, destination_ip, destination_port
        ORDER BY first_time, last_time ROWS UNBOUNDED PRECEDING) AS island
    FROM frag
),
ends AS (
    SELECT source_ip, source_port, destination_ip, destination_port, island,
        arg_min(first_syn_only, (first_time, last_time)) AS first_syn_only,
        arg_max(last_syn_only, (last_time, first_time)) AS last_syn_only,
        min(first_time) AS first_time, max(last_time) AS last_time
    FROM islands
    GROUP BY ALL
),
numbered AS (
    SELECT source_ip, source_port, destination_ip, destination_port, island,
        sum(opens::INTEGER) OVER (PARTITION BY source_ip, source_port, destination_ip, destination_port ORDER BY first_time, last_time
            ROWS UNBOUNDED PRECEDING) AS attempt
    FROM (SELECT *, first_syn_only AND lag(last_syn_only, 1, false) OVER (PARTITION BY source_ip, source_port, destination_ip, destination_port
              ORDER BY first_time, last_time) IS DISTINCT FROM true AS opens
          FROM ends)
),
g AS (
    SELECT
        min(syn_time) AS time,
        max(last_time) AS last_time,
        arg_min(node_name, first_time) AS node_name,
        source_ip, source_port, destination_ip, destination_port,
        arg_min(coalesce(source, '(unknown)'), first_time) AS source, arg_min(source_namespace, first_time) AS source_namespace,
        arg_min(source_pod, first_time) AS source_pod,
        arg_min(coalesce(destination, '(unknown)'), first_time) AS destination, arg_min(destination_namespace, first_time) AS destination_namespace,
        arg_min(destination_pod, first_time) AS destination_pod,
        any_value(destination_service) AS destination_service,
        bool_or(answered) AS answered,
        bool_or(reset) AS reset,
        bool_or(dropped) AS dropped,
        ft_counts(flatten(list(drop_reasons))) AS drop_reasons,
        sum(flows)::BIGINT AS flows
    FROM (SELECT i.*, n.attempt
          FROM islands i
          JOIN numbered n ON n.island = i.island AND n.source_ip IS NOT DISTINCT FROM i.source_ip
              AND n.source_port IS NOT DISTINCT FROM i.source_port AND n.destination_ip IS NOT DISTINCT FROM i.destination_ip
              AND n.destination_port IS NOT DISTINCT FROM i.destination_port)
    WHERE attempt > 0
    GROUP BY source_ip, source_port, destination_ip, destination_port, attempt
),
c AS (
    SELECT g.* REPLACE (coalesce(rs.name, g.source) AS source, coalesce(rd.name, g.destination) AS destination)
    FROM g
    LEFT JOIN pod_renames rs ON getvariable('ft_pods_renamed') AND rs.namespace = g.source_namespace AND rs.pod = g.source_pod
    LEFT JOIN pod_renames rd ON getvariable('ft_pods_renamed') AND rd.namespace = g.destination_namespace AND rd.pod = g.destination_pod
)
SELECT *, reset OR dropped OR unanswered AS failed
FROM (SELECT *, NOT answered AND NOT dropped AND judged
                AND time < (SELECT max(last_time) - INTERVAL 1 SECOND FROM derived_traffic) AS unanswered
      FROM (SELECT c.*,
                answered OR reset OR dropped
                    OR (NOT getvariable('ft_filtered_capture')
                        AND coalesce(node_name IN (SELECT node_name FROM reverse WHERE node_name IS NOT NULL), false))
                    OR coalesce((source, destination) IN (SELECT (source, destination) FROM reverse), false) AS judged
            FROM c));
