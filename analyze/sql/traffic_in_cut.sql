-- ft_traffic_in is the rows of the traffic view in the analysed window
-- (win, by name: a CTE of ft_window()): those whose flows all lie in it,
-- and for the minutes the window cuts (--since or --until inside a minute
-- of flows), the flows of those minutes inside the window, from the edges
-- view, each a row of its own: so that sums over the rows count exactly
-- the flows of the window. So too for the minutes more than one recording
-- session counted of one node (the same flows recorded twice count once in
-- the flows view, by uuid; a flow is its node's, so per-node recorders'
-- sessions never record one twice): getvariable('ft_sessions_overlap').
CREATE OR REPLACE MACRO ft_traffic_in(win) AS TABLE
    WITH w AS (FROM query_table(win)),
    cut AS (
        SELECT DISTINCT bucket FROM traffic, w
        WHERE first_time <= w.t1 AND last_time >= w.t0 AND (first_time < w.t0 OR last_time > w.t1)
        UNION
        SELECT bucket FROM traffic WHERE getvariable('ft_sessions_overlap')
        GROUP BY bucket, node_name HAVING count(DISTINCT session) > 1
    )
    -- (the window first: the macro is bound when called, see ft_bound_at_call)
    SELECT t.* EXCLUDE (session) FROM w, traffic t
    WHERE t.first_time >= w.t0 AND t.last_time <= w.t1 AND t.bucket NOT IN (SELECT bucket FROM cut)
    UNION ALL BY NAME
    SELECT
        make_timestamp_ns(epoch_ns(time) // 60000000000 * 60000000000) AS bucket, node_name, type, l7_protocol, l7_type, verdict, drop_reason_desc, drop_reason, l4_protocol,
        source, source_namespace, source_pod, destination, destination_namespace, destination_pod,
        destination_port, destination_service, is_reply,
        1::BIGINT AS flows, tcp_rst::BIGINT AS tcp_resets, dns_error::BIGINT AS dns_errors,
        CASE WHEN l7_protocol IS NOT NULL THEN l7_latency_ns END AS max_latency_ns,
        flow_source, flow_source_namespace, flow_destination, flow_destination_namespace,
        time AS first_time, time AS last_time
    FROM edges e, w
    WHERE e.time BETWEEN w.t0 AND w.t1
        AND make_timestamp_ns(epoch_ns(time) // 60000000000 * 60000000000) IN (SELECT bucket FROM cut);
