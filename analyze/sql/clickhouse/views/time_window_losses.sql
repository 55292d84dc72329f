-- time_window_losses: time_window stretched over lost events too (what
-- coverage and the timeline look at, so that losses after the last flow
-- are not left out).
SELECT t0, t1, greatest(toUnixTimestamp64Nano(t1) - toUnixTimestamp64Nano(t0), 1) / 1e9 AS seconds
FROM (SELECT coalesce(ft_since, min(t)) AS t0, coalesce(ft_until, max(t)) AS t1
      FROM (SELECT min(first_time) AS t FROM derived_traffic
            UNION ALL SELECT max(last_time) FROM derived_traffic
            UNION ALL SELECT time FROM events WHERE event = 'lost_events'))
WHERE throwIf(coalesce(t0 > t1, false), 'the window is empty: it starts (at --since, or the first flow) after it ends (at --until, or the last flow)') = 0
