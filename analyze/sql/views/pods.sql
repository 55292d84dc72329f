-- pods: one row per pod, with the name the analyses give it: the best the
-- recording knows, its workload (source_workload, destination_workload),
-- else its app label, seen on any of its flows, else the workload its name
-- implies by Kubernetes' naming (the derived pods table's inferred
-- column: Deployment name-<pod-template-hash>-<5>, DaemonSet or Job
-- name-<5>, StatefulSet name-<n>). So a pod whose labels are missing from
-- some of its flows is one endpoint, never named by its pod name when it
-- has a workload. renamed: some flows of the pod name it otherwise (the
-- flow columns source_endpoint and destination_endpoint name each flow's
-- endpoints by that flow alone); the views name it by name throughout.
CREATE OR REPLACE VIEW pods AS
WITH p AS (
    SELECT namespace, pod,
        coalesce(arg_min(workload, first_time), arg_min(app, first_time), min(inferred)) AS name,
        -- the names the flows give it, as source_endpoint does
        min(coalesce(workload, app, pod)) AS lo, max(coalesce(workload, app, pod)) AS hi,
        min(first_time) AS first_time, max(last_time) AS last_time
    FROM derived_pods
    GROUP BY namespace, pod
)
SELECT namespace, pod, name, lo <> name OR hi <> name AS renamed, first_time, last_time
FROM p;
