-- pods: one row per pod, with the name the analyses give it (see
-- analyze/sql/views/pods.sql): its workload, else its app label, seen on
-- any of its flows (the first), else the workload its name implies.
-- renamed: some flows of the pod name it otherwise.
SELECT namespace, pod, name, CAST(lo <> name OR hi <> name AS Nullable(Bool)) AS renamed, first_time, last_time
FROM (
    SELECT namespace, pod,
        coalesce(argMin(workload, first_time), argMin(app, first_time), min(inferred)) AS name,
        min(coalesce(workload, app, pod)) AS lo, max(coalesce(workload, app, pod)) AS hi,
        min(first_time) AS first_time, max(last_time) AS last_time
    FROM derived_pods
    GROUP BY namespace, pod
)
