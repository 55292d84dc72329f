-- pod_renames: the pods some of whose flows name them otherwise than the
-- pods view does, with the name the views give them instead (joined by
-- namespace and pod).
SELECT namespace, pod, name FROM pods WHERE renamed
