-- egress: traffic that leaves the cluster. A row per client workload,
-- destination, port, protocol and verdict: flows in both directions (as
-- edges turns replies back), connections opened (SYNs sent), and when the
-- destination was first and last seen in the window.
--
-- Leaving is a client inside the cluster talking to a server outside it
-- (ft_outside: the world identity, a CIDR/FQDN one or none, no pod) at an
-- address no flow of the recording places in a pod or on a node
-- (cluster_ips): Cilium gives an address it cannot place the world
-- identity, and a pod's own flows name it. The internet knocking on the
-- cluster (a world client) is not egress: drops shows what was denied.
--
-- The destination is named by the best the recording knows: the DNS name
-- on the flows (destination_names, from the agent's FQDN cache: named_by
-- flows), else the name a DNS answer in the recording gave the address
-- (the client's own answers first, the latest: named_by dns), else the
-- address (named_by address). ips are the addresses behind the name.
--
-- Hubble flows carry no byte counts: flows and connections say how often,
-- not how much.
--
-- --new-since T keeps the destinations (by client, destination, port and
-- protocol) that no flow before T went to, in the whole recording: what
-- started talking to the outside since T.
WITH win AS (FROM ft_window()),
new_since AS (
    SELECT CASE WHEN ft_new_since() IS NOT NULL AND ft_new_since() <= min(time)
        THEN error('--new-since ' || ft_new_since() || ' is not after the recording''s first flow (' || min(time)
            || '): nothing comes before it to compare with, so every destination would be new')
        ELSE ft_new_since() END AS t
    FROM flows
),
-- the addresses the recording places inside the cluster: a pod's, or a
-- node's (host, remote-node, health)
cluster_ips AS (
    SELECT ip_source AS ip FROM flows
    WHERE nullif(source_pod_name, '') IS NOT NULL OR getvariable('ft_reserved_identities')[source_identity] IN ('host', 'remote-node', 'health')
    UNION
    SELECT ip_destination FROM flows
    WHERE nullif(destination_pod_name, '') IS NOT NULL OR getvariable('ft_reserved_identities')[destination_identity] IN ('host', 'remote-node', 'health')
),
out AS (
    SELECT time, source, source_namespace, destination_ip, destination_port, l4_protocol, verdict, tcp_syn_only,
        nullif(rtrim(destination_names[1], '.'), '') AS flow_name
    FROM edges
    WHERE ft_outside(destination_identity, destination_pod) AND NOT ft_outside(source_identity, source_pod)
      AND destination_ip IS NOT NULL AND destination_ip NOT IN (FROM cluster_ips)
      AND ft_in_namespace(source_namespace, NULL)
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
        CASE WHEN p.flow_name IS NOT NULL THEN 'flows' WHEN coalesce(c.query, a.query) IS NOT NULL THEN 'dns' ELSE 'address' END AS named_by
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
    WHERE s.t IS NOT NULL AND time < s.t
)
SELECT
    f.source, f.source_namespace, f.destination,
    string_agg(DISTINCT f.destination_ip, ',' ORDER BY f.destination_ip) AS ips,
    f.destination_port AS port, f.l4_protocol AS protocol, f.verdict,
    count(*) AS flows,
    count(*) FILTER (f.tcp_syn_only) AS connections,
    min(f.time) AS first_seen, max(f.time) AS last_seen,
    -- the best evidence any of its addresses had: flows > dns > address
    max(f.named_by) AS named_by
FROM flows_named f, win w, new_since s
WHERE f.time BETWEEN w.t0 AND w.t1
  AND (s.t IS NULL OR NOT EXISTS (
      SELECT 1 FROM seen_before b
      WHERE b.source = f.source AND b.source_namespace IS NOT DISTINCT FROM f.source_namespace AND b.destination = f.destination
        AND b.destination_port IS NOT DISTINCT FROM f.destination_port AND b.l4_protocol IS NOT DISTINCT FROM f.l4_protocol))
GROUP BY f.source, f.source_namespace, f.destination, f.destination_port, f.l4_protocol, f.verdict
ORDER BY f.source_namespace, f.source, f.destination, port, protocol, f.verdict;
