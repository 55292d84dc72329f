-- Macros the views and analyses share.

-- ft_name names an endpoint the way the analyses group by it: its workload,
-- else its app label, else its pod, else its reserved identity (world, host,
-- kube-apiserver, ...), else the DNS name its IP was resolved from, else the
-- IP. Reserved identities are named by number (Cilium's fixed numbering):
-- reading the identity's labels would cost more than the rest of a query.
CREATE OR REPLACE MACRO ft_name(workload, app, pod, identity, names, ip) AS coalesce(
    nullif(workload, ''),
    nullif(app, ''),
    nullif(pod, ''),
    CASE identity WHEN 1 THEN 'host' WHEN 2 THEN 'world' WHEN 3 THEN 'unmanaged' WHEN 4 THEN 'health'
        WHEN 5 THEN 'init' WHEN 6 THEN 'remote-node' WHEN 7 THEN 'kube-apiserver' WHEN 8 THEN 'ingress'
        WHEN 9 THEN 'world-ipv4' WHEN 10 THEN 'world-ipv6' END,
    nullif(rtrim(names[1], '.'), ''),
    ip);

-- ft_header returns the first value of an HTTP header, case-insensitively.
CREATE OR REPLACE MACRO ft_header(headers, name) AS
    list_filter(headers, h -> lower(h.key) = lower(name))[1].value;

-- ft_is_grpc tells gRPC calls (HTTP/2 POST to /package.Service/Method) from
-- other HTTP.
CREATE OR REPLACE MACRO ft_is_grpc(protocol, method, url, headers) AS
    coalesce(starts_with(ft_header(headers, 'content-type'), 'application/grpc'), false)
    OR (protocol = 'HTTP/2' AND method = 'POST'
        AND regexp_matches(url, '^[a-z]+://[^/]+/[A-Za-z0-9_.]+\.[A-Za-z0-9_]+/[A-Za-z0-9_]+$'));

-- ft_url_rest is a URL after its scheme (host, port and path), or the URL
-- when it has no scheme.
CREATE OR REPLACE MACRO ft_url_rest(url) AS
    CASE WHEN contains(url, '://') THEN substr(url, strpos(url, '://') + 3) ELSE url END;

-- ft_path is the path of a URL, without query string or fragment; the URL
-- itself when it has none. String functions, not a regular expression:
-- this runs once per request.
CREATE OR REPLACE MACRO ft_path(url) AS coalesce(nullif(split_part(split_part(
    CASE WHEN strpos(ft_url_rest(url), '/') > 0 THEN ft_url_rest(url)[strpos(ft_url_rest(url), '/'):] ELSE '' END,
    '?', 1), '#', 1), ''), url);

-- ft_level is the graph's level (SET VARIABLE level): a constant, so that a
-- join on it is planned away where it does not apply.
CREATE OR REPLACE MACRO ft_level() AS coalesce(getvariable('level')::VARCHAR, 'workload');

-- ft_node names a graph node at a level: workload (the endpoint's name),
-- service (the Kubernetes service it serves, where known) or pod.
CREATE OR REPLACE MACRO ft_node(level, name, pod, service) AS
    CASE level WHEN 'pod' THEN coalesce(nullif(pod, ''), name) WHEN 'service' THEN coalesce(service, name) ELSE name END;

-- ft_in_namespace: whether a row with these namespaces passes --namespace
-- (SET VARIABLE namespace; NULL passes everything).
CREATE OR REPLACE MACRO ft_in_namespace(a, b) AS
    getvariable('namespace')::VARCHAR IS NULL OR getvariable('namespace')::VARCHAR IN (a, b);

-- ft_health grades an error share by Kiali's default thresholds: >= 0.1%
-- degraded, >= 10% failure.
CREATE OR REPLACE MACRO ft_health(errors, total) AS
    CASE WHEN coalesce(total, 0) = 0 THEN 'unknown'
         WHEN errors / total >= 0.10 THEN 'failure'
         WHEN errors / total >= 0.001 THEN 'degraded'
         ELSE 'healthy' END;

-- ft_counts renders a list of names as "name=count,..." by count, then name.
CREATE OR REPLACE MACRO ft_counts(names) AS
    list_aggr(list_transform(
        list_sort(list_transform(map_entries(list_histogram(names)), e -> {n: -e.value, k: e.key})),
        e -> e.k || '=' || (-e.n)), 'string_agg', ',');
