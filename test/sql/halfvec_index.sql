-- halfvec columns indexed with ivfflat / ivf: the list pages hold half
-- floats (2 bytes an element), the centroids floats.  The data are
-- multiples of 1/8 in [-4, 4], exact in half precision, so that every
-- distance below is exact in float too: at nprobe = lists the index
-- returns the sequential scan's rows in the same order.
SELECT setseed(0.25);
CREATE TABLE h (id int PRIMARY KEY, v halfvec(8));
INSERT INTO h
SELECT i, (SELECT array_agg(round(random() * 64) / 8 - 4)
           FROM generate_series(1, 8) WHERE i > 0)::halfvec(8)
FROM generate_series(1, 2000) i;
INSERT INTO h VALUES (0, '[0,0,0,0,0,0,0,0]'), (-1, NULL);
CREATE TABLE hq (name text, q halfvec(8));
INSERT INTO hq VALUES ('a', '[1,2,3,-1,0.5,0,-2,1.25]'), ('b', '[-3,0.125,2,2,-1,1,0,-0.5]');

CREATE INDEX h_l2 ON h USING ivfflat (v halfvec_l2_ops) WITH (lists = 10, prefilter = on);
CREATE INDEX h_ip ON h USING ivf (v halfvec_ip_ops) WITH (lists = 10);
CREATE INDEX h_cos ON h USING ivfflat (v halfvec_cosine_ops) WITH (lists = 10, prefilter = off);
SELECT * FROM ivf_check('h_l2');
SELECT * FROM ivf_check('h_ip');
SELECT * FROM ivf_check('h_cos');
SELECT metric, dims, lists, vectors, prefilter, element_type FROM ivf_index_info('h_l2');
-- prefilter's default (auto) stores no codes beside half floats
SELECT metric, vectors, prefilter, element_type FROM ivf_index_info('h_ip');
-- the zero vector has no direction: not in the cosine index
SELECT metric, vectors, prefilter, element_type FROM ivf_index_info('h_cos');

SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM h ORDER BY v <-> '[1,2,3,-1,0.5,0,-2,1.25]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM h ORDER BY v <#> '[1,2,3,-1,0.5,0,-2,1.25]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM h ORDER BY v <=> '[1,2,3,-1,0.5,0,-2,1.25]' LIMIT 5;
RESET enable_seqscan;

-- (id, distance) of the k nearest rows through the index (nprobe = lists)
-- and through a sequential scan, ties by tid as the index orders them
CREATE FUNCTION idx_knn(n text, op text, k int) RETURNS TABLE (r bigint, id int, d float8)
LANGUAGE plpgsql SET enable_seqscan = off SET ivf.nprobe = 10 AS $$
BEGIN
  RETURN QUERY EXECUTE format('SELECT row_number() OVER (), id, d FROM '
    '(SELECT id, v %s $1 AS d FROM h ORDER BY v %s $1 LIMIT $2) s', op, op)
    USING (SELECT q FROM hq WHERE name = n), k;
END $$;
CREATE FUNCTION seq_knn(n text, op text, k int) RETURNS TABLE (r bigint, id int, d float8)
LANGUAGE plpgsql SET enable_indexscan = off SET enable_bitmapscan = off AS $$
BEGIN
  RETURN QUERY EXECUTE format('SELECT row_number() OVER (ORDER BY d, ctid), id, d FROM '
    '(SELECT id, ctid, v %s $1 AS d FROM h WHERE v IS NOT NULL ORDER BY d, ctid LIMIT $2) s', op)
    USING (SELECT q FROM hq WHERE name = n), k;
END $$;
-- the same rows, the same order, the same distances
CREATE FUNCTION same_knn(n text, op text, k int) RETURNS bool LANGUAGE sql AS $$
  SELECT count(*) = k AND bool_and(i.id = s.id AND i.d = s.d)
  FROM idx_knn(n, op, k) i JOIN seq_knn(n, op, k) s USING (r)
$$;
-- cosine: the index stores the unit vectors rounded to half, so its order
-- may differ from the exact one at near ties; rank for rank, the distances
-- agree to half precision
CREATE FUNCTION close_knn(n text, op text, k int) RETURNS bool LANGUAGE sql AS $$
  SELECT count(*) = k AND bool_and(abs(i.d - s.d) < 2e-3)
  FROM idx_knn(n, op, k) i JOIN seq_knn(n, op, k) s USING (r)
$$;

SELECT same_knn('a', '<->', 50) AS l2_a, same_knn('b', '<->', 50) AS l2_b,
       same_knn('a', '<#>', 50) AS ip_a, same_knn('b', '<#>', 50) AS ip_b,
       close_knn('a', '<=>', 50) AS cos_a, close_knn('b', '<=>', 50) AS cos_b;
