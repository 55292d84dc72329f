-- slo over the summaries (sql/summary/views.sql): the columns and rows of
-- sql/analyses/slo.sql, its availability counts equal; the latency SLI's
-- bad events from the summaries' latency sketch (a latency within 1% of
-- the threshold may fall on either side). Steps are whole minutes. See
-- that file for what each column means.
WITH win AS (FROM ft_window()),
b AS (SELECT ft_bucket_seconds() * 1000000000 AS ns),
o AS (SELECT round(getvariable('slo_latency_ms')::DOUBLE * 1e6)::BIGINT AS threshold_ns),
req AS (
    SELECT time,
        CASE WHEN ft_level() = 'edge' THEN client ELSE '' END AS client,
        CASE WHEN ft_level() = 'edge' THEN coalesce(client_namespace, '') ELSE '' END AS client_namespace,
        server AS service, coalesce(server_namespace, '') AS namespace, requests, errors, no_response, lb, lc
    FROM ft_s_requests_in('win')
    WHERE ft_in_namespace(client_namespace, server_namespace)
),
ev AS (
    SELECT client, client_namespace, service, namespace, 'availability' AS sli, 'requests' AS basis,
        epoch_ns(time) // b.ns AS step, sum(requests + no_response) AS events, sum(errors + no_response) AS bad
    FROM req, b
    GROUP BY ALL
    UNION ALL
    SELECT client, client_namespace, service, namespace, 'latency' AS sli, 'requests' AS basis, step,
        sum(c) AS events, coalesce(sum(c) FILTER (ft_sketch_value(lb) > threshold_ns), 0) AS bad
    FROM (SELECT client, client_namespace, service, namespace, epoch_ns(time) // b.ns AS step, unnest(lb) AS lb, unnest(lc) AS c
          FROM req, b WHERE lb IS NOT NULL), o
    WHERE o.threshold_ns IS NOT NULL
    GROUP BY ALL
),
conn AS (
    SELECT CASE WHEN ft_level() = 'edge' THEN source ELSE '' END AS client,
        CASE WHEN ft_level() = 'edge' THEN coalesce(source_namespace, '') ELSE '' END AS client_namespace,
        destination AS service, coalesce(destination_namespace, '') AS namespace, 'availability' AS sli, 'connections' AS basis,
        epoch_ns(time) // b.ns AS step, sum(n) AS events, coalesce(sum(n) FILTER (dropped OR unanswered), 0) AS bad
    FROM ft_s_connections_in('win'), b
    WHERE judged AND ft_in_namespace(source_namespace, destination_namespace)
    GROUP BY ALL
)
FROM ft_slo('ev', 'conn', 'win')
ORDER BY budget_burned DESC NULLS LAST, service, namespace, client, client_namespace, sli;
