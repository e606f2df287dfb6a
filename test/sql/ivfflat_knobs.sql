-- ivfflat: candidate limits (max_codes, profiles, budgets) and iterative scans
CREATE TABLE t (id int PRIMARY KEY, v vector(3), cat int);
INSERT INTO t
SELECT i, ARRAY[(i % 4) * 10 + sin(i)::real, (i % 3) * 10 + cos(i)::real, sin(i * 7)::real]::vector(3), i % 5
FROM generate_series(1, 2000) i;
CREATE INDEX t_idx ON t USING ivfflat (v) WITH (lists = 12);
SET enable_seqscan = off;
SET ivf.nprobe = 3;
CREATE TEMP TABLE q AS SELECT '[12.5,9.5,0.1]'::vector AS q;
CREATE FUNCTION n_returned() RETURNS bigint LANGUAGE sql AS
  $$ SELECT count(*) FROM (SELECT id FROM t ORDER BY v <-> (SELECT q FROM q)) s $$;
CREATE FUNCTION ordered() RETURNS bool LANGUAGE sql AS
  $$ SELECT coalesce(bool_and(d >= prev), true) FROM
     (SELECT d, lag(d, 1, 0::float8) OVER () AS prev FROM
      (SELECT v <-> (SELECT q FROM q) AS d FROM t ORDER BY v <-> (SELECT q FROM q)) a) b $$;
SELECT n_returned() AS unlimited \gset

-- max_codes: at most that many vectors examined, the last list cut exactly
SET ivf.max_codes = 100;
SELECT n_returned(), ordered();
SET ivf.max_codes = 1;
SELECT n_returned();
SET ivf.max_codes = 1000000;
SELECT n_returned() = :unlimited AS same_as_unlimited;
-- a budget keeps the nearest lists' candidates: a prefix of the unlimited scan's
SET ivf.max_codes = 400;
CREATE TEMP TABLE limited AS SELECT id, row_number() OVER () AS r FROM
  (SELECT id FROM t ORDER BY v <-> (SELECT q FROM q)) s;
RESET ivf.max_codes;
SET ivf.nprobe = 1;
SELECT count(*) AS nearest_list_size FROM (SELECT id FROM t ORDER BY v <-> (SELECT q FROM q)) s;
SELECT bool_and(id IN (SELECT id FROM limited)) AS nearest_list_kept
FROM (SELECT id FROM t ORDER BY v <-> (SELECT q FROM q)) s;
SET ivf.nprobe = 3;
RESET ivf.max_codes;
SET ivf.max_codes = -1;

-- profiles and per-list budgets
SHOW ivf.profile;
SET ivf.profile = approx_fast;        -- 32768 candidates: more than this table
SELECT n_returned() = :unlimited AS same_as_unlimited;
SET ivf.candidate_budget = 30;        -- overrides the profile: ceil(30/3) per list
SELECT n_returned(), ordered();
SET ivf.budget_strategy = distance_weighted;
SELECT n_returned(), ordered();
SET ivf.candidate_budget = 300;
SELECT n_returned() <= 300 + 3 AS within_budget, ordered();
RESET ivf.budget_strategy;
RESET ivf.candidate_budget;
SET ivf.profile = exact;
SELECT n_returned() = :unlimited AS same_as_unlimited;
SET ivf.profile = fastest;
SET ivf.budget_strategy = nearest;
SET ivf.candidate_budget = -5;
RESET ivf.profile;

-- iterative scans: rows of a far cluster (id % 12 = 6) are not in the
-- nearest list, yet the filtered query still gets its LIMIT
SET ivf.nprobe = 1;
SELECT count(*) AS without_iterative FROM
  (SELECT id FROM t WHERE cat = 1 AND id % 12 = 6 ORDER BY v <-> (SELECT q FROM q) LIMIT 10) s;
SET ivf.iterative_scan = relaxed_order;
SELECT count(*) AS relaxed FROM
  (SELECT id FROM t WHERE cat = 1 AND id % 12 = 6 ORDER BY v <-> (SELECT q FROM q) LIMIT 10) s;