-- every row comes back, in order
SELECT same_knn('a', '<->', 2001) AS l2_all, same_knn('b', '<#>', 2001) AS ip_all;
-- fewer probes: fewer rows
SET ivf.nprobe = 1;
SET enable_seqscan = off;
SELECT count(*) < 2001 AS fewer, count(*) > 0 AS some
FROM (SELECT id FROM h ORDER BY v <-> (SELECT q FROM hq WHERE name = 'a')) s;
RESET enable_seqscan;
RESET ivf.nprobe;

-- inserts (one out of the half range is refused by the type), updates,
-- deletes and VACUUM
INSERT INTO h SELECT i, (SELECT array_agg(round(random() * 64) / 8 - 4)
                         FROM generate_series(1, 8) WHERE i > 0)::halfvec(8)
FROM generate_series(2001, 2300) i;
INSERT INTO h VALUES (9999, '[70000,0,0,0,0,0,0,0]');
UPDATE h SET v = '[4,4,4,4,4,4,4,4]' WHERE id = 17;
DELETE FROM h WHERE id % 3 = 0 AND id > 0;
VACUUM h;
SELECT * FROM ivf_check('h_l2');
SELECT * FROM ivf_check('h_ip');
SELECT * FROM ivf_check('h_cos');
SELECT vectors, dead_slots FROM ivf_index_info('h_l2');
SELECT same_knn('a', '<->', 100) AS l2_a, same_knn('b', '<#>', 100) AS ip_b,
       close_knn('a', '<=>', 100) AS cos_a;
SELECT id FROM h ORDER BY v <-> '[4,4,4,4,4,4,4,4]' LIMIT 1;

-- strict_order: the filtered rows in exact order (radii over half vectors)
SET ivf.nprobe = 1;
SET ivf.iterative_scan = strict_order;
SET enable_seqscan = off;
-- (+ 0: an expression the index cannot order by, so a sort)
SELECT array_agg(id) = (SELECT array_agg(id) FROM
                          (SELECT id FROM h WHERE id % 50 = 7
                           ORDER BY (v <-> (SELECT q FROM hq WHERE name = 'b')) + 0, ctid
                           LIMIT 20) e) AS strict_exact,
       count(*)
FROM (SELECT id FROM h WHERE id % 50 = 7
      ORDER BY v <-> (SELECT q FROM hq WHERE name = 'b') LIMIT 20) s;
RESET enable_seqscan;
RESET ivf.iterative_scan;
RESET ivf.nprobe;

-- ivf_search takes vector[] queries for a halfvec index too (a halfvec[]
-- array casts with ::vector[]); distances are the index scan's
SELECT bool_and(s.tid = k.ctid AND abs(s.distance - k.d) < 1e-5) AS search_exact, count(*)
FROM ivf_search('h_l2', ARRAY[(SELECT q FROM hq WHERE name = 'a')]::vector[], 10, 10) s
JOIN (SELECT row_number() OVER (ORDER BY d, ctid) AS rank, ctid, d
      FROM (SELECT ctid, v <-> (SELECT q FROM hq WHERE name = 'a') AS d FROM h
            WHERE v IS NOT NULL ORDER BY 2, 1 LIMIT 10) x) k ON k.rank = s.rank;
SELECT ivf_recall('h_l2', ARRAY[(SELECT q FROM hq WHERE name = 'a')::vector], 10) > 0 AS recall;
-- and halfvec[] queries directly (widened to float, exactly): the rows and
-- distances of the same values as vector[], for either index type
CREATE TABLE hf AS SELECT id, v::vector(8) AS v FROM h;
CREATE INDEX hf_l2 ON hf USING ivfflat (v vector_l2_ops) WITH (lists = 10);
CREATE FUNCTION search_rows(idx regclass, qs anyarray) RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(query || ':' || rank || ':' || tid::text || ':' || distance::text, ' '
                    ORDER BY query, rank)
  FROM ivf_search(idx, qs, 10, 10) $$;
SELECT search_rows('h_l2', ARRAY(SELECT q FROM hq ORDER BY name))
       = search_rows('h_l2', ARRAY(SELECT q::vector FROM hq ORDER BY name)) AS half_index,
       search_rows('hf_l2', ARRAY(SELECT q FROM hq ORDER BY name))
       = search_rows('hf_l2', ARRAY(SELECT q::vector FROM hq ORDER BY name)) AS float_index,
       length(search_rows('h_l2', ARRAY(SELECT q FROM hq ORDER BY name))) > 0 AS some_rows;
