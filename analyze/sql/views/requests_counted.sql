-- requests_counted: the requests the analyses count, each once, by the
-- reporter rule (SET VARIABLE reporter, the --reporter flag):
--   server (default): the server proxy's view; the client proxy's where no
--           server proxy saw the request (seen_by_server, see requests);
--   client: the client proxy's view only;
--   both:   every row of requests (a request seen by both proxies twice).
--
-- ft_requests_counted(cols) is its columns cols (NULL: all), which an
-- analysis names: DuckDB reads the columns it is given (see
-- ft_requests_of). A report's materialized table replaces it (see
-- analyze/materialize.go).
CREATE OR REPLACE MACRO ft_requests_counted(cols) AS TABLE
SELECT COLUMNS(c -> c <> 'seen_by_server' AND (cols IS NULL OR list_contains(cols, c)))
FROM ft_requests_of(ft_reporter() = 'server',
    CASE WHEN cols IS NOT NULL THEN list_concat(cols, ['reporter', 'seen_by_server']) END)
WHERE CASE ft_reporter()
    WHEN 'server' THEN reporter = 'server' OR NOT seen_by_server
    WHEN 'client' THEN reporter = 'client'
    ELSE true END;

CREATE OR REPLACE VIEW requests_counted AS FROM ft_requests_counted(NULL);

-- ft_requests_in is the columns cols of requests_counted in the analysed
-- window (win, by name: a CTE of ft_window()), as ft_in_window.
CREATE OR REPLACE MACRO ft_requests_in(win, cols) AS TABLE
    SELECT r.* FROM ft_requests_counted(list_concat(cols, ['time'])) r, query_table(win) w
    WHERE r.time BETWEEN w.t0 AND w.t1;
