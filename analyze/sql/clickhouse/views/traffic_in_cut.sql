-- traffic_in (traffic_in_cut.sql): the rows of traffic whose flows all
-- lie in the window, and for the minutes the window cuts (--since or
-- --until inside a minute of flows) or more than one recording session
-- counted of one node, the flows of those minutes inside the window, from the edges
-- view, each a row of its own: sums over the rows count exactly the flows
-- of the window, each flow once.
SELECT * FROM (
    SELECT t.* EXCEPT (session) FROM traffic t, time_window w
    WHERE t.first_time >= w.t0 AND t.last_time <= w.t1 AND t.bucket NOT IN (
        SELECT tc.bucket FROM traffic tc, time_window w2
        WHERE tc.first_time <= w2.t1 AND tc.last_time >= w2.t0 AND (tc.first_time < w2.t0 OR tc.last_time > w2.t1)
        UNION DISTINCT
        SELECT ts.bucket FROM traffic ts GROUP BY ts.bucket, ts.node_name HAVING uniqExact(ts.session) > 1)
    UNION ALL
    SELECT
        ft_minute(time) AS bucket, node_name, type, l7_protocol, l7_type, verdict, drop_reason_desc, drop_reason, l4_protocol,
        source, source_namespace, source_pod, destination, destination_namespace, destination_pod,
        destination_port, destination_service, is_reply,
        toInt64(1) AS flows, toInt64(tcp_rst) AS tcp_resets, toInt64(dns_error) AS dns_errors,
        if(l7_protocol IS NOT NULL, l7_latency_ns, NULL) AS max_latency_ns,
        flow_source, flow_source_namespace, flow_destination, flow_destination_namespace,
        time AS first_time, time AS last_time
    FROM edges e, time_window w
    WHERE e.time BETWEEN w.t0 AND w.t1 AND ft_minute(e.time) IN (
        SELECT tc.bucket FROM traffic tc, time_window w2
        WHERE tc.first_time <= w2.t1 AND tc.last_time >= w2.t0 AND (tc.first_time < w2.t0 OR tc.last_time > w2.t1)
        UNION DISTINCT
        SELECT ts.bucket FROM traffic ts GROUP BY ts.bucket, ts.node_name HAVING uniqExact(ts.session) > 1)
)
