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
CREATE OR REPLACE VIEW connections AS
WITH reverse_nodes AS (
    SELECT DISTINCT node_name FROM edges WHERE l4_protocol = 'TCP' AND type = 'L3_L4' AND is_reply
),
reverse_pairs AS (
    SELECT DISTINCT source, destination FROM edges WHERE l4_protocol = 'TCP' AND type = 'L3_L4' AND is_reply
),
tcp AS (
    SELECT *,
        -- a SYN after anything but a SYN of the same addresses and ports
        -- opens a new connection: the same SYN seen at both ends and its
        -- retransmits belong to one attempt, a port reused later does not
        tcp_syn_only AND lag(tcp_syn_only, 1, false) OVER w IS DISTINCT FROM true AS opens
    FROM edges
    WHERE l4_protocol = 'TCP' AND type = 'L3_L4'
    WINDOW w AS (PARTITION BY source_ip, source_port, destination_ip, destination_port ORDER BY time)
),
numbered AS (
    SELECT *, sum(opens::INTEGER) OVER (PARTITION BY source_ip, source_port, destination_ip, destination_port ORDER BY time
        ROWS UNBOUNDED PRECEDING) AS attempt
    FROM tcp
),
c AS (
    SELECT
        min(time) FILTER (tcp_syn_only) AS time,
        max(time) AS last_time,
        arg_min(node_name, time) AS node_name,
        source_ip, source_port, destination_ip, destination_port,
        arg_min(source, time) AS source, arg_min(source_namespace, time) AS source_namespace,
        arg_min(source_pod, time) AS source_pod,
        arg_min(destination, time) AS destination, arg_min(destination_namespace, time) AS destination_namespace,
        arg_min(destination_pod, time) AS destination_pod,
        any_value(destination_service) AS destination_service,
        -- a SYN-ACK, or anything but a SYN or a reset after the SYN: the
        -- handshake went through even where its SYN-ACK was not traced
        bool_or(tcp_syn_ack OR NOT (tcp_syn_only OR tcp_rst OR verdict = 'DROPPED') OR verdict = 'REDIRECTED') AS answered,
        bool_or(tcp_rst) AS reset,
        bool_or(verdict = 'DROPPED') AS dropped,
        ft_counts(list(drop_reason_desc)) AS drop_reasons,
        count(*) AS flows
    FROM numbered
    WHERE attempt > 0
    GROUP BY source_ip, source_port, destination_ip, destination_port, attempt
)
SELECT *, reset OR dropped OR unanswered AS failed
FROM (SELECT *, NOT answered AND NOT dropped AND judged AND time < (SELECT max(time) - INTERVAL 1 SECOND FROM flows) AS unanswered
      FROM (SELECT c.*,
                answered OR reset OR dropped
                    OR (NOT getvariable('ft_filtered_capture')
                        AND coalesce(node_name IN (SELECT node_name FROM reverse_nodes WHERE node_name IS NOT NULL), false))
                    OR coalesce((source, destination) IN (SELECT (source, destination) FROM reverse_pairs), false) AS judged
            FROM c));