-- at nprobe = lists, the exact rows (h's data are exact in half: the
-- distances too)
SELECT bool_and(s.tid = k.ctid AND s.distance = k.d::real) AS half_queries_exact, count(*)
FROM ivf_search('h_l2', ARRAY(SELECT q FROM hq WHERE name = 'b'), 10, 10) s
JOIN (SELECT row_number() OVER (ORDER BY d, ctid) AS rank, ctid, d
      FROM (SELECT ctid, v <-> (SELECT q FROM hq WHERE name = 'b') AS d FROM h
            WHERE v IS NOT NULL ORDER BY 2, 1 LIMIT 10) x) k ON k.rank = s.rank;
SET ivf.nprobe = 10;
SELECT ivf_recall('h_l2', ARRAY(SELECT q FROM hq), 10) AS half_recall_half_index,
       ivf_recall('hf_l2', ARRAY(SELECT q FROM hq), 10) AS half_recall_float_index,
       ivf_recall('h_l2', ARRAY(SELECT q::vector FROM hq), 10) AS float_recall_half_index;
RESET ivf.nprobe;
-- a NULL array: no rows; an untyped NULL matches both signatures
SELECT count(*) FROM ivf_search('h_l2', NULL::halfvec[], 5);
SELECT count(*) FROM ivf_search('h_l2', NULL, 5);

-- errors: a query of another dimension, through the scan, ivf_search and
-- ivf_recall; the message names the query's type, whatever the index stores
SET enable_seqscan = off;
SELECT id FROM h ORDER BY v <-> '[1,2,3]'::halfvec LIMIT 1;
RESET enable_seqscan;
SELECT * FROM ivf_search('h_l2', ARRAY['[1,2,3]']::vector[], 1);
SELECT * FROM ivf_search('h_l2', ARRAY['[1,2,3,4,5,6,7,8]', '[1,2,3]']::halfvec[], 1);
SELECT * FROM ivf_search('hf_l2', ARRAY['[1,2,3]']::halfvec[], 1);
SELECT ivf_recall('h_l2', ARRAY['[1,2,3]']::halfvec[], 1);
SELECT ivf_recall('hf_l2', ARRAY['[1,2,3]']::halfvec[], 1);
SELECT ivf_recall('hf_l2', ARRAY['[1,2,3,4,5,6,7,8]', '[1,2,3]']::halfvec[], 1);
SELECT ivf_recall('h_l2', ARRAY['[1,2,3]']::vector[], 1);
-- a NULL query
SELECT * FROM ivf_search('h_l2', ARRAY[NULL, '[1,2,3,4,5,6,7,8]']::halfvec[], 1);
-- a vector column's class does not take a halfvec column
CREATE INDEX ON h USING ivfflat (v vector_l2_ops);

-- size: the same rows as vector and as halfvec, without the codes, the
-- halfvec index is half the vector index (128 dimensions: 0.50, twice
-- the vectors per page); sizes only, no timing
CREATE TABLE big (id int, v halfvec(128));
INSERT INTO big SELECT i, (SELECT array_agg(round(random() * 64) / 8 - 4)
                           FROM generate_series(1, 128) WHERE i > 0)::halfvec(128)
FROM generate_series(1, 3000) i;
CREATE TABLE bigf AS SELECT id, v::vector(128) AS v FROM big;
CREATE INDEX big_h ON big USING ivfflat (v halfvec_l2_ops) WITH (lists = 4, prefilter = off);
CREATE INDEX big_f ON bigf USING ivfflat (v vector_l2_ops) WITH (lists = 4, prefilter = off);
SELECT round(pg_relation_size('big_h')::numeric / pg_relation_size('big_f'), 2) AS half_to_float;
SELECT (SELECT vectors_per_group FROM ivf_index_info('big_h')) AS half_per_group,
       (SELECT vectors_per_group FROM ivf_index_info('big_f')) AS float_per_group;
-- with the codes (prefilter); 3000 dimensions (codes, two float pages a
-- group) and 5000 without codes (groups of two pages)
CREATE INDEX big_hc ON big USING ivfflat (v halfvec_l2_ops) WITH (lists = 4, prefilter = on);
SELECT * FROM ivf_check('big_hc');
SELECT ivf_index_info('big_hc') IS NOT NULL AS info;
-- the codes stay one byte an element: with them, about 0.6
CREATE INDEX big_fc ON bigf USING ivfflat (v vector_l2_ops) WITH (lists = 4);
SELECT round(pg_relation_size('big_hc')::numeric / pg_relation_size('big_fc'), 1) AS half_to_float_codes;
CREATE TABLE wide (id int, v halfvec(3000));
INSERT INTO wide SELECT i, (SELECT array_agg(round(random() * 64) / 8 - 4)
                            FROM generate_series(1, 3000) WHERE i > 0)::halfvec(3000)
