-- The summary path: what services, graph and timeline read over windows
-- too long to read every request and connection (analyze/summary.go
-- decides when, and says so). The engine then defines:
--   derived_traffic      as the summary's flows part (the traffic table's
--                        counts without the pods of endpoints named by their
--                        workload) of the window: every view of flows
--                        counts reads it;
--   derived_traffic_all  as the hour rows of that part, of every file and
--                        rollup: the whole recording, for what the views
--                        learn from outside the window (its end, replies);
--   derived_connections  as only the connections the summary could not
--                        settle: all rows of the connections that have a row
--                        which does not open its attempt (it continues one of
--                        another file, or its writer could not tell), but for
--                        rows that change nothing the summary counted of an
--                        attempt whose opening row is here (unchanged; for
--                        errors, also adding no drop reason);
--   ft_unsettled_only    true: the requests view gives only the rows the
--                        summary leaves out (open requests, client rows
--                        whose file could not tell whether a server proxy
--                        saw them), pairing them with every file's rows.
-- Counts are then those of the exact path, summed; latency percentiles
-- come from the summary's sketch, within 1% (docs/schema.md, summary).
-- Windows are whole minutes: the summary counts by minute.

-- ft_sketch_bucket and ft_sketch_value are the sketch's bucket of a
-- latency and the latency a bucket stands for (schema/summary.go).
CREATE OR REPLACE MACRO ft_sketch_bucket(ns) AS
    ceil(ln(ns) / ln(getvariable('ft_sketch_gamma')::DOUBLE))::INTEGER;
CREATE OR REPLACE MACRO ft_sketch_value(b) AS
    2 * pow(getvariable('ft_sketch_gamma')::DOUBLE, b) / (getvariable('ft_sketch_gamma')::DOUBLE + 1);

-- ft_in_minutes: whether a summary row of the minute starting at bucket
-- counts in the analysed window t0 to t1: the minutes it overlaps (the
-- window is whole minutes); hour rows (grain) are only those of hours it
-- covers whole (ft_summary_rows).
CREATE OR REPLACE MACRO ft_in_minutes(bucket, grain, t0, t1) AS
    grain = 'hour' OR (bucket <= t1 AND bucket + INTERVAL 1 MINUTE > t0);

-- ft_s_requests_in: the requests counted (the reporter rule of
-- requests_counted) in the window, weighted: the summary's rows (requests,
-- errors, client_errors; lb and lc their latency sketch; fs and fc the
-- statuses of the failed ones, -1 for none, and their counts; first_failure
-- and last_failure) and the rows it left out, each a request. Endpoints
-- renamed as the views name pods.
CREATE OR REPLACE MACRO ft_s_requests_in(win) AS TABLE
WITH s AS (
    SELECT s.bucket AS time,
        coalesce(rc.name, s.source) AS client, s.source_namespace AS client_namespace, s.source_pod AS client_pod,
        coalesce(rs.name, s.destination) AS server, s.destination_namespace AS server_namespace, s.destination_pod AS server_pod,
        s.protocol, s.destination_port AS port, s.requests::BIGINT AS requests, s.errors::BIGINT AS errors, s.client_errors::BIGINT AS client_errors,
        0::BIGINT AS no_response, s.max_latency_ns, s.latency_buckets AS lb, s.latency_counts AS lc,
        s.failure_statuses AS fs, s.failure_counts AS fc, s.first_failure, s.last_failure, s.grain
    FROM ft_summary_rows(p := 'requests') s
    LEFT JOIN pod_renames rc ON getvariable('ft_pods_renamed') AND rc.namespace IS NOT DISTINCT FROM s.source_namespace AND rc.pod = s.source_pod
    LEFT JOIN pod_renames rs ON getvariable('ft_pods_renamed') AND rs.namespace IS NOT DISTINCT FROM s.destination_namespace AND rs.pod = s.destination_pod
    WHERE CASE ft_reporter()
        WHEN 'server' THEN s.reporter = 'server' OR NOT s.seen_by_server
        WHEN 'client' THEN s.reporter = 'client'
        ELSE true END
),
u AS (
    SELECT time, client, client_namespace, client_pod, server, server_namespace, server_pod, protocol, server_port AS port,
        (NOT no_response)::BIGINT AS requests, error::BIGINT AS errors, client_error::BIGINT AS client_errors,
        no_response::BIGINT AS no_response, latency_ns AS max_latency_ns,
        CASE WHEN latency_ns > 0 THEN [ft_sketch_bucket(latency_ns)] END AS lb,
        CASE WHEN latency_ns > 0 THEN [1::UBIGINT] END AS lc,
        CASE WHEN f THEN [coalesce(status::INTEGER, -1)] END AS fs, CASE WHEN f THEN [1::UBIGINT] END AS fc,
        CASE WHEN f THEN time END AS first_failure, CASE WHEN f THEN time END AS last_failure, 'minute' AS grain
    FROM (SELECT *, error OR client_error OR no_response AS f
          FROM ft_requests_counted(['time', 'client', 'client_namespace', 'client_pod', 'server', 'server_namespace', 'server_pod',
              'protocol', 'server_port', 'status', 'no_response', 'error', 'client_error', 'latency_ns']))
)
-- (the window first: the macro is bound when called, see ft_bound_at_call)
SELECT s.* EXCLUDE (grain) FROM query_table(win) w, s WHERE ft_in_minutes(s.time, s.grain, w.t0, w.t1)
UNION ALL
SELECT u.* EXCLUDE (grain) FROM query_table(win) w, u WHERE u.time BETWEEN w.t0 AND w.t1;

