-- The access method under the name ivf: the same index as ivfflat, and
-- everything that takes an ivfflat index takes it.
\set VERBOSITY default

SELECT amname, amhandler FROM pg_am WHERE amname IN ('ivf', 'ivfflat') ORDER BY amname;
SELECT opcname FROM pg_opclass c JOIN pg_am a ON a.oid = c.opcmethod
	WHERE a.amname = 'ivf' ORDER BY opcname;

CREATE TABLE am_items (id int, v vector(3));
INSERT INTO am_items SELECT i, ARRAY[i % 7, i % 11, i % 13]::real[]
	FROM generate_series(1, 300) i;

CREATE INDEX am_items_l2 ON am_items USING ivf (v vector_l2_ops) WITH (lists = 4);
CREATE INDEX am_items_ip ON am_items USING ivf (v vector_ip_ops) WITH (lists = 4);
CREATE INDEX am_items_cos ON am_items USING ivf (v vector_cosine_ops) WITH (lists = 4);
-- the default opclass for vector under ivf
CREATE INDEX am_items_default ON am_items USING ivf (v) WITH (lists = 2);
SELECT indexrelid::regclass, opcname FROM pg_index i JOIN pg_opclass c ON c.oid = i.indclass[0]
	WHERE indrelid = 'am_items'::regclass ORDER BY 1;
DROP INDEX am_items_default;

SET enable_seqscan = off;
SET ivf.nprobe = 4;
EXPLAIN (COSTS OFF) SELECT id FROM am_items ORDER BY v <-> '[1,2,3]' LIMIT 3;
EXPLAIN (COSTS OFF) SELECT id FROM am_items ORDER BY v <#> '[1,2,3]' LIMIT 3;
EXPLAIN (COSTS OFF) SELECT id FROM am_items ORDER BY v <=> '[1,2,3]' LIMIT 3;
-- nprobe = lists: the exact answer (the first 3 have no ties past them)
SELECT id, v <-> '[1,2,3]' AS d FROM am_items ORDER BY v <-> '[1,2,3]' LIMIT 3;
SELECT id, v <#> '[1,2,3]' AS d FROM am_items ORDER BY v <#> '[1,2,3]' LIMIT 1;
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT id, v <-> '[1,2,3]' AS d FROM am_items ORDER BY v <-> '[1,2,3]' LIMIT 3;
SELECT id, v <#> '[1,2,3]' AS d FROM am_items ORDER BY v <#> '[1,2,3]' LIMIT 1;
RESET enable_indexscan;

-- the SQL functions accept it
SELECT count(*) AS problems FROM ivf_check('am_items_l2');
SELECT metric, dims, lists, vectors FROM ivf_index_info('am_items_l2');
SELECT metric FROM ivf_index_info('am_items_cos');
SELECT s.rank, t.id FROM ivf_search('am_items_l2', ARRAY['[1,2,3]'::vector], 3) s
	JOIN am_items t ON t.ctid = s.tid ORDER BY s.rank;
SELECT ivf_recall('am_items_l2', ARRAY['[1,2,3]'::vector, '[6,10,12]'], 5);
SELECT ivf_set_params('am_items_l2', 'nprobe=4');

-- inserts and vacuum go through the same code
INSERT INTO am_items VALUES (1000, '[1,2,3]');
DELETE FROM am_items WHERE id < 10;
VACUUM am_items;
SELECT count(*) AS problems FROM ivf_check('am_items_l2');
SELECT vectors FROM ivf_index_info('am_items_l2');

-- a btree index is not one
CREATE INDEX am_items_id ON am_items (id);
SELECT * FROM ivf_check('am_items_id');

-- messages name the index's access method (or "ivf" where no index of
-- this extension is at hand), not ivfflat
SELECT * FROM ivf_search('am_items_id', ARRAY['[1,2,3]'::vector], 1);
CREATE TABLE am_empty (v vector(3));
CREATE INDEX am_empty_ivf ON am_empty USING ivf (v) WITH (lists = 2);
CREATE INDEX am_empty_ivfflat ON am_empty USING ivfflat (v) WITH (lists = 2);
INSERT INTO am_empty SELECT ARRAY[i, 1, 1] FROM generate_series(1, 3) i;
CREATE INDEX am_few ON am_empty USING ivf (v) WITH (lists = 5);
CREATE INDEX am_bad_params ON am_empty USING ivf (v) WITH (params = 'nprobe=0');
CREATE TABLE am_nodims (v halfvec);
CREATE INDEX ON am_nodims USING ivf (v halfvec_l2_ops);
CREATE INDEX ON am_nodims USING ivfflat ((v::vector) vector_l2_ops);
-- amvalidate: a support function 1 of the wrong signature
CREATE OPERATOR CLASS am_bad_ops FOR TYPE vector USING ivf AS
	OPERATOR 1 <-> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 vector_norm(vector);
SELECT amvalidate(oid) FROM pg_opclass WHERE opcname = 'am_bad_ops';
DROP OPERATOR FAMILY am_bad_ops USING ivf;
DROP TABLE am_empty, am_nodims;

RESET ivf.nprobe;
DROP TABLE am_items;

-- pgvector's ivfflat.probes tunes an index of the access method named
-- ivfflat, not one named ivf.  ivf remembers the answer per access method
-- instead of looking the name up at every scan: scans of both, in turn in
-- one session and one statement, each get their own.
CREATE TABLE am_alias (id int, v vector(3));
INSERT INTO am_alias SELECT i, ARRAY[i % 7, i % 11, i % 13]::real[]
	FROM generate_series(1, 300) i;
CREATE TABLE am_alias2 (LIKE am_alias);
INSERT INTO am_alias2 SELECT * FROM am_alias;
CREATE INDEX am_alias_ivfflat ON am_alias USING ivfflat (v) WITH (lists = 4, nprobe = 1);
CREATE INDEX am_alias_ivf ON am_alias2 USING ivf (v) WITH (lists = 4, nprobe = 1);
CREATE FUNCTION am_alias_rows(t regclass) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
	EXECUTE format('SELECT count(*) FROM (SELECT id FROM %s ORDER BY v <-> %L) s', t, '[1,2,3]') INTO n;
	RETURN n;
END $$;
SET enable_seqscan = off;
SELECT am_alias_rows('am_alias2') AS one_list \gset
SELECT :one_list < 300 AS one_list_is_not_all;
SET ivfflat.probes = 4;
SELECT i, am_alias_rows('am_alias') AS ivfflat_rows,
	am_alias_rows('am_alias2') = :one_list AS ivf_ignores_probes,
	am_alias_rows('am_alias') AS ivfflat_rows_again
	FROM generate_series(1, 2) i;
RESET ivfflat.probes;
SELECT am_alias_rows('am_alias') = :one_list AS ivfflat_default;
RESET enable_seqscan;
DROP FUNCTION am_alias_rows(regclass);
DROP TABLE am_alias, am_alias2;