-- the matching rows all live in one list, so the rows found are the exact answer
SELECT array_agg(id ORDER BY id) = (SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM t WHERE cat = 1 AND id % 12 = 6 ORDER BY v <-> (SELECT q FROM q), id LIMIT 10) e) AS exact_set
FROM (SELECT id FROM t WHERE cat = 1 AND id % 12 = 6 ORDER BY v <-> (SELECT q FROM q) LIMIT 10) s;
SET ivf.iterative_scan = strict_order;
SELECT count(*) AS strict, bool_and(d >= prev) AS ordered FROM
  (SELECT d, lag(d, 1, 0::float8) OVER () AS prev FROM
    (SELECT v <-> (SELECT q FROM q) AS d FROM t WHERE cat = 1 AND id % 12 = 6 ORDER BY v <-> (SELECT q FROM q) LIMIT 10) a) b;
-- ivf.max_nprobe bounds the lists an iterative scan visits
SET ivf.iterative_scan = relaxed_order;
SET ivf.max_nprobe = 2;
SELECT n_returned() < :unlimited AS bounded;
RESET ivf.max_nprobe;
SELECT n_returned() AS all_rows;
RESET ivf.iterative_scan;
-- pgvector's names
SET ivfflat.iterative_scan = relaxed_order;
SET ivfflat.max_probes = 12;
SELECT count(*) AS relaxed_alias FROM
  (SELECT id FROM t WHERE cat = 1 AND id % 12 = 6 ORDER BY v <-> (SELECT q FROM q) LIMIT 10) s;
SET ivf.iterative_scan = off;
SELECT count(*) AS alias_still_on FROM
  (SELECT id FROM t WHERE cat = 1 AND id % 12 = 6 ORDER BY v <-> (SELECT q FROM q) LIMIT 10) s;
SET ivfflat.iterative_scan = off;
SELECT count(*) < 10 AS off_again FROM
  (SELECT id FROM t WHERE cat = 1 AND id % 12 = 6 ORDER BY v <-> (SELECT q FROM q) LIMIT 10) s;
-- without pgvector they are placeholders: a bad value fails the next scan,
-- naming it
SET ivfflat.iterative_scan = sideways;
SELECT n_returned();
RESET ivfflat.iterative_scan;
SET ivfflat.max_probes = 99999;
SET ivf.iterative_scan = relaxed_order;
SELECT n_returned();
RESET ivf.iterative_scan;
SELECT n_returned() > 0 AS max_probes_unused_without_iterative;
RESET ivfflat.max_probes;
SET ivfflat.probes = 'three';
SELECT n_returned();
SET ivfflat.probes = 0;               -- 0: not set, the index's default (3)
RESET ivf.nprobe;
SELECT n_returned() = :unlimited AS index_default;
SET ivf.nprobe = 3;
RESET ivfflat.probes;

RESET ivf.nprobe;
RESET enable_seqscan;
DROP FUNCTION n_returned(), ordered();
DROP TABLE t;

-- list_ordering = residual_norm_asc: each list is stored nearest to its
-- centroid first, so a budget reads the likeliest neighbours first
CREATE TABLE o (id int, v vector(2));
INSERT INTO o SELECT i, ARRAY[(i % 2) * 100 + sin(i) * (i % 50), cos(i) * (i % 50)]::vector(2)
FROM generate_series(1, 1000) i;
CREATE INDEX o_plain ON o USING ivfflat (v) WITH (lists = 2);
CREATE INDEX o_ord ON o USING ivfflat (v) WITH (lists = 2, list_ordering = residual_norm_asc);
SELECT list_ordering, vectors FROM ivf_index_info('o_ord');
SELECT * FROM ivf_check('o_ord');
CREATE INDEX ON o USING ivfflat (v) WITH (list_ordering = random);
SET enable_seqscan = off;
SET ivf.nprobe = 1;
SET ivf.max_codes = 20;
-- the 20 vectors read from the ordered index are the 20 nearest to its
-- centroid; from the other index, whichever came first in the table
DROP INDEX o_plain;
SELECT max(v <-> '[100,0]') < 10 AS near_centroid_first FROM (SELECT v FROM o ORDER BY v <-> '[100,0]') s;
DROP INDEX o_ord;
CREATE INDEX o_plain ON o USING ivfflat (v) WITH (lists = 2);
SELECT max(v <-> '[100,0]') < 10 AS near_centroid_first FROM (SELECT v FROM o ORDER BY v <-> '[100,0]') s;
-- rows inserted later go after the ordered part of their list: a budget
-- that covers only the ordered prefix does not reach them
DROP INDEX o_plain;
CREATE INDEX o_ord ON o USING ivfflat (v) WITH (lists = 2, list_ordering = residual_norm_asc);
INSERT INTO o VALUES (5000, '[100,0.01]');
SELECT count(*) FILTER (WHERE id = 5000) AS new_row_within_20 FROM (SELECT id FROM o ORDER BY v <-> '[100,0]') s;
RESET ivf.max_codes;
SELECT id FROM o ORDER BY v <-> '[100,0]' LIMIT 1;
RESET ivf.nprobe;
RESET enable_seqscan;
DROP TABLE o;

