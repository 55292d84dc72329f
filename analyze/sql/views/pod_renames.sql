-- pod_renames: the pods some of whose flows name them otherwise than the
-- pods view does, with the name the views give them instead (joined by
-- namespace and pod; getvariable('ft_pods_renamed') tells whether there
-- are any, so that the join is planned away when there are none). The
-- engine sets that variable with a temporary table of the same rows, which
-- the views then read instead (cheaper to bind, see analyze/setup.go).
CREATE OR REPLACE VIEW pod_renames AS
SELECT namespace, pod, name FROM pods WHERE renamed;
