-- The prefilter (index option, on by default): an 8-bit code of every
-- vector's residual bounds its distance, and a scan reads the vector in
-- full only when the bound does not rule it out.  Whatever ivf.prefilter_k
-- is, the rows and their order must be exactly those of a full read
-- (ivf.prefilter_k = 0), ties included.
SET client_min_messages = warning;
CREATE TABLE pf (id int, category int, v vector(24));
INSERT INTO pf
SELECT i, i % 5,
       (SELECT array_agg(((i * 7919 + j * 104729) % 1000) / 100.0 + (i % 10) * 3)::real[]
        FROM generate_series(1, 24) j)::vector
FROM generate_series(1, 3000) i;
-- exact duplicates: equal distances, ordered by TID
INSERT INTO pf SELECT 3000 + id, category, v FROM pf WHERE id <= 300;
-- adaptive = off: the VACUUM below tests slots moved within fixed lists
-- (VACUUM's splits of adaptive ones: t/034_split.pl)
CREATE INDEX pf_l2 ON pf USING ivfflat (v vector_l2_ops) WITH (lists = 20, adaptive = off);
CREATE INDEX pf_ip ON pf USING ivfflat (v vector_ip_ops) WITH (lists = 20, adaptive = off);
CREATE INDEX pf_cos ON pf USING ivfflat (v vector_cosine_ops) WITH (lists = 20, adaptive = off);
SELECT prefilter, vectors_per_group FROM ivf_index_info('pf_l2');
SELECT count(*) AS problems FROM ivf_check('pf_l2');

-- the scan output for every 97th row as query: "tid:distance" lists
CREATE FUNCTION pf_run(op text, k int, lim int, filter text DEFAULT 'true',
					   tbl text DEFAULT 'pf')
RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
	r text[] := '{}';
	q record;
	got text;
BEGIN
	PERFORM set_config('ivf.prefilter_k', k::text, true);
	FOR q IN EXECUTE format('SELECT v FROM %I WHERE id %% 97 = 0 ORDER BY id', tbl) LOOP
		EXECUTE format('SELECT string_agg(ctid::text || '':'' || d::text, '','') FROM
			(SELECT ctid, v %s $1 AS d FROM %I WHERE %s ORDER BY v %s $1 LIMIT %s) s',
			op, tbl, filter, op, lim) INTO got USING q.v;
		r := r || got;
	END LOOP;
	RETURN r;
END $$;

SET enable_seqscan = off;
SET ivf.nprobe = 3;
SELECT op,
       pf_run(op, 0, 10) = pf_run(op, 1, 10) AS limit10_k1,
       pf_run(op, 0, 10) = pf_run(op, 10, 10) AS limit10_k10,
       pf_run(op, 0, 200) = pf_run(op, 10, 200) AS limit200_k10,
       pf_run(op, 0, 5000) = pf_run(op, 3, 5000) AS drain_k3
FROM unnest(ARRAY['<->', '<#>', '<=>']) op;

-- all lists probed: the same distances as a sequential scan
SET ivf.nprobe = 20;
SELECT array_agg(d) AS dists FROM (SELECT v <-> (SELECT v FROM pf WHERE id = 1) AS d
	FROM pf ORDER BY v <-> (SELECT v FROM pf WHERE id = 1) LIMIT 100) s \gset idx_
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT array_agg(d)::text = :'idx_dists' AS same_as_seqscan FROM (SELECT v <-> (SELECT v FROM pf WHERE id = 1) AS d
	FROM pf ORDER BY v <-> (SELECT v FROM pf WHERE id = 1) LIMIT 100) s;
RESET enable_indexscan;
SET enable_seqscan = off;

-- iterative scans with a filter
SET ivf.nprobe = 1;
SET ivf.iterative_scan = strict_order;
SELECT pf_run('<->', 0, 20, 'category = 3') = pf_run('<->', 10, 20, 'category = 3') AS strict_filtered;
SET ivf.iterative_scan = relaxed_order;
SELECT pf_run('<->', 0, 20, 'category = 3') = pf_run('<->', 10, 20, 'category = 3') AS relaxed_filtered;
RESET ivf.iterative_scan;
SET ivf.nprobe = 3;

-- inserts after the build, some far outside the trained range (clamped
-- codes, large errors), then VACUUM moving slots within their groups
INSERT INTO pf SELECT 10000 + i, i % 5, (SELECT array_agg((i * j % 50) * 40.0)::real[] FROM generate_series(1, 24) j)::vector
FROM generate_series(1, 200) i;
DELETE FROM pf WHERE id % 7 = 0;
VACUUM pf;
SELECT count(*) AS problems FROM ivf_check('pf_l2');
SELECT count(*) AS problems FROM ivf_check('pf_cos');
SELECT op,
       pf_run(op, 0, 10) = pf_run(op, 10, 10) AS limit10,
       pf_run(op, 0, 300) = pf_run(op, 5, 300) AS limit300
FROM unnest(ARRAY['<->', '<#>', '<=>']) op;

-- prefilter = off: no codes, same results
CREATE INDEX pf_off ON pf USING ivfflat (v vector_l2_ops) WITH (lists = 20, prefilter = off);
SELECT prefilter FROM ivf_index_info('pf_off');
DROP INDEX pf_l2;
SELECT pf_run('<->', 0, 50) = pf_run('<->', 10, 50) AS off_same;
DROP INDEX pf_off;

-- codes up to the widest vector a float page holds (2036 dims); wider
-- vectors are split across pages and get none
CREATE TABLE pf_wide (v vector(2000), w vector(2100));
INSERT INTO pf_wide SELECT array_fill(i::real, ARRAY[2000])::vector,
	array_fill(i::real, ARRAY[2100])::vector FROM generate_series(1, 20) i;
CREATE INDEX pf_wide_v ON pf_wide USING ivfflat (v) WITH (lists = 2);
CREATE INDEX pf_wide_w ON pf_wide USING ivfflat (w) WITH (lists = 2);
SELECT prefilter, vectors_per_group FROM ivf_index_info('pf_wide_v');
SELECT prefilter, vectors_per_group FROM ivf_index_info('pf_wide_w');
SELECT count(*) AS problems FROM ivf_check('pf_wide_v');
SELECT count(*) AS problems FROM ivf_check('pf_wide_w');
SET ivf.nprobe = 2;
SET enable_seqscan = off;
SELECT array_agg(x) AS nearest FROM (SELECT (v::real[])[1] AS x FROM pf_wide
	ORDER BY v <-> array_fill(7.2::real, ARRAY[2000])::vector LIMIT 3) s;

-- 64 lists or more: the lists are ranked from the centroids' own codes
-- (with ivf.prefilter_k = 0, from every centroid's exact distance), and
-- inserts choose their list the same way
CREATE TABLE pfm (id int, v vector(16));
INSERT INTO pfm SELECT i, (SELECT array_agg(((i * 31 + j * 17) % 97) / 7.0 + (i % 13))::real[]
	FROM generate_series(1, 16) j)::vector FROM generate_series(1, 2000) i;
-- far outliers widen the centroid codes' range: coarse codes, loose bounds
INSERT INTO pfm SELECT 5000 + i, array_fill((i * 2500)::real, ARRAY[16])::vector
FROM generate_series(1, 40) i;
CREATE INDEX pfm_l2 ON pfm USING ivfflat (v vector_l2_ops) WITH (lists = 100);
CREATE INDEX pfm_ip ON pfm USING ivfflat (v vector_ip_ops) WITH (lists = 100);
INSERT INTO pfm SELECT 2000 + i, (SELECT array_agg(((i * 7 + j * 3) % 89) / 5.0)::real[]
	FROM generate_series(1, 16) j)::vector FROM generate_series(1, 300) i;
SELECT count(*) AS problems FROM ivf_check('pfm_l2');
SET ivf.nprobe = 1;
SELECT op, pf_run(op, 0, 10, 'true', 'pfm') = pf_run(op, 10, 10, 'true', 'pfm') AS nprobe1
FROM unnest(ARRAY['<->', '<#>']) op;
SET ivf.nprobe = 5;
SELECT op, pf_run(op, 0, 30, 'true', 'pfm') = pf_run(op, 10, 30, 'true', 'pfm') AS nprobe5
FROM unnest(ARRAY['<->', '<#>']) op;

-- a scan borrows the arrays of its deferred slots from a per-backend pool
-- and gives them back when its context is reset or deleted: two scans open
-- at once, rescans, and a scan ended by an error must each keep their own
CREATE FUNCTION pf_two_cursors(q1 vector, q2 vector, n int) RETURNS boolean[]
LANGUAGE plpgsql AS $$
DECLARE
	c1 refcursor;
	c2 refcursor;
	a int[] := '{}';
	b int[] := '{}';
	x int;
	exact1 int[];
	exact2 int[];
BEGIN
	PERFORM set_config('ivf.prefilter_k', '0', true);
	SELECT array_agg(id) INTO exact1 FROM (SELECT id FROM pfm ORDER BY v <-> q1 LIMIT n) s;
	SELECT array_agg(id) INTO exact2 FROM (SELECT id FROM pfm ORDER BY v <-> q2 LIMIT n) s;
	PERFORM set_config('ivf.prefilter_k', '10', true);
	OPEN c1 FOR SELECT id FROM pfm ORDER BY v <-> q1;
	OPEN c2 FOR SELECT id FROM pfm ORDER BY v <-> q2;
	FOR i IN 1..n LOOP
		FETCH c1 INTO x;
		a := a || x;
		FETCH c2 INTO x;
		b := b || x;
	END LOOP;
	CLOSE c1;
	CLOSE c2;
	RETURN ARRAY[a = exact1, b = exact2];
END $$;
SELECT pf_two_cursors((SELECT v FROM pfm WHERE id = 7), (SELECT v FROM pfm WHERE id = 1500), 60) AS two_cursors;
CREATE FUNCTION pf_rescans(k int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r text;
BEGIN
	PERFORM set_config('ivf.prefilter_k', k::text, true);
	SELECT string_agg(q.id || ':' || (SELECT array_agg(id) FROM
		(SELECT id FROM pfm ORDER BY v <-> q.v LIMIT 40) s)::text, ' ' ORDER BY q.id)
	INTO r FROM pfm q WHERE q.id % 50 = 0;
	RETURN r;
END $$;
SELECT pf_rescans(0) = pf_rescans(10) AS rescans;
-- division by zero on the first row, after the first round deferred slots
SELECT id, 1 / (id - 1000) FROM (SELECT id FROM pfm
	ORDER BY v <-> (SELECT v FROM pfm WHERE id = 1000) LIMIT 300) s;
SELECT pf_two_cursors((SELECT v FROM pfm WHERE id = 1000), (SELECT v FROM pfm WHERE id = 2100), 60) AS after_error;
RESET ivf.prefilter_k;

DROP TABLE pf, pf_wide, pfm;
DROP FUNCTION pf_run, pf_two_cursors, pf_rescans;
