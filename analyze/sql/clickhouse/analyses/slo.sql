-- slo: service level objectives per service (per edge with --level edge):
-- the error budget the window burned and when the SRE workbook's
-- multiwindow burn-rate alerts would first have paged (as
-- analyze/sql/analyses/slo.sql and analyze/sql/slo.sql). A trailing window
-- is read from cumulative sums over each entity's steps, as arrays.
WITH
req AS (
    SELECT r.time AS time,
        if(ft_level = 'edge', client, '') AS client,
        if(ft_level = 'edge', coalesce(client_namespace, ''), '') AS client_namespace,
        server AS service, coalesce(server_namespace, '') AS namespace, no_response, error, latency_ns
    FROM requests_counted r, time_window w
    WHERE r.time BETWEEN w.t0 AND w.t1 AND ft_in_namespace(client_namespace, server_namespace)
),
ev AS (
    SELECT client, client_namespace, service, namespace, 'availability' AS sli, 'requests' AS basis,
        ft_step(time) AS step, toInt64(count()) AS events, toInt64(countIf(error OR no_response)) AS bad
    FROM req
    GROUP BY client, client_namespace, service, namespace, step
    UNION ALL
    SELECT client, client_namespace, service, namespace, 'latency' AS sli, 'requests' AS basis,
        ft_step(time) AS step, toInt64(count()) AS events, toInt64(countIf(latency_ns > ft_slo_latency_ms * 1e6)) AS bad
    FROM req
    WHERE ft_slo_latency_ms IS NOT NULL AND latency_ns IS NOT NULL AND NOT no_response
    GROUP BY client, client_namespace, service, namespace, step
),
conn AS (
    SELECT if(ft_level = 'edge', source, '') AS client,
        if(ft_level = 'edge', coalesce(source_namespace, ''), '') AS client_namespace,
        destination AS service, coalesce(destination_namespace, '') AS namespace, 'availability' AS sli, 'connections' AS basis,
        ft_step(c.time) AS step, toInt64(count()) AS events, toInt64(countIf(dropped OR unanswered)) AS bad
    FROM connections c, time_window w
    WHERE c.time BETWEEN w.t0 AND w.t1 AND judged AND ft_in_namespace(source_namespace, destination_namespace)
    GROUP BY client, client_namespace, service, namespace, step
),
counted AS (
    SELECT * FROM ev
    UNION ALL
    SELECT * FROM conn
    WHERE (client, client_namespace, service, namespace) NOT IN (SELECT client, client_namespace, service, namespace FROM ev)
),
steps AS (
    SELECT arrayJoin(range(ft_step(w.t0), ft_step(w.t1) + 1)) AS step FROM time_window w
    -- as the timeline's buckets: months in 1-minute steps are a mistake
    WHERE throwIf(intDiv(toUnixTimestamp64Nano(w.t1) - toUnixTimestamp64Nano(w.t0), ft_bucket_seconds * 1000000000) > 100000,
                  'the window spans more than 100000 steps: use a larger --bucket, or --since and --until') = 0
),
entities AS (SELECT DISTINCT client, client_namespace, service, namespace, sli, basis FROM counted),
series AS (
    SELECT en.client AS client, en.client_namespace AS client_namespace, en.service AS service, en.namespace AS namespace,
        en.sli AS sli, en.basis AS basis, s.step AS step, coalesce(e.events, 0) AS events, coalesce(e.bad, 0) AS bad
    FROM entities en CROSS JOIN steps s
    LEFT JOIN counted e ON e.client = en.client AND e.client_namespace = en.client_namespace AND e.service = en.service
        AND e.namespace = en.namespace AND e.sli = en.sli AND e.basis = en.basis AND e.step = s.step
),
-- each entity's steps in order, and cumulative counts over them
arrays AS (
    SELECT client, client_namespace, service, namespace, sli, basis,
        arraySort(groupArray((step, events, bad))) AS s,
        arrayCumSum(arrayMap(x -> x.2, s)) AS ce, arrayCumSum(arrayMap(x -> x.3, s)) AS cb,
        arrayEnumerate(s) AS i,
        toInt64(sum(events)) AS events, toInt64(sum(bad)) AS bad
    FROM series
    GROUP BY client, client_namespace, service, namespace, sli, basis
),
burn AS (
    SELECT *,
        ft_trailing(ce, cb, ft_slo_steps(300)) AS b5, ft_trailing(ce, cb, ft_slo_steps(1800)) AS b30,
        ft_trailing(ce, cb, ft_slo_steps(3600)) AS b1h, ft_trailing(ce, cb, ft_slo_steps(21600)) AS b6h,
        arrayFirstIndex(k -> coalesce(b1h[k] > 14.4 AND b5[k] > 14.4, false) AND k >= ft_slo_steps(300), i) AS fast,
        arrayFirstIndex(k -> coalesce(b6h[k] > 6 AND b30[k] > 6, false) AND k >= ft_slo_steps(1800), i) AS slow
    FROM arrays
)
SELECT
    nullIf(b.client, '') AS client, nullIf(b.client_namespace, '') AS client_namespace,
    b.service AS service, nullIf(b.namespace, '') AS namespace, b.sli AS sli, b.basis AS basis, b.events AS events, b.bad AS bad,
    ft_round(100 * (1 - b.bad / nullIf(b.events, 0)), 4) AS good_percent,
    ft_slo_objective AS objective,
    ft_round((1 - ft_slo_objective / 100) * b.events, 1) AS budget,
    ft_round(b.bad / nullIf((1 - ft_slo_objective / 100) * b.events, 0), 4) AS budget_burned,
    ft_round(b.bad / nullIf((1 - ft_slo_objective / 100) * b.events, 0) * w.seconds / (30 * 86400), 6) AS budget_30d_burned,
    ft_round(arrayMax(arrayFilter(x -> x IS NOT NULL, b.b5)), 2) AS max_burn_5m,
    if(b.fast > 0, least(fromUnixTimestamp64Nano((b.s[b.fast].1 + 1) * ft_bucket_seconds * 1000000000, 'UTC'), w.t1), NULL) AS page_1h_5m,
    if(b.slow > 0, least(fromUnixTimestamp64Nano((b.s[b.slow].1 + 1) * ft_bucket_seconds * 1000000000, 'UTC'), w.t1), NULL) AS page_6h_30m
FROM burn b, time_window w
ORDER BY budget_burned DESC NULLS LAST, service, namespace, client, client_namespace, sli
