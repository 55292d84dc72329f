-- requests_counted: the requests the analyses count, each once, by the
-- reporter rule (SET VARIABLE reporter, the --reporter flag):
--   server (default): the server proxy's view; the client proxy's where no
--           server proxy saw the request (seen_by_server, see requests);
--   client: the client proxy's view only;
--   both:   every row of requests (a request seen by both proxies twice).
CREATE OR REPLACE VIEW requests_counted AS
SELECT * EXCLUDE (seen_by_server) FROM ft_requests_of(ft_reporter() = 'server')
WHERE CASE ft_reporter()
    WHEN 'server' THEN reporter = 'server' OR NOT seen_by_server
    WHEN 'client' THEN reporter = 'client'
    ELSE true END;
