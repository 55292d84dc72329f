-- traffic_in: the rows of traffic in the analysed window whose flows all
-- lie in it. flowtape sends this file when no minute of traffic has flows
-- both in and out of the window (no --since or --until) and one recording
-- session wrote the recording; else traffic_in_cut.sql.
SELECT t.* EXCEPT (session) FROM traffic t, time_window w
WHERE t.first_time >= w.t0 AND t.last_time <= w.t1
