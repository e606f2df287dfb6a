-- ivfflat: batch search with ivf_search()
CREATE TABLE t (id int PRIMARY KEY, v vector(3));
INSERT INTO t
SELECT i, ARRAY[(i % 4) * 10 + sin(i)::real, (i % 3) * 10 + cos(i)::real, sin(i * 7)::real]::vector(3)
FROM generate_series(1, 2000) i;
CREATE INDEX t_idx ON t USING ivfflat (v) WITH (lists = 12);
CREATE TEMP TABLE qs AS
SELECT n, ARRAY[(n % 5) * 7.5, (n % 4) * 6.1, sin(n)]::vector(3) AS q FROM generate_series(1, 40) n;

-- one-by-one answers through the index, for comparison
SET enable_seqscan = off;
CREATE FUNCTION one_by_one(k int) RETURNS TABLE (n int, ids int[], dists real[]) LANGUAGE sql AS $$
  SELECT qs.n, array_agg(s.id ORDER BY s.r), array_agg(s.d ORDER BY s.r)
  FROM qs CROSS JOIN LATERAL
    (SELECT id, (v <-> qs.q)::real AS d, row_number() OVER () AS r FROM
      (SELECT id, v FROM t ORDER BY v <-> qs.q LIMIT k) x) s
  GROUP BY qs.n $$;
CREATE FUNCTION batch(k int) RETURNS TABLE (n int, ids int[], dists real[]) LANGUAGE sql AS $$
  SELECT s.query, array_agg(t.id ORDER BY s.rank), array_agg(s.distance ORDER BY s.rank)
  FROM ivf_search('t_idx', (SELECT array_agg(q ORDER BY n) FROM qs), k) s
  JOIN t ON t.ctid = s.tid
  GROUP BY s.query $$;
CREATE FUNCTION same(k int) RETURNS bool LANGUAGE sql AS $$
  SELECT count(*) = 40 AND bool_and(a.ids = b.ids AND a.dists = b.dists)
  FROM one_by_one(k) a JOIN batch(k) b USING (n) $$;

SET ivf.nprobe = 2;
SET ivf.search_mode = matrix;
SELECT same(10) AS matrix_same;
SET ivf.search_mode = csr;
SELECT same(10) AS csr_same;
SET ivf.search_mode = auto;
SELECT same(10) AS auto_same, same(1) AS k1, same(50) AS k50;
-- with candidate limits
SET ivf.max_codes = 150;
SET ivf.search_mode = csr;
SELECT same(10) AS csr_max_codes;
SET ivf.search_mode = matrix;
SELECT same(10) AS matrix_max_codes;
RESET ivf.max_codes;
SET ivf.candidate_budget = 100;
SET ivf.budget_strategy = distance_weighted;
SET ivf.search_mode = csr;
SELECT same(10) AS csr_budget;
RESET ivf.candidate_budget;
RESET ivf.budget_strategy;
SET ivf.nprobe = 12;
SELECT same(10) AS all_lists;
-- nprobe as an argument overrides the setting
SELECT count(*) FROM ivf_search('t_idx', ARRAY['[0,0,0]'::vector], 2000, 1);
SELECT count(*) FROM ivf_search('t_idx', ARRAY['[0,0,0]'::vector], 2000);
RESET ivf.search_mode;
RESET ivf.nprobe;

-- the shape of the answer, joined back to the rows
SELECT s.query, s.rank, t.id, round(s.distance::numeric, 3) AS distance
FROM ivf_search('t_idx', ARRAY['[30,20,0]', '[0,0,0]']::vector[], 3, 12) s
JOIN t ON t.ctid = s.tid ORDER BY s.query, s.rank;

-- edge cases and errors
SELECT count(*) FROM ivf_search('t_idx', ARRAY[]::vector[], 5);
SELECT count(*) FROM ivf_search('t_idx', NULL::vector[], 5);
SELECT count(*) FROM ivf_search(NULL, ARRAY['[1,2,3]'::vector], 5);
SELECT * FROM ivf_search('t_idx', ARRAY['[1,2,3]'::vector], 0);
SELECT * FROM ivf_search('t_idx', ARRAY['[1,2,3]'::vector], 5, 0);
SELECT * FROM ivf_search('t_idx', ARRAY['[1,2]'::vector], 5);
SELECT * FROM ivf_search('t_idx', ARRAY['[1,2,3]'::vector, NULL], 5);
SELECT * FROM ivf_search('t_idx', ARRAY[['[1,2,3]'::vector]], 5);
SELECT * FROM ivf_search('t', ARRAY['[1,2,3]'::vector], 5);
SELECT * FROM ivf_search('t_pkey', ARRAY['[1,2,3]'::vector], 5);
SET ivf.search_mode = sideways;

RESET enable_seqscan;
DROP FUNCTION same(int), batch(int), one_by_one(int);
DROP TABLE t;
