-- connections_in: the connection attempts of the analysed window (as
-- DuckDB's ft_connections_in).
SELECT c.* FROM connections c, time_window w
WHERE c.time BETWEEN w.t0 AND w.t1