-- precedence, from the values alone: ivf.* knob > ivf.params > pgvector's
-- ivfflat.* name > the index's params > its defaults.  The order of SET,
-- when the library was loaded, and a parallel worker's restoring of the
-- settings change nothing.
CREATE TABLE p (id int, v vector(3));
INSERT INTO p
SELECT i, ARRAY[(i % 4) * 10 + sin(i)::real, (i % 3) * 10 + cos(i)::real, sin(i * 7)::real]::vector(3)
FROM generate_series(1, 2000) i;
CREATE INDEX p_idx ON p USING ivfflat (v) WITH (lists = 12);
ANALYZE p;
CREATE FUNCTION p_returned() RETURNS bigint LANGUAGE sql PARALLEL SAFE AS
  $$ SELECT count(*) FROM (SELECT id FROM p ORDER BY v <-> '[12.5,9.5,0.1]') s $$;
SET enable_seqscan = off;
SET ivf.nprobe = 1;
SELECT p_returned() AS one_list \gset
SET ivf.nprobe = 12;
SELECT p_returned() AS all_lists \gset
SELECT :one_list < :all_lists AS one_list_fewer;
\c -
-- before the library is loaded: both orders act as ivf.nprobe = 1
SET enable_seqscan = off;
SET ivfflat.probes = 12;
SET ivf.nprobe = 1;
SELECT p_returned() = :one_list AS nprobe_wins;
\c -
SET enable_seqscan = off;
SET ivf.nprobe = 1;
SET ivfflat.probes = 12;
SELECT p_returned() = :one_list AS nprobe_wins;
\c -
-- after it: the same
LOAD 'ivf';
SET enable_seqscan = off;
SET ivfflat.probes = 12;
SET ivf.nprobe = 1;
SELECT p_returned() = :one_list AS nprobe_wins;
RESET ivf.nprobe;
RESET ivfflat.probes;
SET ivf.nprobe = 1;
SET ivfflat.probes = 12;
SELECT p_returned() = :one_list AS nprobe_wins;
RESET ivf.nprobe;
SELECT p_returned() = :all_lists AS alias_without_nprobe;
-- ivf.params beats the alias and the index's params; the knob beats ivf.params
SET ivf.params = 'nprobe=1';
SELECT p_returned() = :one_list AS params_over_alias;
SET ivf.nprobe = 12;
SELECT p_returned() = :all_lists AS nprobe_over_params;
RESET ivf.nprobe;
RESET ivf.params;
ALTER INDEX p_idx SET (params = 'nprobe=12');
SET ivfflat.probes = 1;
SELECT p_returned() = :one_list AS alias_over_index_params;
RESET ivfflat.probes;
SELECT p_returned() = :all_lists AS index_params;
ALTER INDEX p_idx RESET (params);
SET ivf.max_codes = 50;
SET ivf.params = 'max_codes=400';
SELECT p_returned() AS max_codes_knob_wins;
RESET ivf.max_codes;
SELECT p_returned() AS max_codes_from_params;
RESET ivf.params;
-- a parallel worker restores the settings in its own order (by name): it
-- must resolve them as the leader does
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                  THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END, 'on', false) AS forced;
SET ivfflat.probes = 12;
SET ivf.nprobe = 1;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT id FROM p ORDER BY v <-> '[12.5,9.5,0.1]';
SELECT count(*) = :one_list AS worker_nprobe_wins
FROM (SELECT id FROM p ORDER BY v <-> '[12.5,9.5,0.1]') s;
SET ivf.max_codes = 50;
SET ivf.params = 'max_codes=400,nprobe=12';
SELECT count(*) AS worker_max_codes_knob_wins
FROM (SELECT id FROM p ORDER BY v <-> '[12.5,9.5,0.1]') s;
RESET ALL;
DROP FUNCTION p_returned();
DROP TABLE p;
