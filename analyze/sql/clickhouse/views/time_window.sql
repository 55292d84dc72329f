-- time_window: the analysed window: --since/--until, else the recording's first
-- and last flow; seconds is its length, what rates divide by. A window
-- that ends before it starts is an error, not an empty result.
SELECT t0, t1, greatest(toUnixTimestamp64Nano(t1) - toUnixTimestamp64Nano(t0), 1) / 1e9 AS seconds
FROM (SELECT coalesce(ft_since, min(first_time)) AS t0, coalesce(ft_until, max(last_time)) AS t1 FROM derived_traffic)
WHERE throwIf(coalesce(t0 > t1, false), 'the window is empty: it starts (at --since, or the first flow) after it ends (at --until, or the last flow)') = 0
