-- avg and sum over vectors, serial and parallel.
\set VERBOSITY default

SELECT avg(v) FROM (VALUES ('[1,2,3]'::vector), ('[3,4,5]'), (NULL)) t(v);
SELECT sum(v) FROM (VALUES ('[1,2,3]'::vector), ('[3,4,5]'), (NULL)) t(v);
SELECT avg(v), sum(v) FROM (VALUES (NULL::vector)) t(v);
SELECT avg(v) FROM (SELECT '[1,2]'::vector WHERE false) t(v);
SELECT avg(v) FROM (VALUES ('[1,2]'::vector), ('[1,2,3]')) t(v);
SELECT sum(v) FROM (VALUES ('[1,2]'::vector), ('[1,2,3]')) t(v);
SELECT sum(v) FROM (VALUES ('[3e38]'::vector), ('[3e38]')) t(v);
-- the average of large values does not overflow where the float4 sum would
SELECT avg(v) FROM (VALUES ('[3e38]'::vector), ('[3e38]')) t(v);

-- parallel aggregation gives the same answer as serial (values chosen so
-- that float4 sums are exact in any order)
CREATE TABLE agg (g int, v vector(3));
INSERT INTO agg SELECT i % 4, ARRAY[i % 100, i % 7, -(i % 50)]::vector FROM generate_series(1, 20000) i;
ANALYZE agg;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT avg(v), sum(v) FROM agg;
SELECT avg(v), sum(v) FROM agg;
SELECT g, avg(v), sum(v) FROM agg GROUP BY g ORDER BY g;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
SELECT avg(v), sum(v) FROM agg;
DROP TABLE agg;
