-- coverage: did we see everything? One row per node, and a first row
-- "(all)" for the whole recording: the window of its flows, flows and
-- flows per second, events lost by source, when losses happened, how often
-- the node's stream was unavailable, and what retention removed and a
-- full spool dropped (as analyze/sql/analyses/coverage.sql).
WITH
f AS (
    SELECT node_name AS node, min(first_time) AS first_flow, max(last_time) AS last_flow, toInt64(sum(flows)) AS flows
    FROM traffic_in
    GROUP BY node_name
),
lost AS (
    SELECT node_name AS node, lost_events_source AS source, sum(num_events_lost) AS n,
        min(coalesce(lost_events_first, time)) AS first_lost, max(coalesce(lost_events_last, time)) AS last_lost
    FROM events e, time_window_losses w
    WHERE e.time BETWEEN w.t0 AND w.t1 AND event = 'lost_events'
    GROUP BY node_name, lost_events_source
),
dropped AS (
    SELECT ft_dropped_flows AS n, ft_dropped_first AS first_lost, ft_dropped_last AS last_lost
    WHERE ft_dropped_flows > 0 AND (ft_since IS NULL OR ft_dropped_last >= ft_since) AND (ft_until IS NULL OR ft_dropped_first <= ft_until)
),
lost_by_node AS (
    SELECT node, toInt64(sum(n)) AS lost_events,
        ft_counts_of(groupArray((source, n))) AS lost_by_source,
        min(first_lost) AS first_lost, max(last_lost) AS last_lost
    FROM lost GROUP BY node
),
-- relay reports name the nodes they concern; a recorder's own reports
-- (its stream broke) name the server and count for the recording as a whole
unavailable AS (
    SELECT node, toInt64(count()) AS unavailable
    FROM (SELECT arrayJoin(if(node_name = ft_recorder_node, ['(all)'], node_names)) AS node
          FROM events e, time_window_losses w
          WHERE e.time BETWEEN w.t0 AND w.t1 AND event = 'node_status' AND node_state IN ('NODE_UNAVAILABLE', 'NODE_GONE', 'NODE_ERROR'))
    GROUP BY node
),
nodes AS (
    SELECT node FROM f UNION DISTINCT SELECT node FROM lost_by_node UNION DISTINCT SELECT node FROM unavailable WHERE node <> '(all)'
),
per_node AS (
    SELECT nd.node AS node, f.first_flow AS first_flow, f.last_flow AS last_flow, coalesce(f.flows, 0) AS flows,
        coalesce(l.lost_events, 0) AS lost_events, coalesce(l.lost_by_source, '') AS lost_by_source,
        l.first_lost AS first_lost, l.last_lost AS last_lost, coalesce(u.unavailable, 0) AS unavailable
    FROM nodes nd
    LEFT JOIN f ON isNotDistinctFrom(f.node, nd.node)
    LEFT JOIN lost_by_node l ON isNotDistinctFrom(l.node, nd.node)
    LEFT JOIN unavailable u ON isNotDistinctFrom(u.node, nd.node)
),
-- the whole recording's losses: what the "(all)" row adds to its nodes'
-- (each of these CTEs is one row)
lost_sources AS (
    SELECT coalesce(ft_counts_of(groupArray((src, cnt))), '') AS all_lost_by_source
    FROM (SELECT source AS src, toInt64(sum(n)) AS cnt FROM lost GROUP BY source
          UNION ALL SELECT 'SPOOL_DROPPED', n FROM dropped)
),
lost_times AS (
    SELECT min(t0) AS all_first_lost, max(t1) AS all_last_lost
    FROM (SELECT first_lost AS t0, last_lost AS t1 FROM per_node UNION ALL SELECT first_lost, last_lost FROM dropped)
),
dropped_total AS (SELECT toInt64(count()) AS drop_rows, coalesce(sum(n), 0) AS drop_flows FROM dropped),
recorder_unavailable AS (SELECT coalesce(sum(unavailable), 0) AS all_unavailable FROM unavailable WHERE node = '(all)'),
-- the nodes' rows summed: one row, also where the window has no flows
node_totals AS (
    SELECT count() AS nodes, min(first_flow) AS first_flow, max(last_flow) AS last_flow, sum(flows) AS flows,
        sum(lost_events) AS lost_events, sum(unavailable) AS unavailable
    FROM per_node
),
total AS (
    SELECT '(all)' AS node, p.first_flow AS first_flow, p.last_flow AS last_flow, toInt64(p.flows) AS flows,
        toInt64(if(p.nodes > 0 OR d.drop_rows > 0, coalesce(p.lost_events, 0) + d.drop_flows, NULL)) AS lost_events,
        ls.all_lost_by_source AS lost_by_source,
        lt.all_first_lost AS first_lost,
        lt.all_last_lost AS last_lost,
        toInt64(p.unavailable + ru.all_unavailable) AS unavailable
    FROM node_totals p, dropped_total d, lost_sources ls, lost_times lt, recorder_unavailable ru
)
SELECT node, first_flow, last_flow, flows,
    ft_round(flows / w.seconds, 3) AS flows_per_s,
    lost_events, lost_by_source, first_lost, last_lost, unavailable,
    toBool(lost_events = 0 AND unavailable = 0) AS complete,
    if(o = 0, ft_expired_flows, NULL) AS expired_flows,
    if(o = 0, ft_expired_until, NULL) AS expired_until
FROM (SELECT *, 0 AS o FROM total UNION ALL SELECT *, 1 AS o FROM per_node) x, time_window_losses w
ORDER BY o, node
