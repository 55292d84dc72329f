-- dns: DNS answers by client and query, failures first, with the response
-- codes. errors are answers other than NOERROR; NXDOMAIN answers for the
-- search path (name.namespace.svc.cluster.local. before name.) are normal
-- with Kubernetes' ndots:5 and show here as errors of the expanded name.
WITH win AS (FROM ft_window())
SELECT
    client, client_namespace, query,
    array_to_string(list_sort(list_distinct(flatten(list(qtypes)))), ',') AS qtypes,
    count(*) AS answers,
    ft_errors(error) AS errors,
    ft_error_rate(ft_errors(error), count(*)) AS error_rate,
    ft_counts(list(rcode_name)) AS rcodes,
    string_agg(DISTINCT server, ',' ORDER BY server) AS servers,
    min(time) FILTER (error) AS first_error,
    max(time) FILTER (error) AS last_error
FROM ft_in_window('dns', 'win')
WHERE ft_in_namespace(client_namespace, NULL)
GROUP BY client, client_namespace, query
ORDER BY errors DESC, answers DESC, client, query;
