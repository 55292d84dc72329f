-- timeline: the recording in time buckets of ft_bucket_seconds() (SET
-- VARIABLE bucket, in seconds; default a minute): flows, requests (counted
-- once, as in services), errors, error rate, p99 latency, requests never
-- answered, drops, policy denies, failed TCP connections and events lost. Every bucket of the window is
-- listed, empty ones too (but for one that starts at the window's last instant: see
-- the end). Requests fall in the bucket of their response.
WITH win AS (FROM ft_window(with_losses := true)),
b AS (SELECT ft_bucket_seconds() * 1000000000 AS ns),
buckets AS (
    SELECT make_timestamp_ns(t) AS bucket
    FROM win, b, range(epoch_ns(win.t0) // b.ns * b.ns, epoch_ns(win.t1) + 1, b.ns) r(t)
    -- a months-long window in 1-minute buckets is a mistake, not a chart
    WHERE CASE WHEN (epoch_ns(win.t1) - epoch_ns(win.t0)) // b.ns > 100000
        THEN error('the window spans more than 100000 buckets: use a larger --bucket, or --since and --until') ELSE true END
),
f AS (
    SELECT make_timestamp_ns(epoch_ns(time) // b.ns * b.ns) AS bucket,
        count(*) AS flows,
        count(*) FILTER (verdict = 'DROPPED') AS drops,
        count(*) FILTER (drop_reason_desc IN ('POLICY_DENIED', 'POLICY_DENY')) AS policy_denies
    FROM ft_in_window('flows', 'win'), b
    WHERE ft_in_namespace(source_namespace, destination_namespace)
    GROUP BY ALL
),
-- requests counted by time bucket and latency bucket, with their
-- latencies: what the counts and the percentiles read
req AS (
    SELECT make_timestamp_ns(epoch_ns(time) // b.ns * b.ns) AS bucket, latency_bucket AS lb,
        ft_requests(no_response) AS requests,
        ft_errors(error) AS errors,
        ft_no_response(no_response) AS no_response,
        list(latency_ns) FILTER (latency_ns IS NOT NULL) AS l
    FROM ft_requests_in('win', ['client_namespace', 'server_namespace', 'no_response', 'error', 'latency_ns', 'latency_bucket']), b
    WHERE ft_in_namespace(client_namespace, server_namespace)
    GROUP BY ALL
),
r AS (
    SELECT bucket, sum(requests)::BIGINT AS requests, sum(errors)::BIGINT AS errors, sum(no_response)::BIGINT AS no_response
    FROM req
    GROUP BY ALL
),
latencies AS (SELECT bucket AS g, lb AS b, l FROM req),
p AS (SELECT g AS bucket, q[1] AS p99 FROM ft_quantiles('latencies', [0.99])),
c AS (
    SELECT make_timestamp_ns(epoch_ns(time) // b.ns * b.ns) AS bucket,
        ft_errors(failed) AS connection_failures
    FROM ft_connections_in('win', ['source_namespace', 'destination_namespace', 'failed']), b
    WHERE ft_in_namespace(source_namespace, destination_namespace)
    GROUP BY ALL
),
l AS (
    SELECT make_timestamp_ns(epoch_ns(time) // b.ns * b.ns) AS bucket,
        sum(num_events_lost)::BIGINT AS lost_events
    FROM ft_in_window('events', 'win'), b
    WHERE event = 'lost_events'
    GROUP BY ALL
)
SELECT
    bucket,
    coalesce(f.flows, 0) AS flows,
    coalesce(r.requests, 0) AS requests,
    coalesce(r.errors, 0) AS errors,
    ft_error_rate(r.errors, r.requests) AS error_rate,
    p.p99 / 1e6 AS p99_ms,
    coalesce(r.no_response, 0) AS no_response,
    coalesce(f.drops, 0) AS drops,
    coalesce(f.policy_denies, 0) AS policy_denies,
    coalesce(c.connection_failures, 0) AS connection_failures,
    coalesce(l.lost_events, 0) AS lost_events
FROM buckets
LEFT JOIN f USING (bucket)
LEFT JOIN r USING (bucket)
LEFT JOIN p USING (bucket)
LEFT JOIN c USING (bucket)
LEFT JOIN l USING (bucket)
-- a bucket that starts at the window's end holds only its last instant
-- (an --until on a bucket's start): listed only where something fell in it
WHERE bucket < (SELECT t1 FROM win) OR coalesce(f.flows, 0) + coalesce(r.requests, 0) + coalesce(r.no_response, 0)
    + coalesce(c.connection_failures, 0) + coalesce(l.lost_events, 0) > 0
ORDER BY bucket;
