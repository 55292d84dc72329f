-- Macros over the views, created after them.

-- ft_window is the analysed window: --since/--until (SET VARIABLE since,
-- until), else the recording's first and last flow; seconds is its length,
-- what rates divide by.
CREATE OR REPLACE MACRO ft_window() AS TABLE
    SELECT t0, t1, greatest(epoch_ns(t1) - epoch_ns(t0), 1) / 1e9 AS seconds
    FROM (SELECT coalesce(getvariable('since')::TIMESTAMP_NS, min(time)) AS t0,
                 coalesce(getvariable('until')::TIMESTAMP_NS, max(time)) AS t1
          FROM flows);
