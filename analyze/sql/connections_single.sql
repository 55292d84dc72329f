-- ft_connections where every row of derived_connections is an attempt of
-- its own: no row of an unknown attempt (attempt NULL), and no two rows
-- of one attempt. The connections view (views/connections.sql) then
-- orders no connection's rows in time and joins no attempt's rows, and
-- gives each row as this does; planning and running what finds nothing to
-- do cost services 25 of its 300 ms over 1M flows. The engine defines it
-- so where it knows the rows are so (analyze/connections.go); a recording
-- whose connections span files, or were derived on their own, gets the
-- view's.
CREATE OR REPLACE MACRO ft_connections(cols) AS TABLE
WITH g AS (FROM ft_attempt_row('derived_connections'))
-- (ft_bound_at_call first: the macro is bound when called, see macros.sql)
SELECT r.* FROM ft_bound_at_call(cols), ft_connections_judged('g', cols) r;
