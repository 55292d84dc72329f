-- dns: DNS answers by client and query, failures first, with the response
-- codes (as analyze/sql/analyses/dns.sql).
SELECT
    client, client_namespace, query,
    arrayStringConcat(arraySort(arrayDistinct(arrayFlatten(groupArray(qtypes)))), ',') AS qtypes,
    toInt64(count()) AS answers,
    toInt64(countIf(error)) AS errors,
    ft_error_rate(countIf(error), count()) AS error_rate,
    ft_counts(groupArray(rcode_name)) AS rcodes,
    ft_join(groupArray(server)) AS servers,
    minIf(time, error) AS first_error,
    maxIf(time, error) AS last_error
FROM dns d, time_window w
WHERE d.time BETWEEN w.t0 AND w.t1 AND ft_in_namespace(client_namespace, NULL)
GROUP BY client, client_namespace, query
ORDER BY errors DESC, answers DESC, client, query
