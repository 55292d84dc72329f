-- dns: one row per DNS answer the DNS proxy saw, from the asking client's
-- point of view. Pods are named as the pods view names them.
SELECT
    time, node_name,
    coalesce(rd.name, destination_endpoint) AS client,
    destination_namespace AS client_namespace, destination_pod_name AS client_pod,
    coalesce(rs.name, source_endpoint) AS server,
    trimRight(dns_query, '.') AS query,
    dns_qtypes AS qtypes,
    dns_rcode AS rcode,
    multiIf(dns_rcode = 0, 'NOERROR', dns_rcode = 1, 'FORMERR', dns_rcode = 2, 'SERVFAIL', dns_rcode = 3, 'NXDOMAIN',
        dns_rcode = 4, 'NOTIMP', dns_rcode = 5, 'REFUSED', concat('RCODE', toString(dns_rcode))) AS rcode_name,
    dns_rcode <> 0 AS error,
    dns_ips AS ips, dns_ttl AS ttl, uuid
FROM flows f
LEFT JOIN pod_renames rs ON isNotDistinctFrom(rs.namespace, f.source_namespace) AND rs.pod = f.source_pod_name
LEFT JOIN pod_renames rd ON isNotDistinctFrom(rd.namespace, f.destination_namespace) AND rd.pod = f.destination_pod_name
WHERE type = 'L7' AND dns_rcode IS NOT NULL AND l7_type = 'RESPONSE'
