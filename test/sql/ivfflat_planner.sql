-- ivfflat: plans pgvector users rely on
SET max_parallel_workers_per_gather = 0;

-- a partial index is chosen for a query whose WHERE implies its predicate,
-- and is costed from its own rows, not the table's (also after a VACUUM
-- that deletes nothing, which records the table's row count as the index's)
CREATE TABLE pl (id int, c int, v vector(3), body text) WITH (autovacuum_enabled = off);
INSERT INTO pl
SELECT i, i % 5000, ARRAY[sin(i), cos(i * 0.7), sin(i * 1.3)]::vector(3), repeat('x', 100)
FROM generate_series(1, 100000) i;
SET client_min_messages = warning;	-- 20 rows in 5 lists
CREATE INDEX pl_part ON pl USING ivfflat (v) WITH (lists = 5) WHERE (c = 3);
RESET client_min_messages;
ANALYZE pl;
VACUUM pl;
EXPLAIN (COSTS OFF)
SELECT id FROM pl WHERE c = 3 ORDER BY v <-> '[1,0,0]' LIMIT 10;
SET ivf.nprobe = 5;
EXPLAIN (COSTS OFF)
SELECT id FROM pl WHERE c = 3 ORDER BY v <-> '[1,0,0]' LIMIT 10;
-- probing every list, it returns the exact answer
SELECT array_agg(id) = (SELECT array_agg(id) FROM (SELECT id FROM pl WHERE c = 3 ORDER BY (v <-> '[1,0,0]') + 0, id LIMIT 10) x) AS exact
FROM (SELECT id FROM pl WHERE c = 3 ORDER BY v <-> '[1,0,0]' LIMIT 10) s;
RESET ivf.nprobe;
-- a query the predicate does not cover cannot use it
EXPLAIN (COSTS OFF)
SELECT id FROM pl WHERE c = 4 ORDER BY v <-> '[1,0,0]' LIMIT 10;

-- without a LIMIT the query wants every row: a sequential scan and a sort
-- return them all, where the index would return only the probed lists'
CREATE TABLE pn (id int, v vector(3)) WITH (autovacuum_enabled = off);
INSERT INTO pn
SELECT i, ARRAY[sin(i), cos(i * 0.7), sin(i * 1.3)]::vector(3)
FROM generate_series(1, 20000) i;
CREATE INDEX pn_idx ON pn USING ivfflat (v) WITH (lists = 20);
VACUUM ANALYZE pn;
EXPLAIN (COSTS OFF)
SELECT id FROM pn WHERE v <-> '[0.5,0.5,0]' < 1 ORDER BY v <-> '[0.5,0.5,0]';
EXPLAIN (COSTS OFF)
SELECT id FROM pn ORDER BY v <-> '[0.5,0.5,0]';
SELECT (SELECT count(*) FROM (SELECT id FROM pn WHERE v <-> '[0.5,0.5,0]' < 1 ORDER BY v <-> '[0.5,0.5,0]') s)
	= (SELECT count(*) FROM pn WHERE v <-> '[0.5,0.5,0]' < 1) AS all_rows;
SELECT (SELECT array_agg(id) FROM (SELECT id FROM pn WHERE v <-> '[0.5,0.5,0]' < 1 ORDER BY v <-> '[0.5,0.5,0]') s)
	= (SELECT array_agg(id) FROM (SELECT id FROM pn WHERE v <-> '[0.5,0.5,0]' < 1 ORDER BY (v <-> '[0.5,0.5,0]') + 0) x) AS same_order;
-- with a LIMIT the index is used
EXPLAIN (COSTS OFF)
SELECT id FROM pn WHERE v <-> '[0.5,0.5,0]' < 1 ORDER BY v <-> '[0.5,0.5,0]' LIMIT 10;
EXPLAIN (COSTS OFF)
SELECT id FROM pn ORDER BY v <-> '[0.5,0.5,0]' LIMIT 10;
-- a cursor is planned for cursor_tuple_fraction of its rows: the index
-- (as pgvector's ivfflat), unless every row is expected
BEGIN;
EXPLAIN (COSTS OFF)
DECLARE cur CURSOR FOR SELECT id FROM pn ORDER BY v <-> '[0.5,0.5,0]';
SET LOCAL cursor_tuple_fraction = 1;
EXPLAIN (COSTS OFF)
DECLARE cur CURSOR FOR SELECT id FROM pn ORDER BY v <-> '[0.5,0.5,0]';
COMMIT;
-- enable_seqscan = off still gets the index without a LIMIT
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM pn ORDER BY v <-> '[0.5,0.5,0]';
RESET enable_seqscan;

-- enable_seqscan = off and no ORDER BY: count(*) may take an index-only
-- scan of the ivfflat index (it needs no column); it returns every row
-- once, whatever nprobe and max_codes say (it failed with "no data
-- returned for index-only scan" before)
CREATE TABLE pc (id int, v vector(3));
INSERT INTO pc SELECT i, ARRAY[sin(i), cos(i), i % 7]::vector FROM generate_series(1, 3000) i;
CREATE INDEX pc_idx ON pc USING ivfflat (v vector_l2_ops) WITH (lists = 20);
VACUUM ANALYZE pc;
SET enable_seqscan = off;
SET ivf.nprobe = 1;
SET ivf.max_codes = 10;
EXPLAIN (COSTS OFF)
SELECT count(*) FROM pc;
SELECT count(*) FROM pc;
RESET ivf.nprobe;
RESET ivf.max_codes;
RESET enable_seqscan;
DROP TABLE pc;

RESET max_parallel_workers_per_gather;
DROP TABLE pl, pn;
