-- Macros the views and analyses share.

-- ft_name names an endpoint the way the analyses group by it: its workload,
-- else its app label, else its pod, else its reserved identity (world, host,
-- kube-apiserver, ...), else the DNS name its IP was resolved from, else the IP.
CREATE OR REPLACE MACRO ft_name(workload, app, pod, labels, names, ip) AS coalesce(
    nullif(workload, ''),
    nullif(app, ''),
    nullif(pod, ''),
    replace(list_filter(labels, l -> starts_with(l, 'reserved:'))[1], 'reserved:', ''),
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

-- ft_path is the path of a URL, without query string.
CREATE OR REPLACE MACRO ft_path(url) AS
    coalesce(nullif(regexp_extract(url, '^[a-zA-Z]+://[^/]*(/[^?#]*)', 1), ''), url);
