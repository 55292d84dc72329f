-- coverage: did we see everything? One row per node, and a first row
-- "(all)" for the whole recording: the window of its flows, flows and
-- flows per second, events lost (Hubble's and the kernel's, and flows a
-- recorder estimated it missed while away) by source, when losses
-- happened, and how often the node's stream was unavailable.
-- complete is false where anything was lost or unavailable.
-- expired_flows and expired_until are what retention removed (record
-- --retention, --max-disk; from the manifests): that many flows, up to
-- that time, are no longer in the recording (on the "(all)" row: the
-- manifests do not say by node); complete speaks of what is.
-- Flows a full spool dropped before they reached the bucket (record -o
-- URL while the store was down) are lost, never recorded anywhere: on the
-- "(all)" row they count among lost_events as SPOOL_DROPPED, when the
-- window meets their time range. The manifests keep one sum and one range
-- of a spool's drops: a window that meets the range counts them all.
WITH win AS (FROM ft_window(with_losses := true)),
f AS (
    SELECT node_name AS node, min(first_time) AS first_flow, max(last_time) AS last_flow, sum(flows)::BIGINT AS flows
    FROM ft_traffic_in('win')
    GROUP BY node_name
),
lost AS (
    SELECT node_name AS node, lost_events_source AS source, sum(num_events_lost) AS n,
        min(coalesce(lost_events_first, time)) AS first_lost, max(coalesce(lost_events_last, time)) AS last_lost
    FROM ft_in_window('events', 'win')
    WHERE event = 'lost_events'
    GROUP BY ALL
),
dropped AS (
    SELECT getvariable('ft_dropped_flows')::BIGINT AS n,
        getvariable('ft_dropped_first')::TIMESTAMP_NS AS first_lost,
        getvariable('ft_dropped_last')::TIMESTAMP_NS AS last_lost
    WHERE n > 0 AND (ft_since() IS NULL OR last_lost >= ft_since()) AND (ft_until() IS NULL OR first_lost <= ft_until())
),
lost_by_node AS (
    SELECT node, sum(n)::BIGINT AS lost_events,
        ft_counts_of(source, n) AS lost_by_source,
        min(first_lost) AS first_lost, max(last_lost) AS last_lost
    FROM lost GROUP BY node
),
-- relay reports name the nodes they concern; a recorder's own reports
-- (its stream broke) name the server and count for the recording as a whole
unavailable AS (
    SELECT node, count(*) AS unavailable
    FROM (SELECT unnest(CASE WHEN node_name = ft_recorder_node() THEN ['(all)'] ELSE node_names END) AS node
          FROM ft_in_window('events', 'win')
          WHERE event = 'node_status' AND node_state IN ('NODE_UNAVAILABLE', 'NODE_GONE', 'NODE_ERROR'))
    GROUP BY node
),
nodes AS (
    SELECT node FROM f UNION SELECT node FROM lost_by_node UNION SELECT node FROM unavailable WHERE node <> '(all)'
),
per_node AS (
    SELECT n.node, f.first_flow, f.last_flow, coalesce(f.flows, 0) AS flows,
        coalesce(l.lost_events, 0) AS lost_events, coalesce(l.lost_by_source, '') AS lost_by_source,
        l.first_lost, l.last_lost, coalesce(u.unavailable, 0) AS unavailable
    FROM nodes n LEFT JOIN f USING (node) LEFT JOIN lost_by_node l USING (node) LEFT JOIN unavailable u USING (node)
),
total AS (
    SELECT '(all)' AS node, min(first_flow) AS first_flow, max(last_flow) AS last_flow, sum(flows)::BIGINT AS flows,
        CASE WHEN count(*) > 0 OR EXISTS (FROM dropped)
             THEN coalesce(sum(lost_events), 0) + coalesce((SELECT n FROM dropped), 0) END::BIGINT AS lost_events,
        (SELECT coalesce(ft_counts_of(source, n), '')
         FROM (SELECT source, sum(n)::BIGINT AS n FROM lost GROUP BY source
               UNION ALL SELECT 'SPOOL_DROPPED', n FROM dropped)) AS lost_by_source,
        (SELECT min(t) FROM (SELECT min(first_lost) AS t FROM per_node UNION ALL SELECT first_lost FROM dropped)) AS first_lost,
        (SELECT max(t) FROM (SELECT max(last_lost) AS t FROM per_node UNION ALL SELECT last_lost FROM dropped)) AS last_lost,
        sum(unavailable)::BIGINT + coalesce((SELECT unavailable FROM unavailable WHERE node = '(all)'), 0) AS unavailable
    FROM per_node
)
SELECT node, first_flow, last_flow, flows,
    round(flows / win.seconds, 3) AS flows_per_s,
    lost_events, lost_by_source, first_lost, last_lost, unavailable,
    lost_events = 0 AND unavailable = 0 AS complete,
    CASE WHEN o = 0 THEN getvariable('ft_expired_flows') END::BIGINT AS expired_flows,
    CASE WHEN o = 0 THEN getvariable('ft_expired_until') END::TIMESTAMP_NS AS expired_until
FROM (SELECT *, 0 AS o FROM total UNION ALL SELECT *, 1 FROM per_node) CROSS JOIN win
ORDER BY o, node;
