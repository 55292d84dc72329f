-- errors: the failing calls, one row per edge and endpoint (method and path,
-- or gRPC method), worst first: requests, errors (5xx, and gRPC calls not
-- answered 200), client errors (4xx), requests never answered, and the
-- status codes of the failures. With SET VARIABLE errors_by = 'edge'
-- (--by edge), one row per edge, protocol and port (method and path NULL):
-- what sql/summary/errors.sql gives from the summaries.
--
-- Where no L7 proxy saw an edge, its TCP connections stand in (protocol
-- TCP, path NULL): requests are connection attempts, errors the failed
-- ones, and statuses say how they failed (reset, dropped, unanswered).
-- Only rows with at least one failure are listed.
WITH win AS (FROM ft_window()),
req AS (FROM ft_requests_in('win', ['client', 'client_namespace', 'server', 'server_namespace', 'protocol', 'server_port',
    'method', 'path', 'status', 'no_response', 'error', 'client_error'])),
l7 AS (
    SELECT
        client AS source, client_namespace AS source_namespace,
        server AS destination, server_namespace AS destination_namespace,
        protocol, server_port AS port,
        CASE WHEN ft_errors_by() = 'path' THEN method END AS method,
        CASE WHEN ft_errors_by() = 'path' THEN path END AS path,
        ft_requests(no_response) AS requests,
        ft_errors(error) AS errors,
        ft_client_errors(client_error) AS client_errors,
        ft_no_response(no_response) AS no_response,
        ft_counts(list(coalesce(status::VARCHAR, 'no_response')) FILTER (error OR client_error OR no_response)) AS statuses,
        min(time) FILTER (error OR client_error OR no_response) AS first_failure,
        max(time) FILTER (error OR client_error OR no_response) AS last_failure
    FROM req
    GROUP BY ALL
),
l7_edges AS (SELECT DISTINCT client, server FROM req),
l4 AS (
    SELECT
        c.source, c.source_namespace, c.destination, c.destination_namespace,
        'TCP' AS protocol, c.destination_port AS port, NULL AS method, NULL AS path,
        count(*) AS requests,
        ft_errors(failed) AS errors,
        0 AS client_errors, 0 AS no_response,
        ft_counts(list(CASE WHEN reset THEN 'reset' WHEN dropped THEN ft_drop_status(drop_reasons) WHEN unanswered THEN 'unanswered' END)) AS statuses,
        min(time) FILTER (failed) AS first_failure,
        max(time) FILTER (failed) AS last_failure
    FROM ft_connections_in('win', ['source', 'source_namespace', 'destination', 'destination_namespace', 'destination_port',
        'failed', 'reset', 'dropped', 'drop_reasons', 'unanswered']) c
    WHERE NOT EXISTS (SELECT 1 FROM l7_edges e WHERE e.client = c.source AND e.server = c.destination)
    GROUP BY ALL
)
SELECT *, ft_error_rate(errors, requests) AS error_rate
FROM (SELECT * FROM l7 UNION ALL BY NAME SELECT * FROM l4)
WHERE errors + client_errors + no_response > 0
  AND ft_in_namespace(source_namespace, destination_namespace)
ORDER BY errors + no_response DESC, client_errors DESC, requests DESC, source, destination, path,
    source_namespace NULLS FIRST, destination_namespace NULLS FIRST, port, protocol, method;
