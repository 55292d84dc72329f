-- requests_counted: the requests the analyses count, each once, by the
-- reporter rule (--reporter): server (default): the server proxy's view,
-- the client proxy's where no server proxy saw the request; client: the
-- client proxy's view only; both: every row of requests.
SELECT * EXCEPT (seen_by_server) FROM requests
WHERE multiIf(ft_reporter = 'server', reporter = 'server' OR NOT seen_by_server,
              ft_reporter = 'client', reporter = 'client', true)