FROM generate_series(1, 60) i;
CREATE INDEX wide_h ON wide USING ivfflat (v halfvec_l2_ops) WITH (lists = 3, prefilter = on);
SELECT * FROM ivf_check('wide_h');
SELECT vectors, vectors_per_group, prefilter, element_type FROM ivf_index_info('wide_h');
CREATE TABLE wide5 (id int, v halfvec(5000));
INSERT INTO wide5 SELECT i, (SELECT array_agg(round(random() * 64) / 8 - 4)
                             FROM generate_series(1, 5000) WHERE i > 0)::halfvec(5000)
FROM generate_series(1, 40) i;
CREATE INDEX wide5_h ON wide5 USING ivfflat (v halfvec_ip_ops) WITH (lists = 2, prefilter = off);
INSERT INTO wide5 SELECT id + 100, v FROM wide5 WHERE id <= 10;
DELETE FROM wide5 WHERE id % 4 = 0;
VACUUM wide5;
SELECT * FROM ivf_check('wide5_h');
SELECT vectors, vectors_per_group, pages, prefilter FROM ivf_index_info('wide5_h');
SET enable_seqscan = off;
SET ivf.nprobe = 3;
SELECT array_agg(id) = (SELECT array_agg(id ORDER BY v <-> (SELECT v FROM wide WHERE id = 5), ctid) FROM wide) AS wide_exact
FROM (SELECT id FROM wide ORDER BY v <-> (SELECT v FROM wide WHERE id = 5)) s;
SET ivf.nprobe = 2;
SELECT array_agg(id) = (SELECT array_agg(id ORDER BY v <#> (SELECT v FROM wide5 WHERE id = 5), ctid) FROM wide5) AS wide5_exact
FROM (SELECT id FROM wide5 ORDER BY v <#> (SELECT v FROM wide5 WHERE id = 5)) s;
RESET ivf.nprobe;
RESET enable_seqscan;

DROP TABLE h, hq, hf, big, bigf, wide, wide5;
DROP FUNCTION idx_knn, seq_knn, same_knn, close_knn, search_rows;

-- prefilter: auto (the default) stores codes for vector, not for halfvec;
-- a boolean's spellings still work, as written by 0.1.0 dumps
RESET enable_seqscan;
RESET ivf.nprobe;
CREATE TABLE pf (id int, v halfvec(4), f vector(4));
INSERT INTO pf SELECT i, ARRAY[i % 7, i % 5, i % 3, 1]::halfvec(4), ARRAY[i % 7, i % 5, i % 3, 1]::vector(4)
FROM generate_series(1, 200) i;
CREATE INDEX pf_h_auto ON pf USING ivfflat (v halfvec_l2_ops) WITH (lists = 2, prefilter = auto);
CREATE INDEX pf_f_auto ON pf USING ivfflat (f vector_l2_ops) WITH (lists = 2);
CREATE INDEX pf_h_t ON pf USING ivfflat (v halfvec_l2_ops) WITH (lists = 2, prefilter = 't');
CREATE INDEX pf_f_no ON pf USING ivfflat (f vector_l2_ops) WITH (lists = 2, prefilter = no);
-- from 256 dimensions up auto gives halfvec indexes codes too
CREATE TABLE pf256 (v halfvec(256), w halfvec(255));
INSERT INTO pf256 SELECT array_fill(i % 5, ARRAY[256])::halfvec(256), array_fill(i % 5, ARRAY[255])::halfvec(255)
FROM generate_series(1, 50) i;
CREATE INDEX pf_h256 ON pf256 USING ivfflat (v halfvec_l2_ops) WITH (lists = 1);
CREATE INDEX pf_h255 ON pf256 USING ivfflat (w halfvec_l2_ops) WITH (lists = 1);
SELECT i AS index, (ivf_index_info(i)).prefilter
FROM unnest(ARRAY['pf_h_auto', 'pf_f_auto', 'pf_h_t', 'pf_f_no', 'pf_h256', 'pf_h255']::regclass[]) i;
DROP TABLE pf256;
CREATE INDEX ON pf USING ivfflat (v halfvec_l2_ops) WITH (prefilter = maybe);
ALTER INDEX pf_h_auto SET (prefilter = on);
REINDEX INDEX pf_h_auto;
SELECT (ivf_index_info('pf_h_auto')).prefilter AS after_reindex;
SELECT * FROM ivf_check('pf_h_auto');
DROP TABLE pf;
