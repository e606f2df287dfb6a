-- ivfflat: the per-backend cache of the meta page and centroids (rd_amcache)
--
-- pages(q): the shared buffers q's plan touched (hit or read), from EXPLAIN
-- (ANALYZE, BUFFERS) (planning not counted): fixed for a fixed plan and data.
CREATE FUNCTION pages(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	p json;
BEGIN
	EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, FORMAT JSON) ' || q INTO p;
	RETURN (p->0->'Plan'->>'Shared Hit Blocks')::bigint +
		(p->0->'Plan'->>'Shared Read Blocks')::bigint;
END $$;
SET enable_seqscan = off;
SET enable_bitmapscan = off;

-- An index on an empty table: one list, no group.  Building the cache reads
-- the meta page, the directory page (where the list's centroid is), the
-- centroid page and the codebook page (an adaptive index built with no rows
-- has the code layout); then the scan reads the list's directory page.  Once
-- cached, a scan reads the meta page's generation and the directory page:
-- the centroids of a generation never change in place, so they are not read
-- again until the generation moves or a relcache invalidation drops the
-- cache.
CREATE TABLE e (id int, v vector(3));
CREATE INDEX e_idx ON e USING ivfflat (v) WITH (lists = 1);
SELECT pages('SELECT id FROM e ORDER BY v <-> ''[1,2,3]'' LIMIT 1') AS cold;
SELECT pages('SELECT id FROM e ORDER BY v <-> ''[1,2,3]'' LIMIT 1') AS warm;
SELECT pages('SELECT id FROM e ORDER BY v <-> ''[1,2,3]'' LIMIT 1') AS warm;
-- ALTER INDEX invalidates the relcache entry, which drops the cache
ALTER INDEX e_idx SET (nprobe = 1);
SELECT pages('SELECT id FROM e ORDER BY v <-> ''[1,2,3]'' LIMIT 1') AS cold;
SELECT pages('SELECT id FROM e ORDER BY v <-> ''[1,2,3]'' LIMIT 1') AS warm;
-- inserts change list and directory pages, never what the cache holds
INSERT INTO e SELECT i, ARRAY[i, -i, i % 3]::vector FROM generate_series(1, 5) i;
SELECT id FROM e ORDER BY v <-> '[1,2,3]';
-- TRUNCATE gives a new relfilenode (and an invalidation): a fresh cache
TRUNCATE e;
SELECT pages('SELECT id FROM e ORDER BY v <-> ''[1,2,3]'' LIMIT 1') AS cold;
SELECT id FROM e ORDER BY v <-> '[1,2,3]';

-- REINDEX with another number of lists: the cached meta page and centroids
-- are replaced, so a scan probing every list still returns every row, in
-- the exact order
CREATE TABLE r (id int, v vector(2));
INSERT INTO r SELECT i, ARRAY[(i % 10) * 10 + sin(i), (i / 10) * 10 + cos(i)]::vector
FROM generate_series(1, 200) i;
CREATE INDEX r_idx ON r USING ivfflat (v) WITH (lists = 2);
CREATE FUNCTION r_exact() RETURNS bool LANGUAGE plpgsql AS $$
DECLARE
	got int[];
	want int[];
BEGIN
	SET LOCAL enable_seqscan = off;
	SET LOCAL ivf.nprobe = 1000;
	SELECT array_agg(id) INTO got FROM (SELECT id FROM r ORDER BY v <-> '[33,44]') s;
	SET LOCAL enable_seqscan = on;
	SET LOCAL enable_indexscan = off;
	SELECT array_agg(id ORDER BY v <-> '[33,44]', id) INTO want FROM r;
	RETURN got = want;
END $$;
SELECT r_exact();
ALTER INDEX r_idx SET (lists = 7);
REINDEX INDEX r_idx;
SELECT (ivf_index_info('r_idx')).lists;
SELECT r_exact();
VACUUM FULL r;
SELECT r_exact();
DELETE FROM r WHERE id % 2 = 0;
VACUUM r;
SELECT r_exact();

-- TRUNCATE of a table created in the same transaction rebuilds its indexes
-- in place (same relfilenode, now one empty list); the rebuild sends a
-- relcache invalidation all the same, so inserts and scans that follow in
-- the transaction use the new meta page and centroids
BEGIN;
CREATE TABLE n (id int, v vector(2));
INSERT INTO n SELECT i, ARRAY[i % 10, i / 10]::vector FROM generate_series(1, 100) i;
CREATE INDEX n_idx ON n USING ivfflat (v) WITH (lists = 4);
SET LOCAL ivf.nprobe = 4;
SELECT id FROM n ORDER BY v <-> '[3,3]' LIMIT 3;
TRUNCATE n;
INSERT INTO n SELECT i, ARRAY[i % 10, -i]::vector FROM generate_series(101, 150) i;
SELECT (ivf_index_info('n_idx')).lists, (ivf_index_info('n_idx')).vectors;
SELECT count(*) FROM ivf_check('n_idx');
SELECT id FROM n ORDER BY v <-> '[3,-110]' LIMIT 3;
COMMIT;
