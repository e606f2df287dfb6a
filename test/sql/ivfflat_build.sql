-- ivfflat: CREATE INDEX, options, errors, progress phases, info
SET client_min_messages = notice;

-- deterministic data: points on a few clusters in 3-d
CREATE TABLE t (id int PRIMARY KEY, v vector(3));
INSERT INTO t
SELECT i, ARRAY[(i % 4) * 10 + sin(i)::real, (i % 3) * 10 + cos(i)::real, sin(i * 7)::real]::vector(3)
FROM generate_series(1, 2000) i;
INSERT INTO t VALUES (2001, NULL);

CREATE INDEX t_l2 ON t USING ivfflat (v vector_l2_ops) WITH (lists = 12);
SELECT metric, dims, lists, lists_requested, default_nprobe, trained_on, built_vectors, vectors, dead_slots
FROM ivf_index_info('t_l2');
SELECT * FROM ivf_check('t_l2');

-- default opclass is vector_l2_ops; lists chosen from the row count
CREATE INDEX t_auto ON t USING ivfflat (v);
SELECT metric, lists, lists_requested, default_nprobe FROM ivf_index_info('t_auto');
SELECT opcname FROM pg_opclass c JOIN pg_index i ON c.oid = i.indclass[0]
WHERE i.indexrelid = 't_auto'::regclass;

