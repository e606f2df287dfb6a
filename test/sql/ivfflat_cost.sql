-- ivfflat: the planner picks the index for realistic embedding sizes
-- without enable_* settings (vectors above ~500 dimensions are TOASTed,
-- which the planner's sequential-scan cost does not see).
CREATE TABLE e384 (id int, v vector(384));
INSERT INTO e384
SELECT i, (SELECT array_agg(sin(i * 0.37 + j * 1.3 + (i % 17)))::vector(384) FROM generate_series(1, 384) j)
FROM generate_series(1, 3000) i;
CREATE INDEX ON e384 USING ivfflat (v) WITH (lists = 30);
ANALYZE e384;
EXPLAIN (COSTS OFF)
SELECT id FROM e384 ORDER BY v <-> (SELECT v FROM e384 WHERE id = 1) LIMIT 10;

CREATE TABLE e1536 (id int, v vector(1536));
INSERT INTO e1536
SELECT i, (SELECT array_agg(cos(i * 0.11 + j * 0.7 + (i % 13)))::vector(1536) FROM generate_series(1, 1536) j)
FROM generate_series(1, 2000) i;
CREATE INDEX ON e1536 USING ivfflat (v vector_cosine_ops) WITH (lists = 20);
ANALYZE e1536;
EXPLAIN (COSTS OFF)
SELECT id FROM e1536 ORDER BY v <=> (SELECT v FROM e1536 WHERE id = 1) LIMIT 10;
-- the nearest neighbour of a stored vector is itself
SELECT id FROM e1536 ORDER BY v <=> (SELECT v FROM e1536 WHERE id = 7) LIMIT 1;

-- vectors wider than a page (split over segment pages)
CREATE TABLE e3072 (id int, v vector(3072));
INSERT INTO e3072
SELECT i, (SELECT array_agg(sin(i * 0.05 + j * 0.3))::vector(3072) FROM generate_series(1, 3072) j)
FROM generate_series(1, 300) i;
CREATE INDEX e3072_idx ON e3072 USING ivfflat (v) WITH (lists = 4);
SELECT dims, vectors, vectors_per_group FROM ivf_index_info('e3072_idx');
SELECT * FROM ivf_check('e3072_idx');
SET ivf.nprobe = 4;
SET enable_seqscan = off;
SELECT id FROM e3072 ORDER BY v <-> (SELECT v FROM e3072 WHERE id = 42) LIMIT 3;
SELECT array_agg(id) = (SELECT array_agg(id) FROM (SELECT id FROM e3072 ORDER BY (v <-> (SELECT v FROM e3072 WHERE id = 42)) + 0, id LIMIT 10) x) AS exact
FROM (SELECT id FROM e3072 ORDER BY v <-> (SELECT v FROM e3072 WHERE id = 42) LIMIT 10) s;
DELETE FROM e3072 WHERE id % 2 = 0;
VACUUM e3072;
SELECT vectors, dead_slots FROM ivf_index_info('e3072_idx');
SELECT * FROM ivf_check('e3072_idx');
INSERT INTO e3072 SELECT id + 1000, v FROM e3072 WHERE id < 100;
SELECT * FROM ivf_check('e3072_idx');
SELECT count(*) FROM (SELECT id FROM e3072 ORDER BY v <-> (SELECT v FROM e3072 WHERE id = 41)) s;

-- the widest vectors: eight pages per group
CREATE TABLE e16k (id int, v vector(16000));
INSERT INTO e16k
SELECT i, (SELECT array_agg(((i * 7919 + j * 104729) % 1000) / 1000.0)::vector(16000) FROM generate_series(1, 16000) j)
FROM generate_series(1, 24) i;
CREATE INDEX e16k_idx ON e16k USING ivfflat (v) WITH (lists = 2);
SELECT dims, vectors, vectors_per_group FROM ivf_index_info('e16k_idx');
SELECT * FROM ivf_check('e16k_idx');
SET ivf.nprobe = 2;
SELECT array_agg(id) = (SELECT array_agg(id) FROM (SELECT id FROM e16k ORDER BY (v <-> (SELECT v FROM e16k WHERE id = 5)) + 0, id LIMIT 5) x) AS exact
FROM (SELECT id FROM e16k ORDER BY v <-> (SELECT v FROM e16k WHERE id = 5) LIMIT 5) s;
DELETE FROM e16k WHERE id < 10;
VACUUM e16k;
SELECT vectors, dead_slots FROM ivf_index_info('e16k_idx');
SELECT * FROM ivf_check('e16k_idx');
RESET enable_seqscan;
RESET ivf.nprobe;

DROP TABLE e384, e1536, e3072, e16k;
