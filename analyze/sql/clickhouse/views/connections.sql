-- connections: one row per TCP connection attempt (a SYN), from whatever
-- L3/L4 flows of it were recorded, judged on evidence only: see
-- analyze/sql/views/connections.sql for the rules (answered, reset,
-- dropped, unanswered, judged), which this file computes alike.
WITH reverse AS (
    SELECT DISTINCT node_name, source, destination FROM traffic WHERE l4_protocol = 'TCP' AND type = 'L3_L4' AND is_reply
),
keyed AS (SELECT * EXCEPT (connection_key), connection_key AS k FROM derived_connections),
-- the keys of rows whose attempt the writer could not name: their rows
-- are put in time order, and a row that starts after every row before it
-- has ended opens an attempt when its first flow is a SYN and the row
-- that ended last did not end with one
unsure AS (SELECT DISTINCT k FROM keyed WHERE attempt IS NULL),
ran AS (
    SELECT k, first_time, last_time, first_syn_only,
        max(last_time) OVER w AS ended, argMax(last_syn_only, last_time) OVER w AS ended_syn_only
    FROM keyed WHERE k IN (SELECT k FROM unsure)
    WINDOW w AS (PARTITION BY k ORDER BY first_time, last_time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
opening AS (
    SELECT k, first_time, last_time,
        coalesce(first_time >= lagInFrame(ended) OVER w, true) AND first_syn_only
            AND NOT coalesce(lagInFrame(ended_syn_only) OVER w, false) AS opens
    FROM ran
    WINDOW w AS (PARTITION BY k ORDER BY first_time, last_time ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
),
-- rows of the same times are in one attempt
numbered AS (
    SELECT DISTINCT k, first_time, last_time,
        toInt64(sum(toInt32(opens)) OVER (PARTITION BY k ORDER BY first_time, last_time RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) AS n
    FROM opening
),
attempts AS (
    SELECT r.* EXCEPT (k, attempt), true AS sure, r.attempt AS grp FROM keyed r WHERE r.k NOT IN (SELECT k FROM unsure)
    UNION ALL
    SELECT r.* EXCEPT (k, attempt), false AS sure, toInt64(bitShiftRight(cityHash64(r.k, n.n), 1)) AS grp
    FROM keyed r JOIN numbered n ON r.k = n.k AND r.first_time = n.first_time AND r.last_time = n.last_time
    WHERE n.n > 0
),
g AS (
    SELECT
        min(syn_time) AS time,
        max(last_time) AS last_time,
        any((source_ip, source_port, destination_ip, destination_port)) AS t,
        -- the endpoints as the attempt's first row names them; each of
        -- node, namespaces and pods from the first row that has one
        argMin((coalesce(source, '(unknown)'), coalesce(destination, '(unknown)')), first_time) AS e,
        argMin(node_name, first_time) AS node_name,
        argMin(source_namespace, first_time) AS source_namespace,
        argMin(source_pod, first_time) AS source_pod,
        argMin(destination_namespace, first_time) AS destination_namespace,
        argMin(destination_pod, first_time) AS destination_pod,
        any(destination_service) AS destination_service,
        max(answered) AS answered,
        max(reset) AS reset,
        max(dropped) AS dropped,
        ft_counts(arrayFlatten(groupArray(drop_reasons))) AS drop_reasons,
        toInt64(sum(flows)) AS flows
    FROM attempts
    GROUP BY sure, grp
),
c AS (
    SELECT time, last_time, node_name, t.1 AS source_ip, t.2 AS source_port, t.3 AS destination_ip, t.4 AS destination_port,
        coalesce(rs.name, e.1) AS source, source_namespace, source_pod,
        coalesce(rd.name, e.2) AS destination, destination_namespace, destination_pod,
        destination_service, answered, reset, dropped, drop_reasons, flows
    FROM g
    LEFT JOIN pod_renames rs ON isNotDistinctFrom(rs.namespace, g.source_namespace) AND rs.pod = g.source_pod
    LEFT JOIN pod_renames rd ON isNotDistinctFrom(rd.namespace, g.destination_namespace) AND rd.pod = g.destination_pod
),
judged AS (
    SELECT c.*,
        answered OR reset OR dropped
            OR (NOT ft_filtered_capture AND coalesce(node_name IN (SELECT node_name FROM reverse WHERE node_name IS NOT NULL), false))
            OR coalesce((source, destination) IN (SELECT source, destination FROM reverse), false) AS judged
    FROM c
),
judged_unanswered AS (
    SELECT *, NOT answered AND NOT dropped AND judged
        AND time < (SELECT max(last_time) - INTERVAL 1 SECOND FROM derived_traffic) AS unanswered
    FROM judged
)
SELECT *, reset OR dropped OR unanswered AS failed FROM judged_unanswered
