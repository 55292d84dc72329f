-- Expressions the views and analyses share: the first entries of the
-- query's WITH list (ClickHouse has no macros, but a lambda given a name
-- in WITH is called like a function, in subqueries too). See
-- analyze/sql/macros.sql for what each means; these compute the same.

-- The parameters (query parameters; NULL when unset). reporter, level,
-- errors_by, bucket and slo_objective have their defaults filled in by
-- flowtape.
{since:Nullable(DateTime64(9, 'UTC'))} AS ft_since,
{until:Nullable(DateTime64(9, 'UTC'))} AS ft_until,
{namespace:Nullable(String)} AS ft_namespace,
{reporter:String} AS ft_reporter,
{level:String} AS ft_level,
{errors_by:String} AS ft_errors_by,
{bucket:Int64} AS ft_bucket_seconds,
{slo_objective:Float64} AS ft_slo_objective,
{slo_latency_ms:Nullable(Float64)} AS ft_slo_latency_ms,
{new_since:Nullable(DateTime64(9, 'UTC'))} AS ft_new_since,

-- Facts flowtape's Go code declares (internal/defaults, schema) or reads
-- from the recording (its manifests).
{ft_health_degraded:Float64} AS ft_health_degraded,
{ft_health_failure:Float64} AS ft_health_failure,
{ft_recorder_node:String} AS ft_recorder_node,
{ft_filtered_capture:Bool} AS ft_filtered_capture,
{ft_expired_flows:Int64} AS ft_expired_flows,
{ft_expired_until:Nullable(DateTime64(9, 'UTC'))} AS ft_expired_until,
{ft_dropped_flows:Int64} AS ft_dropped_flows,
{ft_dropped_first:Nullable(DateTime64(9, 'UTC'))} AS ft_dropped_first,
{ft_dropped_last:Nullable(DateTime64(9, 'UTC'))} AS ft_dropped_last,

-- ft_in_namespace: whether a row with these namespaces passes --namespace.
((a, b) -> ft_namespace IS NULL OR coalesce(a = ft_namespace, false) OR coalesce(b = ft_namespace, false)) AS ft_in_namespace,

-- ft_outside: whether an endpoint may be outside the cluster: no pod,
-- and the world identity (world, world-ipv4, world-ipv6: their numbers
-- from schema.ReservedIdentities), a local-scope one (2^24 up: CIDR and
-- FQDN selections) or none (0, or no endpoint).
((identity, pod) -> coalesce(nullIf(pod, '') IS NULL AND (has({ft_world_identities:Array(UInt32)}, coalesce(identity, 0))
    OR identity >= 16777216 OR coalesce(identity, 0) = 0), false)) AS ft_outside,

-- ft_node_identity: host, remote-node or health, a node's address.
(identity -> has({ft_node_identities:Array(UInt32)}, coalesce(identity, 0))) AS ft_node_identity,

-- ft_local_only: multicast, broadcast or IPv6 link-local (macros.sql).
(ip -> ip = '255.255.255.255' OR match(ip, '^(22[4-9]|23[0-9])\\.') OR match(lower(ip), '^(ff[0-9a-f]{0,2}:|fe[89ab][0-9a-f]?:)')) AS ft_local_only,

-- ft_request_id is the flows' http_request_id, which flow files of schema
-- 1.4 on do not store: the first X-Request-Id header's value, NULL when it
-- is absent or empty, header names compared as Go's strings.EqualFold
-- compares them (macros.sql's ft_fold and ft_header).
(headers -> nullIf(arrayFirst(h -> coalesce(translateUTF8(h.key, {ft_fold_from:String}, {ft_fold_to:String}), '') = {ft_header_request_id:String}, headers).value, '')) AS ft_request_id,

-- ft_round is DuckDB's round of a DOUBLE: half away from zero (ClickHouse's
-- round goes half to even).
((x, d) -> if(x < 0, -1, 1) * floor(abs(x) * pow(10, d) + 0.5) / pow(10, d)) AS ft_round,

-- ft_error_rate is an error share, NULL without requests.
((errors, requests) -> ft_round(errors / nullIf(requests, 0), 6)) AS ft_error_rate,

