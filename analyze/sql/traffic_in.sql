-- ft_traffic_in is the rows of the traffic view in the analysed window
-- (win, by name: a CTE of ft_window()): those whose flows all lie in it.
-- The engine defines it so when no minute of traffic has flows both in
-- and out of the window (no --since or --until, or ones between minutes
-- of flows) and no two recording sessions counted the same minute, else
-- as traffic_in_cut.sql defines it, which reads the flows of the minutes
-- the window cuts or several sessions counted.
CREATE OR REPLACE MACRO ft_traffic_in(win) AS TABLE
    -- (the window first: the macro is bound when called, see ft_bound_at_call)
    SELECT t.* EXCLUDE (session) FROM query_table(win) w, traffic t
    WHERE t.first_time >= w.t0 AND t.last_time <= w.t1;
