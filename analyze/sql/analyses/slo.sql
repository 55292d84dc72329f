-- slo: service level objectives per service (per edge with --level edge):
-- how much of the error budget the window burned, and when the
-- multiwindow burn-rate alerts of Google's SRE workbook (chapter 5) would
-- first have paged.
--
-- A row per service and SLI:
--   availability  requests not failed: errors as in services (5xx, gRPC
--                 calls not answered OK) and requests never answered
--                 (services' no_response); where no L7 proxy saw the
--                 service, TCP connections neither dropped nor left
--                 unanswered, of those the recording can judge (see the
--                 connections view; as services' health, a reset is not
--                 a failure: many clients close connections so); basis
--                 says which. A connection a policy denied is dropped:
--                 a deny policy that cuts a caller off is an outage
--   latency       with --latency (SET VARIABLE slo_latency_ms): answered
--                 requests no slower than it
-- Over the summaries: sql/summary/slo.sql; on ClickHouse:
-- sql/clickhouse/analyses/slo.sql; both share sql/slo.sql's ft_slo.
-- objective is --objective (SET VARIABLE slo_objective, a percentage;
-- default 99.9). The error budget of the window is the bad events the
-- objective allows in it, (1 - objective) x events; budget_burned is bad
-- events over that (1 = all of it; also the window's burn rate), and
-- budget_30d_burned the share of a 30-day budget the window burned at its
-- own traffic.
-- Burn rates are the bad share over a window divided by 1 - objective,
-- evaluated at the end of every --bucket (default a minute) over the
-- recording's own data in the trailing window (a window longer than the
-- data reads what there is, as Prometheus' rate does at the start of a
-- series), once the data covers the short window. page_1h_5m is the first evaluation where the 1-hour and the
-- 5-minute burn rate both exceeded 14.4 (2% of a 30-day budget in an
-- hour), page_6h_30m where the 6-hour and 30-minute both exceeded 6 (5% in
-- six hours); NULL: it would not have paged. max_burn_5m is the highest
-- 5-minute burn rate once the data covers 5 minutes. Until the data
-- covers an hour (six hours), the long window holds what there is: a
-- service of a few requests a minute can page on one error then, as it
-- would in Prometheus over a series that just began.
-- --bucket must divide 5 minutes, so that every window is whole steps.
WITH win AS (FROM ft_window()),
b AS (SELECT ft_bucket_seconds() * 1000000000 AS ns),
-- the latency SLI's threshold in whole nanoseconds, as every engine
-- compares it
o AS (SELECT round(getvariable('slo_latency_ms')::DOUBLE * 1e6)::BIGINT AS threshold_ns),
req AS (
    SELECT time,
        CASE WHEN ft_level() = 'edge' THEN client ELSE '' END AS client,
        CASE WHEN ft_level() = 'edge' THEN coalesce(client_namespace, '') ELSE '' END AS client_namespace,
        server AS service, coalesce(server_namespace, '') AS namespace, no_response, error, latency_ns
    FROM ft_requests_in('win', ['client', 'client_namespace', 'server', 'server_namespace', 'no_response', 'error', 'latency_ns'])
    WHERE ft_in_namespace(client_namespace, server_namespace)
),
-- events by entity, SLI and step (the evaluation's --bucket)
ev AS (
    SELECT client, client_namespace, service, namespace, 'availability' AS sli, 'requests' AS basis,
        epoch_ns(time) // b.ns AS step, count(*) AS events, count(*) FILTER (error OR no_response) AS bad
    FROM req, b
    GROUP BY ALL
    UNION ALL
    SELECT client, client_namespace, service, namespace, 'latency' AS sli, 'requests' AS basis,
        epoch_ns(time) // b.ns AS step, count(*) AS events, count(*) FILTER (latency_ns > o.threshold_ns) AS bad
    FROM req, b, o
    WHERE o.threshold_ns IS NOT NULL AND latency_ns IS NOT NULL AND NOT no_response
    GROUP BY ALL
),
conn AS (
    SELECT CASE WHEN ft_level() = 'edge' THEN source ELSE '' END AS client,
        CASE WHEN ft_level() = 'edge' THEN coalesce(source_namespace, '') ELSE '' END AS client_namespace,
        destination AS service, coalesce(destination_namespace, '') AS namespace, 'availability' AS sli, 'connections' AS basis,
        epoch_ns(time) // b.ns AS step, count(*) AS events, ft_connections_lost(dropped, unanswered) AS bad
    FROM ft_connections_in('win', ['source', 'source_namespace', 'destination', 'destination_namespace', 'judged', 'dropped', 'unanswered']), b
    WHERE judged AND ft_in_namespace(source_namespace, destination_namespace)
    GROUP BY ALL
)
FROM ft_slo('ev', 'conn', 'win')
ORDER BY budget_burned DESC NULLS LAST, service, namespace, client, client_namespace, sli;
