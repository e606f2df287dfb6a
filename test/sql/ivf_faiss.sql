-- Faiss interop: ivf_export_faiss(), the centroids option, ivf_faiss_id()
-- and ivf_faiss_tid().
--
-- Files go to /tmp under names made from the server's port, so that two
-- test clusters never share one; where a message holds such a path,
-- faiss_try() shows it as $DIR (and an export's temporary name's process
-- id as PID), with the SQLSTATE.
SELECT '/tmp/ivf_faiss_regress_' || current_setting('port') AS dir \gset
SELECT :'dir' || '_l2.faiss' AS l2file, :'dir' || '_cos.faiss' AS cosfile,
       :'dir' || '_empty.faiss' AS emptyfile, :'dir' || '_junk.faiss' AS junkfile,
       :'dir' || '_user.faiss' AS userfile \gset
SELECT set_config('regress_ivf.dir', :'dir', false) IS NOT NULL AS dir_set;
CREATE FUNCTION faiss_try(cmd text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	msg text;
	det text;
	dir text := current_setting('regress_ivf.dir');
BEGIN
	EXECUTE cmd;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
	msg := SQLSTATE || ': ' || msg || coalesce(E'\nDETAIL: ' || nullif(det, ''), '');
	RETURN regexp_replace(replace(msg, dir, '$DIR'), '\.[0-9]+\.tmp', '.PID.tmp', 'g');
END $$;

-- ids: block * 65536 + offset, and back
SELECT ivf_faiss_id('(0,1)') AS first_row, ivf_faiss_id('(1,1)') AS block_1,
       ivf_faiss_id('(4294967295,65535)') AS largest;
SELECT ivf_faiss_tid(1), ivf_faiss_tid(65537), ivf_faiss_tid(2048),
       ivf_faiss_tid(281474976581632) AS last_row;
SELECT ivf_faiss_tid(-1);
SELECT ivf_faiss_tid(281474976710656);
SELECT ivf_faiss_tid(-9223372036854775808);
-- nor ids of tids no row has: offset 0 or past MaxOffsetNumber (2048 with
-- 8 kB pages), block 2^32 - 1 (InvalidBlockNumber)
SELECT ivf_faiss_tid(0);
SELECT ivf_faiss_tid(65536);
SELECT ivf_faiss_tid(2049);
SELECT ivf_faiss_tid(65535);
SELECT ivf_faiss_tid(281474976645121);
SELECT ivf_faiss_tid(281474976710655);

CREATE TABLE faiss_t (id int, v vector(4));
INSERT INTO faiss_t
SELECT i, ARRAY[(i % 5) * 3 + sin(i)::real, (i % 3) * 4 + cos(i)::real,
                sin(i * 0.7)::real, (i % 7)::real]::vector(4)
FROM generate_series(1, 1000) i;
SELECT count(*) AS round_trip_differs FROM faiss_t
WHERE ivf_faiss_tid(ivf_faiss_id(ctid)) <> ctid;
CREATE INDEX faiss_l2 ON faiss_t USING ivfflat (v vector_l2_ops) WITH (lists = 8);

-- export: the whole index, a Faiss IndexIVFFlat ("IwFl")
SELECT ivf_export_faiss('faiss_l2', :'l2file') AS exported;
SELECT encode(pg_read_binary_file(:'l2file', 0, 4), 'escape') AS fourcc,
       (pg_stat_file(:'l2file')).size AS bytes;
-- again over the same file; no temporary file is left behind
SELECT ivf_export_faiss('faiss_l2', :'l2file') AS exported_again;
SELECT count(*) AS temporary_files FROM pg_ls_dir('/tmp') f
WHERE f LIKE 'ivf_faiss_regress_' || current_setting('port') || '%.tmp';

-- import: the same centroids give the same lists, hence the same answers
CREATE INDEX faiss_l2_imported ON faiss_t USING ivfflat (v vector_l2_ops)
WITH (centroids = :'l2file');
SELECT lists, lists_requested, trained_on, built_vectors, vectors, prefilter
FROM ivf_index_info('faiss_l2_imported');
SELECT * FROM ivf_check('faiss_l2_imported');
CREATE TEMP TABLE faiss_q AS
SELECT array_agg(ARRAY[(n % 5) * 3.1, (n % 3) * 3.9, sin(n), n % 7]::vector(4)) AS qs
FROM generate_series(1, 30) n;
CREATE FUNCTION faiss_differences(a regclass, b regclass, nprobe int) RETURNS bigint
LANGUAGE sql AS $$
  SELECT count(*) FROM (
    (SELECT * FROM ivf_search(a, (SELECT qs FROM faiss_q), 5, nprobe)
     EXCEPT SELECT * FROM ivf_search(b, (SELECT qs FROM faiss_q), 5, nprobe))
    UNION ALL
    (SELECT * FROM ivf_search(b, (SELECT qs FROM faiss_q), 5, nprobe)
     EXCEPT SELECT * FROM ivf_search(a, (SELECT qs FROM faiss_q), 5, nprobe))) d $$;
SELECT faiss_differences('faiss_l2', 'faiss_l2_imported', 1) AS nprobe_1,
       faiss_differences('faiss_l2', 'faiss_l2_imported', 3) AS nprobe_3;
-- lists may be given when they agree, prefilter may be off
CREATE INDEX faiss_l2_flat ON faiss_t USING ivfflat (v vector_l2_ops)
WITH (centroids = :'l2file', lists = 8, prefilter = false);
SELECT lists, prefilter FROM ivf_index_info('faiss_l2_flat');
SELECT faiss_differences('faiss_l2', 'faiss_l2_flat', 2) AS no_prefilter;
-- REINDEX reads the file again
REINDEX INDEX faiss_l2_imported;
SELECT faiss_differences('faiss_l2', 'faiss_l2_imported', 2) AS after_reindex;
DROP INDEX faiss_l2_flat;

-- cosine: unit vectors and centroids, exported as inner product
CREATE INDEX faiss_cos ON faiss_t USING ivfflat (v vector_cosine_ops) WITH (lists = 6);
SELECT ivf_export_faiss('faiss_cos', :'cosfile') AS exported_cosine;
CREATE INDEX faiss_cos_imported ON faiss_t USING ivfflat (v vector_cosine_ops)
WITH (centroids = :'cosfile');
CREATE INDEX faiss_ip_imported ON faiss_t USING ivfflat (v vector_ip_ops)
WITH (centroids = :'cosfile');
SELECT metric, lists, vectors FROM ivf_index_info('faiss_cos_imported')
UNION ALL
SELECT metric, lists, vectors FROM ivf_index_info('faiss_ip_imported');
DROP INDEX faiss_cos_imported, faiss_ip_imported;

-- what does not fit is refused, naming what and why
SELECT faiss_try(format('CREATE INDEX faiss_bad ON faiss_t USING ivfflat (v vector_ip_ops) WITH (centroids = %L)', :'l2file'));
SELECT faiss_try(format('CREATE INDEX faiss_bad ON faiss_t USING ivfflat (v vector_cosine_ops) WITH (centroids = %L)', :'l2file'));
SELECT faiss_try(format('CREATE INDEX faiss_bad ON faiss_t USING ivfflat (v vector_l2_ops) WITH (centroids = %L)', :'cosfile'));
SELECT faiss_try(format('CREATE INDEX faiss_bad ON faiss_t USING ivfflat (v vector_l2_ops) WITH (centroids = %L, lists = 9)', :'l2file'));
CREATE TABLE faiss_t3 (v vector(3));
SELECT faiss_try(format('CREATE INDEX faiss_bad ON faiss_t3 USING ivfflat (v vector_l2_ops) WITH (centroids = %L)', :'l2file'));
COPY (SELECT 'this is not a Faiss file') TO :'junkfile';
SELECT faiss_try(format('CREATE INDEX faiss_bad ON faiss_t USING ivfflat (v vector_l2_ops) WITH (centroids = %L)', :'junkfile'));
CREATE INDEX faiss_bad ON faiss_t USING ivfflat (v vector_l2_ops)
WITH (centroids = '/tmp');
CREATE INDEX faiss_bad ON faiss_t USING ivfflat (v vector_l2_ops)
WITH (centroids = '/nonexistent/ivf_faiss_regress.faiss');
CREATE INDEX faiss_bad ON faiss_t USING ivfflat (v vector_l2_ops)
WITH (centroids = 'relative/path.faiss');
CREATE INDEX faiss_bad ON faiss_t USING ivfflat (v vector_l2_ops)
WITH (centroids = '');
SELECT ivf_export_faiss('faiss_l2', 'relative/path.faiss');
SELECT faiss_try(format('SELECT ivf_export_faiss(%L, %L)', 'faiss_l2', '/nonexistent/dir/x.faiss'));
CREATE INDEX faiss_btree ON faiss_t (id);
SELECT ivf_export_faiss('faiss_btree', :'junkfile');
SELECT ivf_export_faiss('faiss_t', :'junkfile');
DROP INDEX faiss_btree;
ALTER INDEX faiss_l2 SET (centroids = 'relative/path.faiss');
-- REINDEX of a file that is gone or broken fails and keeps the index
SELECT faiss_try('ALTER INDEX faiss_l2_imported SET (centroids = ''/nonexistent/ivf_faiss_regress.faiss'')');
REINDEX INDEX faiss_l2_imported;
SELECT faiss_try(format('ALTER INDEX faiss_l2_imported SET (centroids = %L)', :'junkfile'));
SELECT faiss_try('REINDEX INDEX faiss_l2_imported');
SELECT count(*) AS still_there FROM ivf_search('faiss_l2_imported', (SELECT qs FROM faiss_q), 1);
DROP INDEX faiss_l2_imported;

-- an empty index, and an index around file centroids on an empty table
CREATE TABLE faiss_empty (v vector(4));
CREATE INDEX faiss_empty_idx ON faiss_empty USING ivfflat (v vector_l2_ops);
SELECT ivf_export_faiss('faiss_empty_idx', :'emptyfile') AS exported_empty;
CREATE INDEX faiss_empty_imported ON faiss_empty USING ivfflat (v vector_l2_ops)
WITH (centroids = :'emptyfile');
CREATE INDEX faiss_empty_l2 ON faiss_empty USING ivfflat (v vector_l2_ops)
WITH (centroids = :'l2file');
SELECT lists, vectors FROM ivf_index_info('faiss_empty_imported')
UNION ALL
SELECT lists, vectors FROM ivf_index_info('faiss_empty_l2');
INSERT INTO faiss_empty SELECT v FROM faiss_t WHERE id <= 10;
SELECT ivf_export_faiss('faiss_empty_l2', :'emptyfile') AS after_inserts;
DROP TABLE faiss_empty;

-- dead rows: in the index (and the file) until VACUUM removes them
DELETE FROM faiss_t WHERE id % 2 = 0;
SELECT ivf_export_faiss('faiss_l2', :'l2file') AS before_vacuum;
VACUUM faiss_t;
SELECT ivf_export_faiss('faiss_l2', :'l2file') AS after_vacuum,
       ivf_export_faiss('faiss_cos', :'cosfile') AS cosine_after_vacuum,
       (SELECT count(*) FROM faiss_t) AS rows;
-- and the file still builds an index with the same lists
CREATE INDEX faiss_l2_again ON faiss_t USING ivfflat (v vector_l2_ops)
WITH (centroids = :'l2file');
SELECT faiss_differences('faiss_l2', 'faiss_l2_again', 2) AS after_vacuum_differences;
DROP INDEX faiss_l2_again;

-- privileges: writing needs pg_write_server_files, reading
-- pg_read_server_files (a build runs as the table's owner)
CREATE ROLE regress_ivf_faiss;
CREATE SCHEMA regress_ivf_faiss AUTHORIZATION regress_ivf_faiss;
CREATE TABLE regress_ivf_faiss.faiss_own (v vector(4));
ALTER TABLE regress_ivf_faiss.faiss_own OWNER TO regress_ivf_faiss;
INSERT INTO regress_ivf_faiss.faiss_own SELECT v FROM faiss_t;
CREATE INDEX faiss_own_idx ON regress_ivf_faiss.faiss_own USING ivfflat (v vector_l2_ops)
WITH (lists = 4);
SET ROLE regress_ivf_faiss;
SELECT ivf_export_faiss('regress_ivf_faiss.faiss_own_idx', :'userfile');
SELECT ivf_export_faiss('faiss_l2', :'userfile');
SELECT faiss_try(format('CREATE INDEX faiss_own_imported ON regress_ivf_faiss.faiss_own USING ivfflat (v vector_l2_ops) WITH (centroids = %L)', :'l2file'));
RESET ROLE;
-- a REINDEX by a superuser also reads the file as the table's owner
ALTER INDEX regress_ivf_faiss.faiss_own_idx RESET (lists);
ALTER INDEX regress_ivf_faiss.faiss_own_idx SET (centroids = :'l2file');
SELECT faiss_try('REINDEX INDEX regress_ivf_faiss.faiss_own_idx');
GRANT pg_read_server_files TO regress_ivf_faiss;
REINDEX INDEX regress_ivf_faiss.faiss_own_idx;
SELECT lists FROM ivf_index_info('regress_ivf_faiss.faiss_own_idx');
GRANT pg_write_server_files TO regress_ivf_faiss;
SET ROLE regress_ivf_faiss;
SELECT ivf_export_faiss('regress_ivf_faiss.faiss_own_idx', :'userfile') AS exported_by_user;
SELECT faiss_try(format('CREATE INDEX faiss_own_imported ON regress_ivf_faiss.faiss_own USING ivfflat (v vector_l2_ops) WITH (centroids = %L)', :'userfile'));
SELECT lists FROM ivf_index_info('regress_ivf_faiss.faiss_own_imported');
-- but still no export of a table the role may not read
SELECT ivf_export_faiss('faiss_l2', :'userfile');
RESET ROLE;
DROP SCHEMA regress_ivf_faiss CASCADE;
REVOKE pg_read_server_files, pg_write_server_files FROM regress_ivf_faiss;
DROP ROLE regress_ivf_faiss;

DROP TABLE faiss_t, faiss_t3;
DROP FUNCTION faiss_try(text), faiss_differences(regclass, regclass, int);
