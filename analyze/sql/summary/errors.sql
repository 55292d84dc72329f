-- errors over the summaries (sql/summary/views.sql): the columns of
-- sql/analyses/errors.sql, one row per edge, protocol and port (method
-- and path NULL: the summaries keep no URL paths, which with IDs in them
-- would make a summary as large as the requests), its rows and counts
-- those of that file with SET VARIABLE errors_by = 'edge' (--by edge). See
-- that file for what each column means.
WITH win AS (FROM ft_window()),
req AS (
    SELECT client AS source, client_namespace AS source_namespace, server AS destination, server_namespace AS destination_namespace,
        protocol, port, requests, errors, client_errors, no_response, fs, fc, first_failure, last_failure
    FROM ft_s_requests_in('win')
),
l7_counts AS (
    SELECT source, source_namespace, destination, destination_namespace, protocol, port,
        sum(requests)::BIGINT AS requests, sum(errors)::BIGINT AS errors, sum(client_errors)::BIGINT AS client_errors,
        sum(no_response)::BIGINT AS no_response,
        min(first_failure) AS first_failure, max(last_failure) AS last_failure
    FROM req
    GROUP BY ALL
),
-- the statuses of the failures, counted (no_response where the proxy
-- reported none, as the exact path names them)
l7_statuses AS (
    SELECT source, source_namespace, destination, destination_namespace, protocol, port, ft_counts_of(status, n) AS statuses
    FROM (SELECT source, source_namespace, destination, destination_namespace, protocol, port,
              CASE WHEN s < 0 THEN 'no_response' ELSE s::VARCHAR END AS status, sum(c)::BIGINT AS n
          FROM (SELECT source, source_namespace, destination, destination_namespace, protocol, port, unnest(fs) AS s, unnest(fc) AS c
                FROM req WHERE fs IS NOT NULL)
          GROUP BY ALL)
    GROUP BY ALL
),
l7 AS (
    SELECT c.source, c.source_namespace, c.destination, c.destination_namespace, c.protocol, c.port,
        NULL::VARCHAR AS method, NULL::VARCHAR AS path,
        c.requests, c.errors, c.client_errors, c.no_response, s.statuses, c.first_failure, c.last_failure
    FROM l7_counts c
    LEFT JOIN l7_statuses s ON s.source IS NOT DISTINCT FROM c.source AND s.source_namespace IS NOT DISTINCT FROM c.source_namespace
        AND s.destination IS NOT DISTINCT FROM c.destination AND s.destination_namespace IS NOT DISTINCT FROM c.destination_namespace
        AND s.protocol IS NOT DISTINCT FROM c.protocol AND s.port IS NOT DISTINCT FROM c.port
),
l7_edges AS (SELECT DISTINCT source, destination FROM req),
-- the connections of the edges no L7 proxy saw, weighted; each with how it
-- failed
conns AS (
    SELECT source, source_namespace, destination, destination_namespace, destination_port AS port, failed,
        CASE WHEN reset THEN 'reset' WHEN dropped THEN ft_drop_status(drop_reasons) WHEN unanswered THEN 'unanswered' END AS status,
        t0, t1, n
    FROM ft_s_connections_in('win') c
    WHERE NOT EXISTS (SELECT 1 FROM l7_edges e WHERE e.source = c.source AND e.destination = c.destination)
),
l4_statuses AS (
    SELECT source, source_namespace, destination, destination_namespace, port, ft_counts_of(status, n) AS statuses
    FROM (SELECT source, source_namespace, destination, destination_namespace, port, status, sum(n)::BIGINT AS n
          FROM conns WHERE status IS NOT NULL GROUP BY ALL HAVING sum(n) > 0)
    GROUP BY ALL
),
-- the first and last failure: of the rows that still count once the
-- attempts taken back are (an attempt the summary counted unanswered and
-- the connections view, reading the next file, found answered: the same
-- SYN time, weights that cancel)
l4_times AS (
    SELECT source, source_namespace, destination, destination_namespace, port, min(t0) AS first_failure, max(t1) AS last_failure
    FROM (SELECT source, source_namespace, destination, destination_namespace, port, t0, t1
          FROM conns WHERE failed
          GROUP BY source, source_namespace, destination, destination_namespace, port, status, t0, t1 HAVING sum(n) > 0)
    GROUP BY ALL
),
l4 AS (
    SELECT c.source, c.source_namespace, c.destination, c.destination_namespace,
        'TCP' AS protocol, c.port, NULL AS method, NULL AS path,
        c.requests, c.errors, 0 AS client_errors, 0 AS no_response, s.statuses, t.first_failure, t.last_failure
    FROM (SELECT source, source_namespace, destination, destination_namespace, port,
              sum(n)::BIGINT AS requests, coalesce(sum(n) FILTER (failed), 0)::BIGINT AS errors
          FROM conns GROUP BY ALL) c
    LEFT JOIN l4_statuses s ON s.source IS NOT DISTINCT FROM c.source AND s.source_namespace IS NOT DISTINCT FROM c.source_namespace
        AND s.destination IS NOT DISTINCT FROM c.destination AND s.destination_namespace IS NOT DISTINCT FROM c.destination_namespace
        AND s.port IS NOT DISTINCT FROM c.port
    LEFT JOIN l4_times t ON t.source IS NOT DISTINCT FROM c.source AND t.source_namespace IS NOT DISTINCT FROM c.source_namespace
        AND t.destination IS NOT DISTINCT FROM c.destination AND t.destination_namespace IS NOT DISTINCT FROM c.destination_namespace
        AND t.port IS NOT DISTINCT FROM c.port
)
SELECT *, ft_error_rate(errors, requests) AS error_rate
FROM (SELECT * FROM l7 UNION ALL BY NAME SELECT * FROM l4)
WHERE errors + client_errors + no_response > 0
  AND ft_in_namespace(source_namespace, destination_namespace)
ORDER BY errors + no_response DESC, client_errors DESC, requests DESC, source, destination, path,
    source_namespace NULLS FIRST, destination_namespace NULLS FIRST, port, protocol, method;
