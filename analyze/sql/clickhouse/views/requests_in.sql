-- requests_in: the rows of requests_counted in the analysed window (as
-- DuckDB's ft_requests_in).
SELECT r.* FROM requests_counted r, time_window w
WHERE r.time BETWEEN w.t0 AND w.t1
