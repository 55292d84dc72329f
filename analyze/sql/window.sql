-- Macros over the views, created after them.

-- ft_window is the analysed window: --since/--until (ft_since(),
-- ft_until()), else the recording's first and last flow; seconds is its
-- length, what rates divide by. A window that ends before it starts is an
-- error, not an empty result.
--
-- with_losses stretches it over lost events too: what coverage and the
-- timeline look at, so that losses after the last flow (a recorder cut off
-- for good) are not left out. Node status changes do not stretch it: a
-- recorder reports its own on its clock, which a simulation does not share.
CREATE OR REPLACE MACRO ft_window(with_losses := false) AS TABLE
    SELECT t0, t1,
        CASE WHEN t0 > t1 THEN error('the window is empty: it starts at ' || strftime(t0, '%Y-%m-%dT%H:%M:%S.%fZ')
                 || CASE WHEN ft_since() IS NULL THEN ' (the first flow)' ELSE ' (--since)' END
                 || ', after it ends at ' || strftime(t1, '%Y-%m-%dT%H:%M:%S.%fZ')
                 || CASE WHEN ft_until() IS NULL THEN ' (the last flow)' ELSE ' (--until)' END)
             ELSE greatest(epoch_ns(t1) - epoch_ns(t0), 1) / 1e9 END AS seconds
    FROM (SELECT coalesce(ft_since(), min(time)) AS t0,
                 coalesce(ft_until(), max(time)) AS t1
          -- the first and last flow, from the derived traffic table
          FROM (SELECT min(first_time) AS time FROM derived_traffic_all
                UNION ALL SELECT max(last_time) FROM derived_traffic_all
                UNION ALL SELECT time FROM events WHERE with_losses AND event = 'lost_events'));

-- ft_in_window is the rows of a view, table or CTE (rel, by name) in the
-- analysed window (win, by name: a CTE of ft_window()). An analysis
-- computes its window once and passes it to every use.
CREATE OR REPLACE MACRO ft_in_window(rel, win) AS TABLE
    SELECT r.* FROM query_table(rel) r, query_table(win) w
    WHERE r.time BETWEEN w.t0 AND w.t1;

-- ft_graph_nodes is rows of rel (by name: a view, table or CTE with
-- edges' endpoint columns source, source_namespace, source_pod,
-- destination, ..., destination_service) with the endpoints named as nodes
-- of the graph at ft_level(), and namespaces '' rather than NULL, so that
-- nodes without one (world, host) join with themselves. svc (by name) is
-- the Kubernetes service each workload serves (name, namespace, service):
-- a node at level service, for callers, and for callees where
-- destination_service is NULL. Other levels plan the joins away.
CREATE OR REPLACE MACRO ft_graph_nodes(rel, svc) AS TABLE
    SELECT e.* REPLACE (
        ft_node(ft_level(), e.source, e.source_pod, cs.service) AS source,
        coalesce(e.source_namespace, '') AS source_namespace,
        ft_node(ft_level(), e.destination, e.destination_pod, coalesce(e.destination_service, ss.service)) AS destination,
        coalesce(e.destination_namespace, '') AS destination_namespace)
    FROM query_table(rel) e
    LEFT JOIN query_table(svc) cs ON ft_level() = 'service' AND cs.name = e.source AND cs.namespace IS NOT DISTINCT FROM e.source_namespace
    LEFT JOIN query_table(svc) ss ON ft_level() = 'service' AND ss.name = e.destination AND ss.namespace IS NOT DISTINCT FROM e.destination_namespace;

-- ft_quantiles is quantile_disc(latency_ns, qs) of each group g of
-- latencies, as a list: the same values, found without sorting every
-- latency. rel (by name: a view, table or CTE) has columns g, b (the
-- latency_bucket) and l (the latencies of that group and bucket, a list;
-- a group and bucket may have several rows): an analysis collects them in
-- the pass that counts its requests, so that it reads them once. The
-- counts per latency_bucket (an order-preserving bucket, see
-- docs/schema.md) tell in which bucket the nearest-rank position of each
-- quantile falls (quantile_disc's: the smallest value with at least q of
-- the values at or below it); only the values of those buckets are sorted.
-- Each bucket's values are gathered with its count, so that no second
-- pass over rel picks them out: two aggregates, a window and a join
-- rather than five aggregates and three joins, each with its fixed cost
-- (DuckDB's quantile_disc itself took 60 ms over the 233k latencies of
-- 1M flows). The trade-off: every latency is copied once more (8 bytes
-- each), where only the chosen buckets' were. A bucket several quantiles
-- fall in is sorted once.
CREATE OR REPLACE MACRO ft_quantiles(rel, qs) AS TABLE
    WITH h AS (
        SELECT g, b, sum(len(l))::BIGINT AS c, flatten(list(l)) AS l FROM query_table(rel) WHERE len(l) > 0 GROUP BY ALL
    ),
    -- each bucket's position: the window sorts the counts alone (with
    -- the lists it took 10 ms of services' 250 over 1M flows)
    cum AS (
        SELECT g, b, c, sum(c) OVER (PARTITION BY g ORDER BY b ROWS UNBOUNDED PRECEDING)::BIGINT - c AS before,
            sum(c) OVER (PARTITION BY g)::BIGINT AS n
        FROM (SELECT g, b, c FROM h)
    ),
    -- the buckets the quantiles' 1-based positions k fall in, each with
    -- the positions in it, sorted once however many fall in it
    chosen AS (
        SELECT p.g, before, list_sort(h.l) AS s, ks
        FROM (SELECT g, b, before,
                list_filter(list_transform(range(1, len(qs) + 1), i -> {i: i, k: greatest(ceil(qs[i] * n), 1)::BIGINT}),
                    x -> x.k > before AND x.k <= before + c) AS ks
              FROM cum) p
        -- (a NULL group or bucket is one too, as GROUP BY and the window
        -- take it)
        JOIN h ON p.g IS NOT DISTINCT FROM h.g AND p.b IS NOT DISTINCT FROM h.b
        WHERE len(ks) > 0
    ),
    at_rank AS (
        SELECT g, x.i AS i, s[x.k - before] AS v FROM (SELECT g, before, s, unnest(ks) AS x FROM chosen)
    )
    SELECT g, list_transform(list_sort(list({i: i, v: v})), x -> x.v) AS q
    FROM at_rank
    GROUP BY g;
