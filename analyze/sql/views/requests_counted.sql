-- requests_counted: the requests the analyses count, each once, by the
-- reporter rule (SET VARIABLE reporter, the --reporter flag):
--   server (default): the server proxy's view; the client proxy's where no
--           server proxy saw the request (same X-Request-Id; without one,
--           where no server proxy reported any request of that client and
--           server);
--   client: the client proxy's view only;
--   both:   every row of requests (a request seen by both proxies twice).
CREATE OR REPLACE VIEW requests_counted AS
WITH servers AS (
    SELECT DISTINCT request_id FROM requests WHERE reporter = 'server' AND request_id IS NOT NULL
),
r AS (
    SELECT q.*,
        CASE WHEN q.request_id IS NULL THEN bool_or(q.reporter = 'server') OVER (PARTITION BY q.client, q.server)
             ELSE s.request_id IS NOT NULL END AS has_server
    FROM requests q LEFT JOIN servers s USING (request_id)
)
SELECT * EXCLUDE (has_server) FROM r
WHERE CASE coalesce(getvariable('reporter')::VARCHAR, 'server')
    WHEN 'server' THEN reporter = 'server' OR NOT has_server
    WHEN 'client' THEN reporter = 'client'
    ELSE true END;
