-- connections: one row per TCP connection attempt (a SYN), from whatever
-- L3/L4 flows of it were recorded; what L4-only recordings (GKE Dataplane
-- V2, no L7 proxy) say about health.
--
-- A connection is its client and server address and port, from a SYN to
-- the next SYN that follows other packets (a port used again). It failed
-- when it was reset (RST either way), when a packet of it was dropped, or
-- when no SYN-ACK came back (nor any other packet after the SYN); a SYN in
-- the last second of the recording may still be answered, and is not
-- counted as unanswered. A SYN redirected to the L7 proxy (verdict
-- REDIRECTED) is answered by the proxy.
--
-- Unanswered is judged on evidence only: judged is false where the
-- recording holds no packet of the other direction, neither of this client
-- and server nor on the node that saw the SYN (a capture filtered by
-- verdict or --from-pod, policy-verdict events only): there an unanswered
-- SYN cannot be told from an answer that was not recorded, and the
-- connection is neither answered nor failed (health unknown). A recording
-- made with filters (ft_filtered_capture, from its manifest: --from-pod
-- keeps a pod's replies to its clients and drops its servers' replies to
-- it) is judged by the replies of the same client and server only.
--
-- The flows of an attempt were gathered when they were written, within
-- each file (the derived connections table, see docs/schema.md): this
-- view joins the rows of an attempt across files, in time order (a row
-- whose first flow is a SYN after another row that did not end with one
-- opens the next attempt), and judges them. Where two recording sessions
-- recorded the same flows, their rows of an attempt count once when they
-- are alike; cut otherwise (one session's file ended in the attempt),
-- flows and drop_reasons count the flows of both.

-- ft_attempt_row(rel) is the rows of rel (by name: rows of
-- derived_connections) each an attempt of its own, as
-- ft_connections_judged reads attempts.
CREATE OR REPLACE MACRO ft_attempt_row(rel) AS TABLE
    SELECT syn_time AS time, last_time,
        {sip: source_ip, sport: source_port, dip: destination_ip, dport: destination_port} AS t,
        {s: coalesce(source, '(unknown)'), d: coalesce(destination, '(unknown)')} AS e,
        node_name, source_namespace, source_pod, destination_namespace, destination_pod, destination_service,
        answered, reset, dropped,
        CASE WHEN drop_reasons IS NOT NULL THEN ft_counts(drop_reasons) END AS drop_reasons,
        flows::BIGINT AS flows
    FROM query_table(rel);

-- ft_connections_judged(g, cols) is the columns cols of the attempts g
-- (by name: a relation of ft_attempt_row's columns) as the view gives
-- them: the endpoints named as the pods view names them, and judged.
CREATE OR REPLACE MACRO ft_connections_judged(g, cols) AS TABLE
WITH reverse AS (
    SELECT DISTINCT node_name, source, destination FROM ft_traffic_of('derived_traffic_all')
    WHERE l4_protocol = 'TCP' AND type = 'L3_L4' AND is_reply
),
c AS (
    SELECT time, last_time, node_name, t.sip AS source_ip, t.sport AS source_port, t.dip AS destination_ip, t.dport AS destination_port,
        coalesce(rs.name, e.s) AS source, source_namespace, source_pod,
        coalesce(rd.name, e.d) AS destination, destination_namespace, destination_pod,
        destination_service, answered, reset, dropped, drop_reasons, flows
    FROM query_table(g) g
    LEFT JOIN pod_renames rs ON getvariable('ft_pods_renamed') AND rs.namespace IS NOT DISTINCT FROM g.source_namespace AND rs.pod = g.source_pod
    LEFT JOIN pod_renames rd ON getvariable('ft_pods_renamed') AND rd.namespace IS NOT DISTINCT FROM g.destination_namespace AND rd.pod = g.destination_pod
),
conn_rows AS NOT MATERIALIZED (SELECT *, reset OR dropped OR unanswered AS failed
FROM (SELECT *, NOT answered AND NOT dropped AND judged
                AND time < (SELECT max(last_time) - INTERVAL 1 SECOND FROM derived_traffic_all) AS unanswered
      FROM (SELECT c.*,
                answered OR reset OR dropped
                    OR (NOT getvariable('ft_filtered_capture')
                        AND coalesce(node_name IN (SELECT node_name FROM reverse WHERE node_name IS NOT NULL), false))
                    OR coalesce((source, destination) IN (SELECT (source, destination) FROM reverse), false) AS judged
            FROM c)))
-- (ft_bound_at_call first: the macro is bound when called, see macros.sql)
SELECT r.* FROM ft_bound_at_call(cols), (SELECT COLUMNS(col -> cols IS NULL OR list_contains(cols, col)) FROM conn_rows) r;

-- ft_connections(cols) is its columns cols (NULL: all), which an analysis
-- names: DuckDB computes no column of it that is not asked for (without
-- the list it computes every aggregate below the judging, twice the time
-- of services' use). A report's materialized table replaces it (see
-- analyze/materialize.go). Where every row of derived_connections is an
-- attempt of its own, the engine defines it as connections_single.sql
-- does instead, which gives the same rows (analyze/connections.go).
CREATE OR REPLACE MACRO ft_connections(cols) AS TABLE
-- The writer names each row's attempt (attempt: carried from file to
-- file within a session), so most connections' rows are grouped by it.
-- Where it could not tell (a file derived on its own, a connection it had
-- forgotten), the connection's rows are put in time order: a row that
-- starts after every row before it has ended opens an attempt when its
-- first flow is a SYN and the row before it that ended last did not end
-- with one. Rows that overlap in time (flows that came late, two sessions
-- that recorded the same flows) hold interleaved flows, and open none.
-- Rows are keyed by connection_key, a hash of their addresses and ports:
-- cheaper to sort and group by than the four columns.
WITH keyed AS NOT MATERIALIZED (
    SELECT * RENAME (connection_key AS k) FROM derived_connections
),
unsure AS (
    SELECT DISTINCT k FROM keyed WHERE attempt IS NULL
),
-- The windows sort only the columns they need (sorting whole rows costs
-- more than joining them with their attempt after), and run (not framed)
-- windows, which DuckDB computes in one pass.
ran AS (
    SELECT k, first_time, last_time, first_syn_only,
        max(last_time) OVER w AS ended, arg_max(last_syn_only, last_time) OVER w AS ended_syn_only
    FROM keyed SEMI JOIN unsure USING (k)
    WINDOW w AS (PARTITION BY k ORDER BY first_time, last_time ROWS UNBOUNDED PRECEDING)
),
opening AS (
    SELECT k, first_time, last_time,
        coalesce(first_time >= lag(ended) OVER w, true) AND first_syn_only AND NOT coalesce(lag(ended_syn_only) OVER w, false) AS opens
    FROM ran
    WINDOW w AS (PARTITION BY k ORDER BY first_time, last_time)
),
-- rows of the same times are in one attempt: one attempt per key and
-- times (the sum over peers, RANGE framing, counts the opens of all)
numbered AS (
    SELECT DISTINCT k, first_time, last_time,
        sum(opens::INTEGER) OVER (PARTITION BY k ORDER BY first_time, last_time RANGE UNBOUNDED PRECEDING)::BIGINT AS n
    FROM opening
),
-- every row of an unsure connection is numbered, and no other: one read
-- of the rows for both kinds (each read of keyed reads the files again)
attempts AS (
    SELECT r.* EXCLUDE (k, attempt, n), n IS NULL AS sure, CASE WHEN n IS NULL THEN attempt ELSE (hash(k, n) >> 1)::BIGINT END AS grp
    FROM (SELECT r.*, n.n FROM keyed r LEFT JOIN numbered n USING (k, first_time, last_time)) r
    WHERE n IS NULL OR n > 0
),
-- Most attempts are one row (a connection within one file); those take
-- their row's own values, as the aggregates below would give them, which
-- cost about 2 µs per attempt (arg_min of strings): over 1M flows in one
-- file, 45 of this view's 61 ms before (16 ms after).
multi AS (
    SELECT sure, grp FROM attempts GROUP BY ALL HAVING count(*) > 1
),
alone AS (
    FROM attempts ANTI JOIN multi USING (sure, grp)
),
single AS (
    FROM ft_attempt_row('alone')
),
-- the endpoints as the attempt's first row names them; each of node,
-- namespaces and pods from the first row that has one: the first row's,
-- in one arg_min (one per column cost 0.06 s each over 10M flows), and
-- where it lacks one that another row has (rare), that column's first
multi_first AS (
    SELECT sure, grp,
        min(syn_time) AS time,
        max(last_time) AS last_time,
        any_value({sip: source_ip, sport: source_port, dip: destination_ip, dport: destination_port}) AS t,
        arg_min({e: {s: coalesce(source, '(unknown)'), d: coalesce(destination, '(unknown)')}, node_name: node_name,
            source_namespace: source_namespace, source_pod: source_pod,
            destination_namespace: destination_namespace, destination_pod: destination_pod}, first_time) AS f,
        count(node_name) AS n_node, count(source_namespace) AS n_sns, count(source_pod) AS n_spod,
        count(destination_namespace) AS n_dns, count(destination_pod) AS n_dpod,
        any_value(destination_service) AS destination_service,
        bool_or(answered) AS answered,
        bool_or(reset) AS reset,
        bool_or(dropped) AS dropped,
        sum(flows)::BIGINT AS flows
    FROM attempts SEMI JOIN multi USING (sure, grp)
    GROUP BY sure, grp
),
multi_later AS (
    SELECT sure, grp,
        arg_min(node_name, first_time) AS node_name,
        arg_min(source_namespace, first_time) AS source_namespace,
        arg_min(source_pod, first_time) AS source_pod,
        arg_min(destination_namespace, first_time) AS destination_namespace,
        arg_min(destination_pod, first_time) AS destination_pod
    FROM attempts
    SEMI JOIN (SELECT sure, grp FROM multi_first
               WHERE (f.node_name IS NULL AND n_node > 0) OR (f.source_namespace IS NULL AND n_sns > 0) OR (f.source_pod IS NULL AND n_spod > 0)
                   OR (f.destination_namespace IS NULL AND n_dns > 0) OR (f.destination_pod IS NULL AND n_dpod > 0)) USING (sure, grp)
    GROUP BY sure, grp
),
multi_rows AS (
    SELECT m.time, m.last_time, m.t, m.f.e AS e,
        coalesce(m.f.node_name, l.node_name) AS node_name,
        coalesce(m.f.source_namespace, l.source_namespace) AS source_namespace,
        coalesce(m.f.source_pod, l.source_pod) AS source_pod,
        coalesce(m.f.destination_namespace, l.destination_namespace) AS destination_namespace,
        coalesce(m.f.destination_pod, l.destination_pod) AS destination_pod,
        m.destination_service, m.answered, m.reset, m.dropped,
        NULL::VARCHAR AS drop_reasons,
        m.flows, sure, grp
    FROM multi_first m LEFT JOIN multi_later l USING (sure, grp)
),
-- the drop reasons of attempts of several rows, counted from their
-- elements: a list of the rows' lists cost 0.19 s of the aggregate's
-- 0.53 over 10M flows (counted so, 0.06)
multi_drops AS (
    SELECT sure, grp, ft_counts_list(list({n: n, k: reason})) AS drop_reasons
    FROM (SELECT sure, grp, reason, count(*) AS n
          FROM (SELECT sure, grp, unnest(drop_reasons) AS reason FROM attempts SEMI JOIN multi USING (sure, grp) WHERE drop_reasons IS NOT NULL)
          GROUP BY ALL)
    GROUP BY ALL
),
g AS (
    FROM single
    UNION ALL
    SELECT m.* EXCLUDE (sure, grp) REPLACE (d.drop_reasons AS drop_reasons) FROM multi_rows m LEFT JOIN multi_drops d USING (sure, grp)
)
-- (ft_bound_at_call first: the macro is bound when called, see macros.sql)
SELECT r.* FROM ft_bound_at_call(cols), ft_connections_judged('g', cols) r;

CREATE OR REPLACE VIEW connections AS FROM ft_connections(NULL);

-- ft_connections_in is the columns cols of connections in the analysed
-- window (win, by name: a CTE of ft_window()), as ft_in_window.
CREATE OR REPLACE MACRO ft_connections_in(win, cols) AS TABLE
    SELECT c.* FROM ft_connections(list_concat(cols, ['time'])) c, query_table(win) w
    WHERE c.time BETWEEN w.t0 AND w.t1;
