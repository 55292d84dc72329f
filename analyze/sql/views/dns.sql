-- dns: one row per DNS answer the DNS proxy saw, from the asking client's
-- point of view (Hubble reports answers from the server to the client).
-- Pods are named as the pods view names them.
CREATE OR REPLACE VIEW dns AS
SELECT
    time, node_name,
    coalesce(rd.name, destination_endpoint) AS client,
    destination_namespace AS client_namespace, destination_pod_name AS client_pod,
    coalesce(rs.name, source_endpoint) AS server,
    rtrim(dns_query, '.') AS query,
    dns_qtypes AS qtypes,
    dns_rcode AS rcode,
    CASE dns_rcode WHEN 0 THEN 'NOERROR' WHEN 1 THEN 'FORMERR' WHEN 2 THEN 'SERVFAIL' WHEN 3 THEN 'NXDOMAIN'
        WHEN 4 THEN 'NOTIMP' WHEN 5 THEN 'REFUSED' ELSE 'RCODE' || dns_rcode END AS rcode_name,
    dns_rcode <> 0 AS error,
    dns_ips AS ips, dns_ttl AS ttl, uuid
FROM flows f
LEFT JOIN pod_renames rs ON getvariable('ft_pods_renamed') AND rs.namespace IS NOT DISTINCT FROM f.source_namespace AND rs.pod = f.source_pod_name
LEFT JOIN pod_renames rd ON getvariable('ft_pods_renamed') AND rd.namespace IS NOT DISTINCT FROM f.destination_namespace AND rd.pod = f.destination_pod_name
WHERE type = 'L7' AND dns_rcode IS NOT NULL AND l7_type = 'RESPONSE';