-- two builds with the same seed are identical page for page (past the
-- page header's LSN and checksum); another seed gives another index
CREATE EXTENSION pageinspect;
CREATE INDEX t_l2_again ON t USING ivfflat (v) WITH (lists = 12);
CREATE INDEX t_l2_seed ON t USING ivfflat (v) WITH (lists = 12, seed = 99);
CREATE FUNCTION index_pages(idx regclass) RETURNS bytea[] LANGUAGE sql AS $$
  SELECT array_agg(substr(get_raw_page(idx::text, b::int), 13) ORDER BY b)
  FROM generate_series(0, pg_relation_size(idx) / current_setting('block_size')::int - 1) b $$;
SELECT index_pages('t_l2') = index_pages('t_l2_again') AS same_seed_same_pages,
       index_pages('t_l2') = index_pages('t_l2_seed') AS other_seed_same_pages;
-- the parallel assignment pass gives the same index as the serial one
ALTER TABLE t SET (parallel_workers = 2);
SET max_parallel_maintenance_workers = 2;
CREATE INDEX t_l2_parallel ON t USING ivfflat (v) WITH (lists = 12);
RESET max_parallel_maintenance_workers;
ALTER TABLE t RESET (parallel_workers);
SELECT index_pages('t_l2') = index_pages('t_l2_parallel') AS parallel_same_pages;
SELECT * FROM ivf_check('t_l2_parallel');
-- lists ordered by residual: the parallel build's leader orders the
-- workers' rows as the serial build orders its own; the same index
CREATE INDEX t_ord ON t USING ivfflat (v) WITH (lists = 12, list_ordering = residual_norm_asc);
ALTER TABLE t SET (parallel_workers = 2);
SET max_parallel_maintenance_workers = 2;
CREATE INDEX t_ord_parallel ON t USING ivfflat (v) WITH (lists = 12, list_ordering = residual_norm_asc);
RESET max_parallel_maintenance_workers;
ALTER TABLE t RESET (parallel_workers);
SELECT index_pages('t_ord') = index_pages('t_ord_parallel') AS ordered_parallel_same_pages;
DROP INDEX t_auto, t_l2_again, t_l2_seed, t_l2_parallel, t_ord, t_ord_parallel;
-- a serial build whose rows outgrow maintenance_work_mem moves them to the
-- tuplesort (which spills to disk): the same index as in memory
CREATE TABLE sp (id int, v vector(16));
INSERT INTO sp SELECT i, (SELECT array_agg(((i * 37 + j * 101) % 113) / 9.0 + (i % 4) * 5)::real[]
	FROM generate_series(1, 16) j)::vector FROM generate_series(1, 20000) i;
SET maintenance_work_mem = '1MB';
SET client_min_messages = debug1;
CREATE INDEX sp_small ON sp USING ivfflat (v) WITH (lists = 4);
RESET client_min_messages;
RESET maintenance_work_mem;
CREATE INDEX sp_big ON sp USING ivfflat (v) WITH (lists = 4);
SELECT index_pages('sp_small') = index_pages('sp_big') AS spilled_same_pages;
DROP TABLE sp;
DROP FUNCTION index_pages;
DROP EXTENSION pageinspect;

-- options
CREATE INDEX ON t USING ivfflat (v) WITH (lists = 0);
CREATE INDEX ON t USING ivfflat (v) WITH (lists = 32769);
CREATE INDEX ON t USING ivfflat (v) WITH (lists = 'many');
CREATE INDEX ON t USING ivfflat (v) WITH (nprobe = 0);
CREATE INDEX ON t USING ivfflat (v) WITH (probes = 3);
CREATE INDEX t_np ON t USING ivfflat (v) WITH (lists = 10, nprobe = 4, seed = 7);
SELECT lists, default_nprobe, seed FROM ivf_index_info('t_np');
-- the nprobe option applies at once; lists and seed at the next REINDEX
ALTER INDEX t_np SET (nprobe = 2, lists = 20);
SELECT lists, default_nprobe FROM ivf_index_info('t_np');
ALTER INDEX t_np RESET (nprobe);
SELECT lists, default_nprobe FROM ivf_index_info('t_np');
REINDEX INDEX t_np;
SELECT lists, default_nprobe FROM ivf_index_info('t_np');
DROP INDEX t_np;

-- things the access method cannot do
CREATE UNIQUE INDEX ON t USING ivfflat (v);
CREATE INDEX ON t USING ivfflat (v, id);
CREATE INDEX ON t USING ivfflat (id);

-- a column without dimensions needs a cast in the index expression
CREATE TABLE nodim (v vector);
INSERT INTO nodim VALUES ('[1,2,3]'), ('[4,5,6]');
CREATE INDEX ON nodim USING ivfflat (v);
CREATE INDEX nodim_expr ON nodim USING ivfflat ((v::vector(3))) WITH (lists = 1);
SELECT * FROM ivf_check('nodim_expr');
INSERT INTO nodim VALUES ('[1,2]');
DROP TABLE nodim;

-- empty and tiny tables
CREATE TABLE empty (v vector(2));
CREATE INDEX empty_idx ON empty USING ivfflat (v) WITH (lists = 5);
SELECT lists, lists_requested, vectors FROM ivf_index_info('empty_idx');
INSERT INTO empty SELECT ARRAY[i, -i]::vector(2) FROM generate_series(1, 50) i;
SELECT lists, vectors FROM ivf_index_info('empty_idx');
SELECT * FROM ivf_check('empty_idx');
DROP TABLE empty;

CREATE TABLE tiny (v vector(2));
INSERT INTO tiny VALUES ('[1,1]'), ('[2,2]'), ('[3,3]');
CREATE INDEX tiny_idx ON tiny USING ivfflat (v) WITH (lists = 10);
SELECT lists, lists_requested, vectors FROM ivf_index_info('tiny_idx');
DROP TABLE tiny;

-- fewer than 39 rows per list: a NOTICE like Faiss's warning
CREATE TABLE few (v vector(2));
INSERT INTO few SELECT ARRAY[i, i % 7]::vector(2) FROM generate_series(1, 100) i;
CREATE INDEX few_idx ON few USING ivfflat (v) WITH (lists = 10);
DROP TABLE few;

-- maintenance_work_mem too small for the centroids
CREATE TABLE wide (v vector(2000));
INSERT INTO wide SELECT array_fill(i::real, ARRAY[2000])::vector(2000) FROM generate_series(1, 20) i;
SET maintenance_work_mem = '1MB';
CREATE INDEX ON wide USING ivfflat (v) WITH (lists = 200);
RESET maintenance_work_mem;
DROP TABLE wide;

-- partial index
CREATE INDEX t_part ON t USING ivfflat (v) WITH (lists = 4) WHERE id % 2 = 0;
SELECT vectors FROM ivf_index_info('t_part');
DROP INDEX t_part;

-- the statistics a build and a VACUUM leave: the table's row count is every
-- live row, the index's only those it holds (not NULL, in the predicate)
CREATE TABLE st (id int, c int, v vector(2)) WITH (autovacuum_enabled = off);
INSERT INTO st SELECT i, i % 50, ARRAY[i, i % 7] FROM generate_series(1, 1000) i;
INSERT INTO st VALUES (1001, 3, NULL);
CREATE INDEX st_part ON st USING ivfflat (v) WITH (lists = 2) WHERE c = 3;
SELECT relname, reltuples FROM pg_class WHERE relname IN ('st', 'st_part') ORDER BY relname;
VACUUM st;
SELECT relname, reltuples FROM pg_class WHERE relname IN ('st', 'st_part') ORDER BY relname;
DELETE FROM st WHERE id <= 100;
VACUUM st;
SELECT relname, reltuples FROM pg_class WHERE relname IN ('st', 'st_part') ORDER BY relname;
DROP TABLE st;

-- REINDEX and CREATE INDEX CONCURRENTLY
REINDEX INDEX t_l2;
SELECT * FROM ivf_check('t_l2');
CREATE INDEX CONCURRENTLY t_conc ON t USING ivfflat (v) WITH (lists = 8);
SELECT vectors FROM ivf_index_info('t_conc');
REINDEX INDEX CONCURRENTLY t_conc;
SELECT * FROM ivf_check('t_conc');
DROP INDEX t_conc;

-- operator classes validate
SELECT opcname, amvalidate(c.oid)
FROM pg_opclass c JOIN pg_am a ON a.oid = c.opcmethod
WHERE a.amname = 'ivfflat' ORDER BY opcname;

-- ivf_check on something else
SELECT * FROM ivf_check('t');
SELECT * FROM ivf_check('t_pkey');

DROP TABLE t;
