-- ft_burn is a burn rate: the bad share of events over what the objective
-- (a percentage) allows.
CREATE OR REPLACE MACRO ft_burn(bad, events, objective) AS
    CASE WHEN events > 0 THEN bad / events / (1 - objective / 100) END;

-- ft_slo_steps is how many --bucket steps a trailing window of seconds
-- takes, rounded up.
CREATE OR REPLACE MACRO ft_slo_steps(seconds) AS ceil(seconds / ft_bucket_seconds())::INTEGER;

-- ft_slo: the columns of the slo analysis (see sql/analyses/slo.sql) from
-- requests and connections (by name: relations of client,
-- client_namespace, service, namespace, sli, basis, step, events, bad; ''
-- for a missing name or namespace; step is a time's ns divided by the
-- --bucket's) in the window win (by name: a CTE of ft_window()).
-- Connections judge only the entities no L7 proxy reported requests of.
-- The exact path and the summary path count events their way and share
-- this.
--
-- Every entity gets every step of the window, with or without events, so
-- that a trailing window is a fixed number of rows: a burn rate can rise
-- at a step without events of its own, when good events leave the window.
-- --bucket divides 5 minutes (Params.ValidateFor), so the workbook's
-- windows are whole steps (ft_slo_steps rounds up all the same). An alert is
-- evaluated once the data holds its short window's worth of steps,
-- counted from the window's first flow whatever --since says (covers): at
-- the start of a recording, a minute of data in a 5-minute window would
-- page on the noise of a few requests (Prometheus has the hours before;
-- a recording does not).
CREATE OR REPLACE MACRO ft_slo(requests, connections, win) AS TABLE
WITH b AS (SELECT ft_bucket_seconds() * 1000000000 AS ns),
counted AS (
    SELECT * FROM query_table(requests)
    UNION ALL
    SELECT * FROM query_table(connections)
    WHERE (client, client_namespace, service, namespace) NOT IN (SELECT (client, client_namespace, service, namespace) FROM query_table(requests))
),
o AS (
    SELECT coalesce(getvariable('slo_objective')::DOUBLE, getvariable('ft_default_slo_objective')::DOUBLE) AS objective
),
e AS (
    SELECT client, client_namespace, service, namespace, sli, basis, step, sum(events) AS events, sum(bad) AS bad
    FROM counted
    GROUP BY ALL
),
steps AS (
    SELECT r.step FROM query_table(win) w, b, range(epoch_ns(w.t0) // b.ns, epoch_ns(w.t1) // b.ns + 1) r(step)
    -- as the timeline's buckets: months in 1-minute steps are a mistake
    WHERE CASE WHEN (epoch_ns(w.t1) - epoch_ns(w.t0)) // b.ns > 100000
        THEN error('the window spans more than 100000 steps of --bucket (at most 5m for slo): narrow it with --since and --until') ELSE true END
),
entities AS (SELECT DISTINCT client, client_namespace, service, namespace, sli, basis FROM e),
series AS (
    SELECT en.*, s.step, coalesce(e.events, 0) AS events, coalesce(e.bad, 0) AS bad
    FROM entities en CROSS JOIN steps s
    LEFT JOIN e USING (client, client_namespace, service, namespace, sli, basis, step)
),
-- the step the data covers the window from: the step of the window's
-- first flow (steps before it, of a --since before the recording or of
-- recordings far apart, hold no events because nothing was recorded, not
-- because nothing failed: they cover nothing); a traffic row (a minute,
-- or on the summary path an hour) that holds the window's start starts
-- it there
covers AS (
    SELECT epoch_ns(coalesce((SELECT min(greatest(t.first_time, w.t0)) FROM derived_traffic_all t WHERE t.last_time >= w.t0), w.t0)) // b.ns AS first
    FROM query_table(win) w, b
),
-- cumulative counts: a trailing window of n steps is the difference
-- between the count at a step and n steps before
cum AS (
    SELECT *, sum(events) OVER w AS ce, sum(bad) OVER w AS cb
    FROM series
    WINDOW w AS (PARTITION BY client, client_namespace, service, namespace, sli, basis ORDER BY step ROWS UNBOUNDED PRECEDING)
),
burn AS (
    SELECT client, client_namespace, service, namespace, sli, basis, step,
        step - covers.first + 1 AS covered,
        ft_burn(cb - lag(cb, ft_slo_steps(300), 0) OVER w, ce - lag(ce, ft_slo_steps(300), 0) OVER w, o.objective) AS burn_5m,
        ft_burn(cb - lag(cb, ft_slo_steps(1800), 0) OVER w, ce - lag(ce, ft_slo_steps(1800), 0) OVER w, o.objective) AS burn_30m,
        ft_burn(cb - lag(cb, ft_slo_steps(3600), 0) OVER w, ce - lag(ce, ft_slo_steps(3600), 0) OVER w, o.objective) AS burn_1h,
        ft_burn(cb - lag(cb, ft_slo_steps(21600), 0) OVER w, ce - lag(ce, ft_slo_steps(21600), 0) OVER w, o.objective) AS burn_6h
    FROM cum, o, covers
    WINDOW w AS (PARTITION BY client, client_namespace, service, namespace, sli, basis ORDER BY step)
),
pages AS (
    SELECT client, client_namespace, service, namespace, sli, basis,
        min(step) FILTER (burn_1h > 14.4 AND burn_5m > 14.4 AND covered >= ft_slo_steps(300)) AS fast,
        min(step) FILTER (burn_6h > 6 AND burn_30m > 6 AND covered >= ft_slo_steps(1800)) AS slow,
        max(burn_5m) FILTER (covered >= ft_slo_steps(300)) AS max_burn_5m
    FROM burn
    GROUP BY ALL
),
totals AS (
    SELECT client, client_namespace, service, namespace, sli, basis, sum(events)::BIGINT AS events, sum(bad)::BIGINT AS bad
    FROM series
    GROUP BY ALL
)
SELECT
    nullif(t.client, '') AS client, nullif(t.client_namespace, '') AS client_namespace,
    t.service, nullif(t.namespace, '') AS namespace, t.sli, t.basis, t.events, t.bad,
    round(100 * (1 - t.bad / nullif(t.events, 0)), 4) AS good_percent,
    o.objective,
    round((1 - o.objective / 100) * t.events, 1) AS budget,
    round(t.bad / nullif((1 - o.objective / 100) * t.events, 0), 4) AS budget_burned,
    round(t.bad / nullif((1 - o.objective / 100) * t.events, 0) * w.seconds / (30 * 86400), 6) AS budget_30d_burned,
    round(p.max_burn_5m, 2) AS max_burn_5m,
    CASE WHEN p.fast IS NOT NULL THEN least(make_timestamp_ns((p.fast + 1) * b.ns), w.t1) END AS page_1h_5m,
    CASE WHEN p.slow IS NOT NULL THEN least(make_timestamp_ns((p.slow + 1) * b.ns), w.t1) END AS page_6h_30m
FROM totals t
JOIN pages p USING (client, client_namespace, service, namespace, sli, basis)
CROSS JOIN o CROSS JOIN b CROSS JOIN query_table(win) w;
