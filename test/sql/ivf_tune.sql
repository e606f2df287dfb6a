-- parameter strings (ivf.params, the params option, ivf_set_params),
-- ivf_recall and ivf_autotune
CREATE TABLE tt (id int PRIMARY KEY, v vector(3));
INSERT INTO tt
SELECT i, ARRAY[(i % 4) * 10 + sin(i)::real, (i % 3) * 10 + cos(i)::real, sin(i * 7)::real]::vector(3)
FROM generate_series(1, 3000) i;
CREATE INDEX tt_idx ON tt USING ivfflat (v) WITH (lists = 12);
SET enable_seqscan = off;
-- rows an unlimited scan returns: the sizes of the lists it probes
CREATE FUNCTION n_returned() RETURNS bigint LANGUAGE sql AS
  $$ SELECT count(*) FROM (SELECT id FROM tt ORDER BY v <-> '[12.5,9.5,0.1]') s $$;
SET ivf.nprobe = 1;
SELECT n_returned() AS one_list \gset
SET ivf.nprobe = 3;
SELECT n_returned() AS three_lists \gset
RESET ivf.nprobe;
SELECT :one_list < :three_lists AS lists_differ;

-- the syntax, and errors that name the parameter
SET ivf.params = ' nprobe = 3 , max_codes=0,profile=approx_fast,candidate_budget=0,budget_strategy=distance_weighted';
SHOW ivf.params;
SET ivf.params = 'probes=2';
SET ivf.params = '';
SET ivf.params = 'nprobe=4,foo=1';
SET ivf.params = 'nprobe=0';
SET ivf.params = 'nprobe=3x';
SET ivf.params = 'max_codes=-1';
SET ivf.params = 'profile=fast';
SET ivf.params = 'budget_strategy=';
SET ivf.params = 'nprobe';
SET ivf.params = 'nprobe=1,,max_codes=5';
RESET ivf.params;

-- the index's defaults: used by queries that set nothing
SELECT ivf_set_params('tt_idx', 'NPROBE=3');
SELECT reloptions FROM pg_class WHERE relname = 'tt_idx';
SELECT n_returned() = :three_lists AS index_default_used;
-- a session setting wins over the index's ...
SET ivf.nprobe = 1;
SELECT n_returned() = :one_list AS session_setting_wins;
-- ... and over ivf.params, whichever was set last
SET ivf.params = 'nprobe=3';
SELECT n_returned() = :one_list AS setting_over_params;
RESET ivf.nprobe;
SELECT n_returned() = :three_lists AS params_left;
RESET ivf.params;
-- max_codes from the index, and 0 in ivf.params lifts it again
SELECT ivf_set_params('tt_idx', 'nprobe=3,max_codes=100');
SELECT n_returned() AS limited_by_index;
SET ivf.params = 'max_codes=0';
SELECT n_returned() = :three_lists AS session_lifts_limit;
RESET ivf.params;
-- every list, and ALTER INDEX as the other way to set it
SELECT ivf_set_params('tt_idx', 'nprobe=12');
SELECT n_returned() AS all_rows;
ALTER INDEX tt_idx SET (params = 'nprobe=2,bogus=1');
ALTER INDEX tt_idx SET (params = 'nprobe=1');
SELECT n_returned() = :one_list AS alter_index_works;
SELECT ivf_set_params('tt_idx', 'nprobe=2,unknown=3');
SELECT ivf_set_params('tt_idx', '');
SELECT reloptions FROM pg_class WHERE relname = 'tt_idx';
SELECT ivf_set_params('tt_pkey', 'nprobe=2');
SELECT ivf_set_params('tt', 'nprobe=2');
CREATE ROLE ivf_tune_other;
GRANT SELECT ON tt TO ivf_tune_other;
SET ROLE ivf_tune_other;
SELECT ivf_set_params('tt_idx', 'nprobe=2');
RESET ROLE;

-- ivf_recall: exhaustive search finds everything
SET ivf.nprobe = 12;
SELECT ivf_recall('tt_idx', ARRAY(SELECT v FROM tt WHERE id % 100 = 0), 10) AS recall_all_lists;
SET ivf.nprobe = 1;
SELECT ivf_recall('tt_idx', ARRAY(SELECT v FROM tt WHERE id % 100 = 0), 10) BETWEEN 0 AND 1 AS recall_one_list;
RESET ivf.nprobe;
SELECT ivf_recall('tt_idx', ARRAY['[1,2]'::vector], 10);
SELECT ivf_recall('tt_idx', ARRAY['[1,2,3]'::vector, NULL], 10);
SELECT ivf_recall('tt_idx', '{}'::vector[], 10);
SELECT ivf_recall('tt_idx', ARRAY['[1,2,3]'::vector], 0);

-- ivf_autotune: the frontier (its timings vary, so only its shape is shown)
SET client_min_messages = warning;
CREATE TEMP TABLE frontier AS SELECT * FROM ivf_autotune('tt_idx', 0.9, 10, 100);
SELECT count(*) > 0 AS has_points,
       bool_and(recall BETWEEN 0 AND 1 AND ms_per_query >= 0) AS sane,
       bool_and(params ~ '^nprobe=[0-9]+,max_codes=[0-9]+,profile=[a-z_]+$') AS full_params
FROM frontier;
-- faster points are less accurate, or they would not be on it
SELECT bool_and(recall > prev) AS recall_rises_with_time FROM
  (SELECT recall, lag(recall, 1, -1) OVER (ORDER BY ms_per_query) AS prev FROM frontier) f;
SHOW ivf.nprobe;
-- apply: the cheapest point reaching the target becomes the index's params
SELECT count(*) > 0 AS applied FROM ivf_autotune('tt_idx', 0.0, 10, 50, apply => true);
SELECT array_to_string(reloptions, ',') ~ 'params=nprobe=[0-9]+,max_codes=[0-9]+,profile=' AS stored
FROM pg_class WHERE relname = 'tt_idx';
RESET client_min_messages;
SELECT * FROM ivf_autotune('tt_idx', 1.5);
SELECT * FROM ivf_autotune('tt_idx', 0.9, 0);
SELECT * FROM ivf_autotune('tt_idx', 0.9, 10, 0);
SELECT * FROM ivf_autotune('tt_pkey');
CREATE TABLE empty_t (v vector(3));
CREATE INDEX empty_idx ON empty_t USING ivfflat (v) WITH (lists = 1);
SELECT * FROM ivf_autotune('empty_idx');
SET ROLE ivf_tune_other;
SET client_min_messages = warning;
SELECT count(*) FROM ivf_autotune('tt_idx', 0.0, 10, 20, apply => true);
RESET client_min_messages;
RESET ROLE;
DROP TABLE tt, empty_t;
DROP FUNCTION n_returned();
DROP ROLE ivf_tune_other;
