-- egress: traffic that leaves the cluster. A row per client workload,
-- destination, port, protocol and verdict: flows in both directions (as
-- edges turns replies back), connections opened (SYNs sent; a SYN right
-- after another of the same connection, a retransmit or another
-- observation point's, is the same one), and when the destination was
-- first and last seen in the window.
--
-- Leaving is a client inside the cluster talking to a server outside it
-- (ft_outside: the world identity, a CIDR/FQDN one or none, no pod) at an
-- address no flow of the recording places in a pod or on a node
-- (cluster_ips): Cilium gives an address it cannot place the world
-- identity, and a pod's own flows name it. Nor is a Kubernetes service
-- the client addressed (destination_service: a ClusterIP, which Hubble
-- places in the world, e.g. on socket load-balancing traces), or any
-- address a flow names a service's; nor multicast, broadcast or IPv6
-- link-local addresses (ft_local_only). Socket events (type SOCK) are
-- left out: they trace connect() calls whose packets the L3/L4 flows
-- show. The internet knocking on the cluster (a world client) is not
-- egress: drops shows what was denied.
--
-- The destination is named by the best the recording knows: the DNS name
-- on the flows (destination_names, from the agent's FQDN cache: named_by
-- flows), else the name the client's own DNS answers in the recording
-- gave the address (the latest: named_by dns), else another client's
-- (named_by other-dns: this client may never have looked it up, e.g. a
-- bare address that is also a CDN's), else the address (named_by
-- address). ips are the addresses behind the name.
--
-- Hubble flows carry no byte counts: flows and connections say how often,
-- not how much.
--
-- --new-since T keeps the destinations (by client, destination, port and
-- protocol) that no flow before T went to, in the whole recording: what
-- started talking to the outside since T. A T outside the recording is
-- an error: before it, every destination would be new; after it, none.
-- Only the window's flows (and with --new-since those before T) are read,
-- but for the addresses that place pods, nodes and services.
WITH win AS (FROM ft_window()),
new_since AS (
    SELECT CASE WHEN ft_new_since() IS NULL THEN NULL
        WHEN ft_new_since() <= min(time)
        THEN error('--new-since ' || ft_new_since() || ' is not after the recording''s first flow (' || min(time)
            || '): nothing comes before it to compare with, so every destination would be new')
        WHEN ft_new_since() > max(time)
        THEN error('--new-since ' || ft_new_since() || ' is after the recording''s last flow (' || max(time)
            || '): nothing comes after it (a relative time counts back from now, not from the recording''s end)')
        ELSE ft_new_since() END AS t
    FROM flows
),
-- the addresses the recording places inside the cluster: a pod's, a
-- node's (host, remote-node, health), a Kubernetes service's
cluster_ips AS (
    SELECT ip_source AS ip FROM flows
    WHERE ip_source IS NOT NULL AND (nullif(source_pod_name, '') IS NOT NULL
        OR getvariable('ft_reserved_identities')[source_identity] IN ('host', 'remote-node', 'health'))
    UNION
    SELECT ip_destination FROM flows
    WHERE ip_destination IS NOT NULL AND (nullif(destination_pod_name, '') IS NOT NULL
        OR getvariable('ft_reserved_identities')[destination_identity] IN ('host', 'remote-node', 'health')
        OR nullif(destination_service_name, '') IS NOT NULL AND NOT coalesce(is_reply, false))
),
-- opens: the flow is a SYN that opens a connection, as the connections
-- view counts them: one not right after another SYN of the same
-- addresses and ports (a retransmit, or the same SYN seen at another
-- observation point)
out AS (
    SELECT e.time, e.source, e.source_namespace, e.destination_ip, e.destination_port, e.l4_protocol, e.verdict,
        e.tcp_syn_only AND NOT coalesce(lag(e.tcp_syn_only) OVER (PARTITION BY e.source_ip, e.source_port, e.destination_ip, e.destination_port
            ORDER BY e.time, NOT e.tcp_syn_only), false) AS opens,
        nullif(rtrim(e.destination_names[1], '.'), '') AS flow_name
    FROM edges e, win w, new_since s
    WHERE (e.time BETWEEN w.t0 AND w.t1 OR e.time < s.t)
      AND ft_outside(e.destination_identity, e.destination_pod) AND NOT ft_outside(e.source_identity, e.source_pod)
      AND e.destination_service IS NULL AND e.type IS DISTINCT FROM 'SOCK'
      AND e.destination_ip IS NOT NULL AND NOT ft_local_only(e.destination_ip)
      AND NOT EXISTS (SELECT 1 FROM cluster_ips c WHERE c.ip = e.destination_ip)
      AND ft_in_namespace(e.source_namespace, NULL)
),
-- the latest name each client's DNS answers gave each address, and any
-- client's
answers AS (
    SELECT client, client_namespace, unnest(ips) AS ip, rtrim(query, '.') AS query, time FROM dns WHERE NOT error
),
by_client AS (
    SELECT client, client_namespace, ip, arg_max(query, time) AS query FROM answers GROUP BY ALL
),
by_ip AS (
    SELECT ip, arg_max(query, time) AS query FROM answers GROUP BY ip
),
-- a client's flows to an address, named: the name on any of its flows
-- names them all (the first flows may predate the FQDN cache's entry)
pairs AS (
    SELECT source, source_namespace, destination_ip, max(flow_name) AS flow_name
    FROM out GROUP BY ALL
),
named AS (
    SELECT p.source, p.source_namespace, p.destination_ip,
        coalesce(p.flow_name, c.query, a.query, p.destination_ip) AS destination,
        CASE WHEN p.flow_name IS NOT NULL THEN 'flows' WHEN c.query IS NOT NULL THEN 'dns' WHEN a.query IS NOT NULL THEN 'other-dns'
             ELSE 'address' END AS named_by
    FROM pairs p
    LEFT JOIN by_client c ON c.client = p.source AND c.client_namespace IS NOT DISTINCT FROM p.source_namespace AND c.ip = p.destination_ip
    LEFT JOIN by_ip a ON a.ip = p.destination_ip
),
flows_named AS (
    SELECT o.*, n.destination, n.named_by
    FROM out o JOIN named n ON n.source = o.source AND n.source_namespace IS NOT DISTINCT FROM o.source_namespace
        AND n.destination_ip = o.destination_ip
),
seen_before AS (
    SELECT DISTINCT source, source_namespace, destination, destination_port, l4_protocol
    FROM flows_named, new_since s
    WHERE time < s.t
)
SELECT
    f.source, f.source_namespace, f.destination,
    string_agg(DISTINCT f.destination_ip, ',' ORDER BY f.destination_ip) AS ips,
    f.destination_port AS port, f.l4_protocol AS protocol, f.verdict,
    count(*) AS flows,
    count(*) FILTER (f.opens) AS connections,
    min(f.time) AS first_seen, max(f.time) AS last_seen,
    -- the best evidence any of its addresses had
    arg_max(f.named_by, CASE f.named_by WHEN 'flows' THEN 3 WHEN 'dns' THEN 2 WHEN 'other-dns' THEN 1 ELSE 0 END) AS named_by
FROM flows_named f, win w, new_since s
WHERE f.time BETWEEN w.t0 AND w.t1
  AND (s.t IS NULL OR NOT EXISTS (
      SELECT 1 FROM seen_before b
      WHERE b.source = f.source AND b.source_namespace IS NOT DISTINCT FROM f.source_namespace AND b.destination = f.destination
        AND b.destination_port IS NOT DISTINCT FROM f.destination_port AND b.l4_protocol IS NOT DISTINCT FROM f.l4_protocol))
GROUP BY f.source, f.source_namespace, f.destination, f.destination_port, f.l4_protocol, f.verdict
ORDER BY f.source_namespace, f.source, f.destination, port, protocol, f.verdict;
