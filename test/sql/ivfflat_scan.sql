-- ivfflat: scans, settings, opclasses, inserts, VACUUM
CREATE TABLE t (id int PRIMARY KEY, v vector(3), cat int);
INSERT INTO t
SELECT i, ARRAY[(i % 4) * 10 + sin(i)::real, (i % 3) * 10 + cos(i)::real, sin(i * 7)::real]::vector(3), i % 5
FROM generate_series(1, 2000) i;
INSERT INTO t VALUES (2001, NULL, 0);
-- adaptive = off: the VACUUM below tests compaction and refilling of fixed
-- lists (VACUUM's splits of adaptive ones: t/034_split.pl)
CREATE INDEX t_l2 ON t USING ivfflat (v vector_l2_ops) WITH (lists = 12, adaptive = off);
ANALYZE t;

-- the planner uses the index for ORDER BY ... LIMIT without being forced
EXPLAIN (COSTS OFF) SELECT id FROM t ORDER BY v <-> '[1,2,3]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM t WHERE cat = 1 ORDER BY v <-> '[1,2,3]' LIMIT 5;
-- but not for anything else
EXPLAIN (COSTS OFF) SELECT id FROM t WHERE v = '[1,2,3]';
EXPLAIN (COSTS OFF) SELECT id FROM t ORDER BY v LIMIT 5;

-- exact answer for comparison
CREATE TEMP TABLE q AS SELECT '[12.5,9.5,0.1]'::vector AS q;
CREATE TEMP TABLE exact AS
SELECT id, row_number() OVER (ORDER BY v <-> (SELECT q FROM q), id) AS r
FROM t WHERE v IS NOT NULL;

-- nprobe = lists gives exactly the seq-scan order
SET enable_seqscan = off;
SET ivf.nprobe = 12;
SELECT array_agg(id) = (SELECT array_agg(id ORDER BY r) FROM exact WHERE r <= 20) AS exact_top20
FROM (SELECT id FROM t ORDER BY v <-> (SELECT q FROM q) LIMIT 20) s;
-- all rows come back, in order, when there is no LIMIT
SELECT count(*) AS n, bool_and(d >= prev) AS ordered
FROM (SELECT d, lag(d, 1, 0::float8) OVER () AS prev
      FROM (SELECT v <-> (SELECT q FROM q) AS d FROM t ORDER BY v <-> (SELECT q FROM q)) a) b;

-- fewer probes, fewer candidates
SET ivf.nprobe = 1;
SELECT count(*) < 2000 AS fewer FROM (SELECT id FROM t ORDER BY v <-> (SELECT q FROM q)) s;
SELECT count(*) > 0 AS found FROM (SELECT id FROM t ORDER BY v <-> (SELECT q FROM q) LIMIT 5) s;

-- ivfflat.probes is an alias; ivf.nprobe, when set, wins (see ivfflat_knobs)
RESET ivf.nprobe;
SET ivfflat.probes = 12;
SELECT count(*) AS all_rows FROM (SELECT id FROM t ORDER BY v <-> (SELECT q FROM q)) s;
SET ivf.nprobe = 1;
SELECT count(*) < 2000 AS fewer FROM (SELECT id FROM t ORDER BY v <-> (SELECT q FROM q)) s;
RESET ivfflat.probes;
-- SET LOCAL lasts for the transaction
BEGIN;
SET LOCAL ivf.nprobe = 12;
SELECT count(*) AS all_rows FROM (SELECT id FROM t ORDER BY v <-> (SELECT q FROM q)) s;
COMMIT;
SHOW ivf.nprobe;
SET ivf.nprobe = -1;
SET ivf.nprobe = 40000;
RESET ivf.nprobe;

-- with a filter
SET ivf.nprobe = 12;
SELECT array_agg(id) = (SELECT array_agg(e.id ORDER BY e.r) FROM (SELECT e.id, e.r FROM exact e JOIN t USING (id) WHERE t.cat = 1 ORDER BY e.r LIMIT 5) e) AS filtered_exact
FROM (SELECT id FROM t WHERE cat = 1 ORDER BY v <-> (SELECT q FROM q) LIMIT 5) s;

-- the distance the index orders by is the operator's
SELECT bool_and(abs(d - (v <-> (SELECT q FROM q))) < 1e-6) AS same_distance
FROM (SELECT v, v <-> (SELECT q FROM q) AS d FROM t ORDER BY v <-> (SELECT q FROM q) LIMIT 50) s;

-- query vectors of the wrong size, and NULL
SELECT id FROM t ORDER BY v <-> '[1,2]' LIMIT 1;
SELECT count(*) FROM (SELECT id FROM t ORDER BY v <-> NULL LIMIT 3) s;

-- prepared statements with a parameter
PREPARE knn(vector) AS SELECT id FROM t ORDER BY v <-> $1 LIMIT 3;
EXECUTE knn('[30,20,0]');
EXECUTE knn('[0,0,0]');
DEALLOCATE knn;

-- inserts are found; VACUUM removes deleted rows
INSERT INTO t VALUES (3001, '[100,100,100]', 0), (3002, '[100,100,101]', 0);
SELECT id FROM t ORDER BY v <-> '[100,100,100.2]' LIMIT 2;
DELETE FROM t WHERE id % 3 = 0;
SELECT count(*) AS after_delete FROM (SELECT id FROM t ORDER BY v <-> (SELECT q FROM q)) s;
VACUUM t;
SELECT vectors, dead_slots FROM ivf_index_info('t_l2');
SELECT * FROM ivf_check('t_l2');
SELECT count(*) AS after_vacuum FROM (SELECT id FROM t ORDER BY v <-> (SELECT q FROM q)) s;
-- refilled slots after VACUUM
INSERT INTO t SELECT i, ARRAY[sin(i), cos(i), 0]::vector(3), 0 FROM generate_series(4000, 4500) i;
SELECT vectors FROM ivf_index_info('t_l2');
SELECT * FROM ivf_check('t_l2');
SELECT count(*) AS total FROM (SELECT id FROM t ORDER BY v <-> (SELECT q FROM q)) s;
SELECT count(*) AS heap_rows FROM t WHERE v IS NOT NULL;

-- inner product and cosine
CREATE TABLE c (id int, v vector(3));
INSERT INTO c SELECT i, ARRAY[sin(i), cos(i * 3), (i % 7) - 3]::vector(3) FROM generate_series(1, 500) i;
INSERT INTO c VALUES (0, '[0,0,0]');
CREATE INDEX c_ip ON c USING ivfflat (v vector_ip_ops) WITH (lists = 5);
CREATE INDEX c_cos ON c USING ivfflat (v vector_cosine_ops) WITH (lists = 5);
SELECT metric, vectors FROM ivf_index_info('c_ip');
-- the zero vector has no direction and is not in the cosine index
SELECT metric, vectors FROM ivf_index_info('c_cos');
SELECT * FROM ivf_check('c_ip');
SELECT * FROM ivf_check('c_cos');
SET ivf.nprobe = 5;
SELECT array_agg(id) = (SELECT array_agg(id) FROM (SELECT id FROM c ORDER BY v <#> '[1,2,3]', id LIMIT 10) e) AS ip_exact
FROM (SELECT id FROM c ORDER BY v <#> '[1,2,3]' LIMIT 10) s;
SELECT array_agg(id) = (SELECT array_agg(id) FROM (SELECT id FROM c WHERE id > 0 ORDER BY v <=> '[1,2,3]', id LIMIT 10) e) AS cosine_exact
FROM (SELECT id FROM c ORDER BY v <=> '[1,2,3]' LIMIT 10) s;
SELECT bool_and(abs(d - (v <=> '[1,2,3]')) < 1e-6) AS same_cosine
FROM (SELECT v, v <=> '[1,2,3]' AS d FROM c ORDER BY v <=> '[1,2,3]' LIMIT 10) s;
SELECT bool_and(abs(d - (v <#> '[1,2,3]')) < 1e-5) AS same_ip
FROM (SELECT v, v <#> '[1,2,3]' AS d FROM c ORDER BY v <#> '[1,2,3]' LIMIT 10) s;
-- a zero query for cosine: all distances equal, nothing fails
SELECT count(*) FROM (SELECT id FROM c ORDER BY v <=> '[0,0,0]' LIMIT 5) s;
-- the wrong operator for the opclass: no index
EXPLAIN (COSTS OFF) SELECT id FROM c ORDER BY v <-> '[1,2,3]' LIMIT 3;
RESET ivf.nprobe;

-- expression index
CREATE INDEX c_expr ON c USING ivfflat ((v::vector(3)) vector_l2_ops) WITH (lists = 3);
SET ivf.nprobe = 3;
EXPLAIN (COSTS OFF) SELECT id FROM c ORDER BY v::vector(3) <-> '[0,1,3]' LIMIT 3;
SELECT id FROM c ORDER BY v::vector(3) <-> '[0,1,3]' LIMIT 3;
RESET ivf.nprobe;

-- unlogged tables
CREATE UNLOGGED TABLE u (id int, v vector(2));
INSERT INTO u SELECT i, ARRAY[i % 10, i / 10]::vector(2) FROM generate_series(1, 300) i;
CREATE INDEX u_idx ON u USING ivfflat (v) WITH (lists = 4);
SET ivf.nprobe = 4;
SELECT id FROM u ORDER BY v <-> '[3.1,3.2]' LIMIT 3;
RESET ivf.nprobe;

RESET enable_seqscan;
DROP TABLE t, c, u;
