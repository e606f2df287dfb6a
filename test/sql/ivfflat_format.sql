-- ivfflat: the on-disk format (src/README "Page types", "Self-balancing
-- lists").  New indexes are format 4: list slots with generation stamps,
-- generation 1, no split or merge yet.  ivf.build_format = 3 (superuser, for
-- tests) writes the format earlier builds wrote, which is still read.
SET enable_seqscan = off;
SET enable_bitmapscan = off;
CREATE TABLE f (id int, v vector(4));
INSERT INTO f SELECT i, ARRAY[(i % 4) * 10 + sin(i), cos(i), sin(i * 3), (i % 7)]::vector
FROM generate_series(1, 400) i;
CREATE TABLE g (LIKE f);
INSERT INTO g SELECT * FROM f;
CREATE INDEX f_4 ON f USING ivfflat (v) WITH (lists = 9);
SELECT format_version, adaptive, generation, lists, list_slots, default_nprobe,
       splits, merges, vectors_copied, vectors_reassigned, lists_recycled
FROM ivf_index_info('f_4');
SELECT * FROM ivf_check('f_4');

-- adaptive is stored: off at build, or changed later (it gates nothing yet)
CREATE INDEX f_off ON f USING ivfflat (v) WITH (lists = 9, adaptive = off);
SELECT format_version, adaptive, default_nprobe FROM ivf_index_info('f_off');
DROP INDEX f_off;
ALTER INDEX f_4 SET (adaptive = off);
SELECT adaptive FROM ivf_index_info('f_4');
ALTER INDEX f_4 RESET (adaptive);
SELECT adaptive FROM ivf_index_info('f_4');
CREATE INDEX f_bad ON f USING ivfflat (v) WITH (adaptive = maybe);

-- built on an empty table: one list; an adaptive index has the code layout
-- from the start (an all-zero codebook), so the lists it grows into will too
CREATE TABLE fe (id int, v vector(4));
CREATE INDEX fe_a ON fe USING ivfflat (v);
CREATE INDEX fe_off ON fe USING ivfflat (v) WITH (adaptive = off);
SELECT lists, prefilter, adaptive FROM ivf_index_info('fe_a');
SELECT lists, prefilter, adaptive FROM ivf_index_info('fe_off');
DROP INDEX fe_off;
INSERT INTO fe SELECT * FROM f;
SELECT * FROM ivf_check('fe_a');
SELECT array_agg(id) = (SELECT array_agg(id ORDER BY v <-> '[5,1,0,3]', id) FROM fe) AS fe_a_exact
FROM (SELECT id FROM fe ORDER BY v <-> '[5,1,0,3]') s;
DROP TABLE fe;

-- format 3: read, checked, inserted into and vacuumed as before
SET ivf.build_format = 3;
CREATE INDEX g_3 ON g USING ivfflat (v) WITH (lists = 9);
RESET ivf.build_format;
SELECT format_version, adaptive, generation, lists, list_slots, prefilter
FROM ivf_index_info('g_3');
SELECT * FROM ivf_check('g_3');
INSERT INTO f VALUES (1000, '[5,5,5,5]');
INSERT INTO g VALUES (1000, '[5,5,5,5]');
DELETE FROM f WHERE id % 5 = 0;
DELETE FROM g WHERE id % 5 = 0;
VACUUM f;
VACUUM g;
SELECT * FROM ivf_check('f_4');
SELECT * FROM ivf_check('g_3');
SELECT vectors, dead_slots FROM ivf_index_info('f_4');
SELECT vectors, dead_slots FROM ivf_index_info('g_3');

-- every list probed: both formats return the exact order
SET ivf.nprobe = 9;
SELECT array_agg(id) = (SELECT array_agg(id ORDER BY v <-> '[5,1,0,3]', id) FROM f) AS f_4_exact
FROM (SELECT id FROM f ORDER BY v <-> '[5,1,0,3]') s;
SELECT array_agg(id) = (SELECT array_agg(id ORDER BY v <-> '[5,1,0,3]', id) FROM g) AS g_3_exact
FROM (SELECT id FROM g ORDER BY v <-> '[5,1,0,3]') s;
EXPLAIN (COSTS OFF) SELECT id FROM g ORDER BY v <-> '[5,1,0,3]' LIMIT 5;
RESET ivf.nprobe;

-- the setting is the tests' only: versions 3 and 4
SET ivf.build_format = 2;
SET ivf.build_format = 5;

-- centroid rows wider than a page (2100 floats): a run of pages per row
CREATE TABLE w (id int, v vector(2100));
INSERT INTO w SELECT i, array_fill((i % 3)::real + i / 1000.0, ARRAY[2100])::vector
FROM generate_series(1, 30) i;
CREATE INDEX w_4 ON w USING ivfflat (v) WITH (lists = 3);
SELECT format_version, lists, list_slots, vectors FROM ivf_index_info('w_4');
SELECT * FROM ivf_check('w_4');
SET ivf.nprobe = 3;
SELECT id FROM w ORDER BY v <-> array_fill(1.0105::real, ARRAY[2100])::vector LIMIT 3;
RESET ivf.nprobe;
DROP TABLE w;
DROP TABLE f;
DROP TABLE g;
