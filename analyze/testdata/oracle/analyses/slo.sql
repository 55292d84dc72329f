-- slo, the oracle: every request and connection of the query-time views,
-- and each trailing window counted afresh at every step (a join of the
-- steps with the events they hold), not the analysis's cumulative sums.
WITH win AS (FROM ft_window()),
b AS (SELECT ft_bucket_seconds() AS s),
o AS (SELECT coalesce(getvariable('slo_objective')::DOUBLE, getvariable('ft_default_slo_objective')::DOUBLE) AS objective,
          round(getvariable('slo_latency_ms')::DOUBLE * 1e6)::BIGINT AS thr),
keyed AS (
    SELECT CASE WHEN ft_level() = 'edge' THEN client ELSE '' END AS client,
        CASE WHEN ft_level() = 'edge' THEN coalesce(client_namespace, '') ELSE '' END AS client_namespace,
        server AS service, coalesce(server_namespace, '') AS namespace, time, no_response, error, latency_ns
    FROM ft_in_window('requests_counted', 'win')
    WHERE ft_in_namespace(client_namespace, server_namespace)
),
ev AS (
    SELECT client, client_namespace, service, namespace, 'availability' AS sli, 'requests' AS basis, time, error OR no_response AS bad
    FROM keyed
    UNION ALL
    SELECT client, client_namespace, service, namespace, 'latency', 'requests', time, latency_ns > o.thr
    FROM keyed, o
    WHERE o.thr IS NOT NULL AND latency_ns IS NOT NULL AND NOT no_response
),
cn AS (
    SELECT CASE WHEN ft_level() = 'edge' THEN source ELSE '' END AS client,
        CASE WHEN ft_level() = 'edge' THEN coalesce(source_namespace, '') ELSE '' END AS client_namespace,
        destination AS service, coalesce(destination_namespace, '') AS namespace, 'availability' AS sli, 'connections' AS basis, time, dropped OR unanswered AS bad
    FROM ft_in_window('connections', 'win')
    WHERE judged AND ft_in_namespace(source_namespace, destination_namespace)
),
events AS (
    SELECT *, epoch_ns(time) // (b.s * 1000000000) AS step
    FROM (SELECT * FROM ev
          UNION ALL
          SELECT * FROM cn WHERE (client, client_namespace, service, namespace) NOT IN (SELECT (client, client_namespace, service, namespace) FROM ev)), b
),
n AS (SELECT ceil(300 / s)::BIGINT AS m5, ceil(1800 / s)::BIGINT AS m30, ceil(3600 / s)::BIGINT AS h1, ceil(21600 / s)::BIGINT AS h6 FROM b),
grid AS (
    -- steps before the window's first flow (--since before it) cover nothing
    SELECT p.*, k, k - epoch_ns(coalesce((SELECT min(time) FROM flows, win WHERE time >= win.t0), win.t0)) // (b.s * 1000000000) + 1 AS covered
    FROM win, b, (SELECT DISTINCT client, client_namespace, service, namespace, sli, basis FROM events) p,
        (SELECT r.k FROM win, b, range(epoch_ns(win.t0) // (b.s * 1000000000), epoch_ns(win.t1) // (b.s * 1000000000) + 1) r(k)
         WHERE CASE WHEN (epoch_ns(win.t1) - epoch_ns(win.t0)) // (b.s * 1000000000) > 100000
             THEN error('the window spans more than 100000 steps of --bucket (at most 5m for slo): narrow it with --since and --until') ELSE true END)
),
counts AS (
    SELECT g.client, g.client_namespace, g.service, g.namespace, g.sli, g.basis, g.k, g.covered,
        count(e.step) FILTER (e.step > g.k - n.m5) AS e5, count(e.step) FILTER (e.bad AND e.step > g.k - n.m5) AS b5,
        count(e.step) FILTER (e.step > g.k - n.m30) AS e30, count(e.step) FILTER (e.bad AND e.step > g.k - n.m30) AS b30,
        count(e.step) FILTER (e.step > g.k - n.h1) AS e1, count(e.step) FILTER (e.bad AND e.step > g.k - n.h1) AS b1,
        count(e.step) AS e6, count(e.step) FILTER (e.bad) AS b6
    FROM grid g CROSS JOIN n
    LEFT JOIN events e ON e.client = g.client AND e.client_namespace = g.client_namespace AND e.service = g.service
        AND e.namespace = g.namespace AND e.sli = g.sli AND e.basis = g.basis AND e.step <= g.k AND e.step > g.k - n.h6
    GROUP BY ALL
),
burns AS (
    SELECT c.*, b5 / nullif(e5, 0) / (1 - o.objective / 100) AS r5, b30 / nullif(e30, 0) / (1 - o.objective / 100) AS r30,
        b1 / nullif(e1, 0) / (1 - o.objective / 100) AS r1, b6 / nullif(e6, 0) / (1 - o.objective / 100) AS r6
    FROM counts c, o
),
pages AS (
    SELECT client, client_namespace, service, namespace, sli, basis,
        min(k) FILTER (r1 > 14.4 AND r5 > 14.4 AND covered >= n.m5) AS fast,
        min(k) FILTER (r6 > 6 AND r30 > 6 AND covered >= n.m30) AS slow,
        max(r5) FILTER (covered >= n.m5) AS max5
    FROM burns, n
    GROUP BY ALL
),
totals AS (
    SELECT client, client_namespace, service, namespace, sli, basis, count(*) AS events, count(*) FILTER (bad) AS bad
    FROM events GROUP BY ALL
)
SELECT nullif(t.client, '') AS client, nullif(t.client_namespace, '') AS client_namespace, t.service, nullif(t.namespace, '') AS namespace,
    t.sli, t.basis, t.events, t.bad,
    round(100 * (1 - t.bad / t.events), 4) AS good_percent,
    o.objective,
    round((1 - o.objective / 100) * t.events, 1) AS budget,
    round(t.bad / ((1 - o.objective / 100) * t.events), 4) AS budget_burned,
    round(t.bad / ((1 - o.objective / 100) * t.events) * win.seconds / (30 * 86400), 6) AS budget_30d_burned,
    round(p.max5, 2) AS max_burn_5m,
    CASE WHEN p.fast IS NOT NULL THEN least(make_timestamp_ns((p.fast + 1) * b.s * 1000000000), win.t1) END AS page_1h_5m,
    CASE WHEN p.slow IS NOT NULL THEN least(make_timestamp_ns((p.slow + 1) * b.s * 1000000000), win.t1) END AS page_6h_30m
FROM totals t JOIN pages p USING (client, client_namespace, service, namespace, sli, basis), o, b, win
ORDER BY budget_burned DESC NULLS LAST, service, namespace, client, client_namespace, sli;