-- ft_s_connections_in: the connections in the window, weighted (n), with
-- the columns of the connections view the analyses read: the summary's
-- attempts; taken back, those of the connections derived_connections
-- holds (which the summary counted from their opening rows); and those
-- connections as the connections view judges them. t0 and t1 are the
-- first and last SYN of a row's attempts (its time, for one attempt).
CREATE OR REPLACE MACRO ft_s_connections_in(win) AS TABLE
WITH reverse AS (
    SELECT DISTINCT node_name, source, destination FROM ft_traffic_of('derived_traffic_all')
    WHERE l4_protocol = 'TCP' AND type = 'L3_L4' AND is_reply
),
opened AS (
    SELECT bucket, grain, syn_time, node_name, source, source_namespace, source_pod, destination, destination_namespace, destination_pod,
        destination_service, destination_port, answered, reset, dropped, drop_reasons, first_time AS t0, last_time AS t1, connections::BIGINT AS n
    FROM ft_summary_rows(p := 'connections')
    UNION ALL
    SELECT make_timestamp_ns(epoch_ns(syn_time) // 60000000000 * 60000000000), 'minute', syn_time, node_name, source, source_namespace, source_pod,
        destination, destination_namespace, destination_pod, destination_service, destination_port, answered, reset, dropped, drop_reasons,
        syn_time, syn_time, -1
    FROM derived_connections WHERE opens
),
named AS (
    SELECT o.* EXCLUDE (source, destination, syn_time, grain, drop_reasons), coalesce(o.syn_time, o.bucket) AS time,
        -- as the connections view gives them for an attempt of one row
        CASE WHEN o.drop_reasons IS NOT NULL THEN ft_counts(o.drop_reasons) END AS drop_reasons,
        coalesce(rs.name, coalesce(o.source, '(unknown)')) AS source, coalesce(rd.name, coalesce(o.destination, '(unknown)')) AS destination
    -- the window first: the macro is bound when called (see
    -- ft_bound_at_call); the joins' ON read o alone, so the order keeps
    -- the rows
    FROM query_table(win) w
    CROSS JOIN opened o
    LEFT JOIN pod_renames rs ON getvariable('ft_pods_renamed') AND rs.namespace IS NOT DISTINCT FROM o.source_namespace AND rs.pod = o.source_pod
    LEFT JOIN pod_renames rd ON getvariable('ft_pods_renamed') AND rd.namespace IS NOT DISTINCT FROM o.destination_namespace AND rd.pod = o.destination_pod
    WHERE ft_in_minutes(o.bucket, o.grain, w.t0, w.t1)
),
-- judged as the connections view judges
judged AS (
    SELECT *, NOT answered AND NOT dropped AND judged
            AND time < (SELECT max(last_time) - INTERVAL 1 SECOND FROM derived_traffic_all) AS unanswered
    FROM (SELECT *,
              answered OR reset OR dropped
                  OR (NOT getvariable('ft_filtered_capture')
                      AND coalesce(node_name IN (SELECT node_name FROM reverse WHERE node_name IS NOT NULL), false))
                  OR coalesce((source, destination) IN (SELECT (source, destination) FROM reverse), false) AS judged
          FROM named)
)
SELECT time, source, source_namespace, source_pod, destination, destination_namespace, destination_pod, destination_service,
    destination_port, reset, dropped, drop_reasons, unanswered, judged, reset OR dropped OR unanswered AS failed, t0, t1, n
FROM judged
UNION ALL
SELECT time, source, source_namespace, source_pod, destination, destination_namespace, destination_pod, destination_service,
    destination_port, reset, dropped, drop_reasons, unanswered, judged, failed, time, time, 1
FROM ft_connections_in(win, ['source', 'source_namespace', 'source_pod', 'destination', 'destination_namespace', 'destination_pod',
    'destination_service', 'destination_port', 'reset', 'dropped', 'drop_reasons', 'unanswered', 'judged', 'failed']);

-- ft_sketch_quantiles is, for each group g of rel (by name: columns g, lb
-- and lc, a latency sketch's buckets and counts), the value of the
-- bucket in which each quantile of qs falls, by nearest rank (the
-- smallest bucket with at least q of the latencies at or below it): as
-- quantile_disc, within the sketch's relative error.
CREATE OR REPLACE MACRO ft_sketch_quantiles(rel, qs) AS TABLE
    WITH h AS (
        SELECT g, b, sum(c) AS c
        FROM (SELECT g, unnest(lb) AS b, unnest(lc) AS c FROM query_table(rel) WHERE lb IS NOT NULL)
        GROUP BY ALL
    ),
    cum AS (
        SELECT g, b, sum(c) OVER (PARTITION BY g ORDER BY b ROWS UNBOUNDED PRECEDING) AS upto, sum(c) OVER (PARTITION BY g) AS n
        FROM h
    ),
    pos AS (
        SELECT g, i, greatest(ceil(qs[i] * n), 1) AS k
        FROM (SELECT DISTINCT g, n FROM cum), range(1, len(qs) + 1) r(i)
    ),
    found AS (
        SELECT pos.g, pos.i, min(cum.b) AS b
        FROM pos JOIN cum ON cum.g IS NOT DISTINCT FROM pos.g AND cum.upto >= pos.k
        GROUP BY ALL
    )
    SELECT g, list(ft_sketch_value(b) ORDER BY i) AS q FROM found GROUP BY g;
