-- Macros over the views, created after them.

-- ft_window is the analysed window: --since/--until (ft_since(),
-- ft_until()), else the recording's first and last flow; seconds is its
-- length, what rates divide by. A window that ends before it starts is an
-- error, not an empty result.
--
-- with_losses stretches it over lost events too: what coverage and the
-- timeline look at, so that losses after the last flow (a recorder cut off
-- for good) are not left out. Node status changes do not stretch it: a
-- recorder reports its own on its clock, which a simulation does not share.
CREATE OR REPLACE MACRO ft_window(with_losses := false) AS TABLE
    SELECT t0, t1,
        CASE WHEN t0 > t1 THEN error('the window is empty: --since ' || t0 || ' is after its end ' || t1 || ' (--until, or the last flow)')
             ELSE greatest(epoch_ns(t1) - epoch_ns(t0), 1) / 1e9 END AS seconds
    FROM (SELECT coalesce(ft_since(), min(time)) AS t0,
                 coalesce(ft_until(), max(time)) AS t1
          FROM (SELECT time FROM flows
                UNION ALL SELECT time FROM events WHERE with_losses AND event = 'lost_events'));
