-- timeline over the summaries (sql/summary/views.sql): the columns and
-- rows of sql/analyses/timeline.sql, its counts equal; p99_ms from the
-- summaries' latency sketch (within 1%). Buckets are whole minutes (hours
-- read the summaries' hour rows). See that file for what each column
-- means.
WITH win AS (FROM ft_window(with_losses := true)),
b AS (SELECT ft_bucket_seconds() * 1000000000 AS ns),
buckets AS (
    SELECT make_timestamp_ns(t) AS bucket
    FROM win, b, range(epoch_ns(win.t0) // b.ns * b.ns, epoch_ns(win.t1) + 1, b.ns) r(t)
    -- a months-long window in 1-minute buckets is a mistake, not a chart
    WHERE CASE WHEN (epoch_ns(win.t1) - epoch_ns(win.t0)) // b.ns > 100000
        THEN error('the window spans more than 100000 buckets: use a larger --bucket, or --since and --until') ELSE true END
),
-- flows by kind from the summaries' flows part (as the traffic view
-- shows it: a row's namespaces are its flows' either way round)
f AS (
    SELECT make_timestamp_ns(epoch_ns(t.bucket) // b.ns * b.ns) AS bucket,
        sum(flows)::BIGINT AS flows,
        coalesce(sum(flows) FILTER (verdict = 'DROPPED'), 0)::BIGINT AS drops,
        coalesce(sum(flows) FILTER (drop_reason_desc IN ('POLICY_DENIED', 'POLICY_DENY')), 0)::BIGINT AS policy_denies
    FROM ft_traffic_in('win') t, b
    WHERE ft_in_namespace(source_namespace, destination_namespace)
    GROUP BY ALL
),
req AS (
    SELECT make_timestamp_ns(epoch_ns(time) // b.ns * b.ns) AS bucket, requests, errors, no_response, lb, lc
    FROM ft_s_requests_in('win'), b
    WHERE ft_in_namespace(client_namespace, server_namespace)
),
r AS (
    SELECT bucket, sum(requests)::BIGINT AS requests, sum(errors)::BIGINT AS errors, sum(no_response)::BIGINT AS no_response
    FROM req
    GROUP BY ALL
),
latencies AS (SELECT bucket AS g, lb, lc FROM req),
p AS (SELECT g AS bucket, q[1] AS p99 FROM ft_sketch_quantiles('latencies', [0.99])),
c AS (
    SELECT make_timestamp_ns(epoch_ns(time) // b.ns * b.ns) AS bucket,
        coalesce(sum(n) FILTER (failed), 0)::BIGINT AS connection_failures
    FROM ft_s_connections_in('win'), b
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
ORDER BY bucket;
