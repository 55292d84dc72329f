-- errors: the failing calls, one row per edge and endpoint (method and
-- path, or gRPC method), worst first; where no L7 proxy saw an edge, its
-- TCP connections stand in (as analyze/sql/analyses/errors.sql).
WITH
req AS (
    SELECT client, client_namespace, server, server_namespace, protocol, server_port,
        -- --by edge: one row per edge, protocol and port
        if(ft_errors_by = 'path', r.method, NULL) AS method, if(ft_errors_by = 'path', r.path, NULL) AS path, status,
        no_response, error, client_error, time
    FROM requests_in r
),
l7 AS (
    SELECT
        client AS source, client_namespace AS source_namespace,
        server AS destination, server_namespace AS destination_namespace,
        protocol, server_port AS port, method, path,
        toInt64(countIf(NOT no_response)) AS requests,
        toInt64(countIf(error)) AS errors,
        toInt64(countIf(client_error)) AS client_errors,
        toInt64(countIf(no_response)) AS no_response,
        ft_counts(groupArrayIf(coalesce(toString(status), 'no_response'), error OR client_error OR no_response)) AS statuses,
        minIf(time, error OR client_error OR no_response) AS first_failure,
        maxIf(time, error OR client_error OR no_response) AS last_failure
    FROM req
    GROUP BY source, source_namespace, destination, destination_namespace, protocol, port, method, path
),
l4 AS (
    SELECT
        c.source AS source, c.source_namespace AS source_namespace, c.destination AS destination, c.destination_namespace AS destination_namespace,
        'TCP' AS protocol, c.destination_port AS port, CAST(NULL AS Nullable(String)) AS method, CAST(NULL AS Nullable(String)) AS path,
        toInt64(count()) AS requests,
        toInt64(countIf(failed)) AS errors,
        toInt64(0) AS client_errors, toInt64(0) AS no_response,
        ft_counts(groupArray(multiIf(reset, 'reset', dropped, ft_drop_status(drop_reasons), unanswered, 'unanswered', NULL))) AS statuses,
        minIf(time, failed) AS first_failure,
        maxIf(time, failed) AS last_failure
    FROM connections_in c
    WHERE (c.source, c.destination) NOT IN (SELECT DISTINCT client, server FROM req WHERE client IS NOT NULL AND server IS NOT NULL)
    GROUP BY source, source_namespace, destination, destination_namespace, port
)
SELECT *, ft_error_rate(errors, requests) AS error_rate
FROM (SELECT source, source_namespace, destination, destination_namespace, protocol, port, method, path, requests, errors,
          client_errors, no_response, statuses, first_failure, last_failure FROM l7
      UNION ALL
      SELECT source, source_namespace, destination, destination_namespace, protocol, port, method, path, requests, errors,
          client_errors, no_response, statuses, first_failure, last_failure FROM l4)
WHERE errors + client_errors + no_response > 0
  AND ft_in_namespace(source_namespace, destination_namespace)
ORDER BY errors + no_response DESC, client_errors DESC, requests DESC, source, destination, path,
    source_namespace NULLS FIRST, destination_namespace NULLS FIRST, port, protocol, method
