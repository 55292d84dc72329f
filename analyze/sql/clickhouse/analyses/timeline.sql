-- timeline: the recording in time buckets of --bucket (default a minute):
-- flows, requests, errors, error rate, p99 latency, requests never
-- answered, drops, policy denies, failed TCP connections and events lost,
-- every bucket of the window listed (as analyze/sql/analyses/timeline.sql).
WITH
buckets AS (
    SELECT fromUnixTimestamp64Nano(t, 'UTC') AS bucket
    FROM (SELECT arrayJoin(range(intDiv(toUnixTimestamp64Nano(w.t0), ft_bucket_seconds * 1000000000) * (ft_bucket_seconds * 1000000000),
                                 toUnixTimestamp64Nano(w.t1) + 1, ft_bucket_seconds * 1000000000)) AS t
          FROM time_window_losses w
          -- a months-long window in 1-minute buckets is a mistake, not a chart
          WHERE throwIf(intDiv(toUnixTimestamp64Nano(w.t1) - toUnixTimestamp64Nano(w.t0), ft_bucket_seconds * 1000000000) > 100000,
                        'the window spans more than 100000 buckets: use a larger --bucket, or --since and --until') = 0)
),
f AS (
    SELECT ft_bucket(time, ft_bucket_seconds) AS fb,
        toInt64(count()) AS flows,
        toInt64(countIf(verdict = 'DROPPED')) AS drops,
        toInt64(countIf(drop_reason_desc IN ('POLICY_DENIED', 'POLICY_DENY'))) AS policy_denies
    FROM flows f, time_window_losses w
    WHERE f.time BETWEEN w.t0 AND w.t1 AND ft_in_namespace(source_namespace, destination_namespace)
    GROUP BY fb
),
r AS (
    SELECT ft_bucket(time, ft_bucket_seconds) AS rb,
        toInt64(countIf(NOT no_response)) AS requests,
        toInt64(countIf(error)) AS errors,
        toInt64(countIf(no_response)) AS no_response,
        ft_quantiles(arraySort(groupArrayIf(latency_ns, latency_ns IS NOT NULL)), [0.99])[1] AS p99
    FROM requests_counted r, time_window_losses w
    WHERE r.time BETWEEN w.t0 AND w.t1 AND ft_in_namespace(client_namespace, server_namespace)
    GROUP BY rb
),
c AS (
    SELECT ft_bucket(time, ft_bucket_seconds) AS cb, toInt64(countIf(failed)) AS connection_failures
    FROM connections c, time_window_losses w
    WHERE c.time BETWEEN w.t0 AND w.t1 AND ft_in_namespace(source_namespace, destination_namespace)
    GROUP BY cb
),
l AS (
    SELECT ft_bucket(time, ft_bucket_seconds) AS lb, toInt64(sum(num_events_lost)) AS lost_events
    FROM events e, time_window_losses w
    WHERE e.time BETWEEN w.t0 AND w.t1 AND event = 'lost_events'
    GROUP BY lb
)
SELECT
    bk.bucket AS bucket,
    coalesce(f.flows, 0) AS flows,
    coalesce(r.requests, 0) AS requests,
    coalesce(r.errors, 0) AS errors,
    ft_error_rate(r.errors, r.requests) AS error_rate,
    r.p99 / 1e6 AS p99_ms,
    coalesce(r.no_response, 0) AS no_response,
    coalesce(f.drops, 0) AS drops,
    coalesce(f.policy_denies, 0) AS policy_denies,
    coalesce(c.connection_failures, 0) AS connection_failures,
    coalesce(l.lost_events, 0) AS lost_events
FROM buckets bk
LEFT JOIN f ON f.fb = bk.bucket
LEFT JOIN r ON r.rb = bk.bucket
LEFT JOIN c ON c.cb = bk.bucket
LEFT JOIN l ON l.lb = bk.bucket
-- a bucket that starts at the window's end holds only its last instant
-- (an --until on a bucket's start): listed only where something fell in it
WHERE bk.bucket < (SELECT t1 FROM time_window_losses) OR coalesce(f.flows, 0) + coalesce(r.requests, 0) + coalesce(r.no_response, 0)
    + coalesce(c.connection_failures, 0) + coalesce(l.lost_events, 0) > 0
ORDER BY bucket