-- ft_health grades an error share by Kiali's default thresholds.
((errors, total) -> multiIf(coalesce(total, 0) = 0, 'unknown',
                            errors / total >= ft_health_failure, 'failure',
                            errors / total >= ft_health_degraded, 'degraded', 'healthy')) AS ft_health,

-- ft_traffic_health: of the requests' errors where an L7 proxy saw the
-- traffic, else of the connections dropped or never answered, of those
-- the recording can judge.
((l7, errors, requests, lost, judged) -> if(l7, ft_health(errors, requests), ft_health(lost, judged))) AS ft_traffic_health,

-- ft_drop_status: dropped: and the reason that dropped most of a dropped
-- connection's packets (drop_reasons is a count string, most first), as
-- errors names the failure.
(reasons -> concat('dropped:', splitByChar('=', splitByChar(',', coalesce(reasons, ''))[1])[1])) AS ft_drop_status,

-- ft_counts renders an array of names as "name=count,..." by count, then
-- name; NULL for none.
(names -> nullIf(arrayStringConcat(arrayMap(x -> concat(x.2, '=', toString(-x.1)),
    arraySort(arrayMap(v -> (-toInt64(countEqual(names, v)), assumeNotNull(v)), arrayDistinct(arrayFilter(v -> v IS NOT NULL, names))))), ','), '')) AS ft_counts,

-- ft_counts_of is ft_counts of names already counted: an array of
-- (name, count) pairs (groupArray((name, n))).
(pairs -> nullIf(arrayStringConcat(arrayMap(x -> concat(x.2, '=', toString(-x.1)),
    arraySort(arrayMap(p -> (-toInt64(p.2), assumeNotNull(p.1)), arrayFilter(p -> p.1 IS NOT NULL AND p.2 IS NOT NULL, pairs)))), ','), '')) AS ft_counts_of,

-- ft_join is string_agg of distinct names in order: NULL for none.
(names -> nullIf(arrayStringConcat(arraySort(arrayDistinct(arrayFilter(v -> v IS NOT NULL, names))), ','), '')) AS ft_join,

-- ft_quantiles are the nearest-rank quantiles qs (DuckDB's quantile_disc:
-- the smallest value with at least q of the values at or below it) of
-- sorted, an array sorted ascending; NULL for an empty array.
((sorted, qs) -> arrayMap(q -> if(length(sorted) = 0, NULL, sorted[toUInt64(greatest(ceil(q * length(sorted)), 1))]), qs)) AS ft_quantiles,

-- ft_node names a graph node at a level: workload, service or pod.
((level, name, pod, service) -> multiIf(level = 'pod', coalesce(nullIf(pod, ''), name), level = 'service', coalesce(service, name), name)) AS ft_node,

-- ft_minute is the minute of a time; ft_bucket its bucket of s seconds.
(t -> fromUnixTimestamp64Nano(intDiv(toUnixTimestamp64Nano(t), 60000000000) * 60000000000, 'UTC')) AS ft_minute,
((t, s) -> fromUnixTimestamp64Nano(intDiv(toUnixTimestamp64Nano(t), s * 1000000000) * (s * 1000000000), 'UTC')) AS ft_bucket,

-- slo (analyze/sql/slo.sql): ft_step is a time's step of --bucket,
-- ft_slo_steps how many steps a trailing window of seconds takes (rounded
-- up), ft_burn a burn rate: the bad share over what the objective allows;
(t -> intDiv(toUnixTimestamp64Nano(t), ft_bucket_seconds * 1000000000)) AS ft_step,
(seconds -> toInt64(ceil(seconds / ft_bucket_seconds))) AS ft_slo_steps,
((bad, events) -> if(events > 0, bad / events / (1 - ft_slo_objective / 100), NULL)) AS ft_burn,
-- ft_trailing: the burn rate over the n steps up to each step, from
-- cumulative counts of events ce and bad events cb.
((ce, cb, n) -> arrayMap(k -> ft_burn(cb[k] - if(k > n, cb[k - n], 0), ce[k] - if(k > n, ce[k - n], 0)), arrayEnumerate(ce))) AS ft_trailing
