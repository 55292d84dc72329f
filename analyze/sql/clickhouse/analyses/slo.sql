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
    FROM requests_in r
    WHERE ft_in_namespace(client_namespace, server_namespace)
),
-- requests by entity and step, both SLIs in one pass (ClickHouse
-- computes a WITH entry again wherever it is read)
rq AS (
    SELECT client, client_namespace, service, namespace, ft_step(time) AS step,
        toInt64(count()) AS n, toInt64(countIf(error OR no_response)) AS nbad,
        toInt64(countIf(latency_ns IS NOT NULL AND NOT no_response)) AS ln,
        toInt64(countIf(latency_ns IS NOT NULL AND NOT no_response AND latency_ns > toInt64(round(ft_slo_latency_ms * 1e6)))) AS lbad
    FROM req
    GROUP BY client, client_namespace, service, namespace, step
),
conn AS (
    SELECT if(ft_level = 'edge', source, '') AS client,
        if(ft_level = 'edge', coalesce(source_namespace, ''), '') AS client_namespace,
        destination AS service, coalesce(destination_namespace, '') AS namespace, 'availability' AS sli, 'connections' AS basis,
        ft_step(c.time) AS step, toInt64(count()) AS events, toInt64(countIf(dropped OR unanswered)) AS bad
    FROM connections_in c
    WHERE judged AND ft_in_namespace(source_namespace, destination_namespace)
    GROUP BY client, client_namespace, service, namespace, step
),
counted AS (
    SELECT client, client_namespace, service, namespace, x.1 AS sli, 'requests' AS basis, step, x.2 AS events, x.3 AS bad
    FROM rq
    ARRAY JOIN if(ft_slo_latency_ms IS NULL, [('availability', n, nbad)], [('availability', n, nbad), ('latency', ln, lbad)]) AS x
    UNION ALL
    SELECT * FROM conn
),
-- each entity's steps, every step of the window, and cumulative counts
-- over them; an entity of no event (a latency SLI of no answered
-- request) is none; connections judge the entities no L7 proxy reported
-- requests of
arrays AS (
    SELECT client, client_namespace, service, namespace, sli, basis,
        range(any(ft_step(w.t0)), any(ft_step(w.t1)) + 1) AS st,
        -- the steps before the window's first flow (a --since before the
        -- recording): they hold no events because nothing was recorded,
        -- and cover nothing (see analyze/sql/slo.sql)
        coalesce(ft_step((SELECT min(greatest(d.first_time, tw.t0)) FROM derived_traffic AS d, time_window AS tw WHERE d.last_time >= tw.t0))
            - any(ft_step(w.t0)), 0) AS before,
        mapFromArrays(groupArray(step), groupArray(events)) AS me, mapFromArrays(groupArray(step), groupArray(bad)) AS mb,
        arrayCumSum(arrayMap(k -> me[k], st)) AS ce, arrayCumSum(arrayMap(k -> mb[k], st)) AS cb,
        arrayEnumerate(st) AS i,
        toInt64(sum(events)) AS total, toInt64(sum(bad)) AS total_bad,
        max(basis = 'requests') OVER (PARTITION BY client, client_namespace, service, namespace) AS has_requests
    FROM counted, time_window w
    -- as the timeline's buckets: months in 1-minute steps are a mistake
    WHERE throwIf(intDiv(toUnixTimestamp64Nano(w.t1) - toUnixTimestamp64Nano(w.t0), ft_bucket_seconds * 1000000000) > 100000,
                  'the window spans more than 100000 steps of --bucket (at most 5m for slo): narrow it with --since and --until') = 0
    GROUP BY client, client_namespace, service, namespace, sli, basis
    HAVING total > 0
),
burn AS (
    SELECT *,
        ft_trailing(ce, cb, ft_slo_steps(300)) AS b5, ft_trailing(ce, cb, ft_slo_steps(1800)) AS b30,
        ft_trailing(ce, cb, ft_slo_steps(3600)) AS b1h, ft_trailing(ce, cb, ft_slo_steps(21600)) AS b6h,
        arrayFirstIndex(k -> coalesce(b1h[k] > 14.4 AND b5[k] > 14.4, false) AND k - before >= ft_slo_steps(300), i) AS fast,
        arrayFirstIndex(k -> coalesce(b6h[k] > 6 AND b30[k] > 6, false) AND k - before >= ft_slo_steps(1800), i) AS slow,
        -- the 5-minute burn rates once the data covers 5 minutes
        arrayFilter((x, k) -> x IS NOT NULL AND k - before >= ft_slo_steps(300), b5, i) AS covered5
    FROM arrays
    WHERE basis = 'requests' OR NOT has_requests
)
SELECT
    nullIf(b.client, '') AS client, nullIf(b.client_namespace, '') AS client_namespace,
    b.service AS service, nullIf(b.namespace, '') AS namespace, b.sli AS sli, b.basis AS basis, b.total AS events, b.total_bad AS bad,
    ft_round(100 * (1 - b.total_bad / nullIf(b.total, 0)), 4) AS good_percent,
    ft_slo_objective AS objective,
    ft_round((1 - ft_slo_objective / 100) * b.total, 1) AS budget,
    ft_round(b.total_bad / nullIf((1 - ft_slo_objective / 100) * b.total, 0), 4) AS budget_burned,
    ft_round(b.total_bad / nullIf((1 - ft_slo_objective / 100) * b.total, 0) * w.seconds / (30 * 86400), 6) AS budget_30d_burned,
    ft_round(if(empty(b.covered5), NULL, arrayMax(b.covered5)), 2) AS max_burn_5m,
    if(b.fast > 0, least(fromUnixTimestamp64Nano((b.st[b.fast] + 1) * ft_bucket_seconds * 1000000000, 'UTC'), w.t1), NULL) AS page_1h_5m,
    if(b.slow > 0, least(fromUnixTimestamp64Nano((b.st[b.slow] + 1) * ft_bucket_seconds * 1000000000, 'UTC'), w.t1), NULL) AS page_6h_30m
FROM burn b, time_window w
ORDER BY budget_burned DESC NULLS LAST, service, namespace, client, client_namespace, sli
