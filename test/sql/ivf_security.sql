-- Privileges of the SQL functions: those that return what the index holds
-- of the table's rows (tids, distances, vectors, counts) give a caller no
-- more than SELECT would (row-level security, table and column
-- privileges); and what they refuse as no ivfflat index.
SET client_min_messages = warning;
CREATE ROLE regress_ivf_sec_owner;
CREATE ROLE regress_ivf_sec_reader;
CREATE ROLE regress_ivf_sec_bypass BYPASSRLS;
CREATE ROLE regress_ivf_sec_column;
-- ivf_export_faiss also needs pg_write_server_files
GRANT pg_write_server_files TO regress_ivf_sec_owner, regress_ivf_sec_reader,
  regress_ivf_sec_bypass, regress_ivf_sec_column;

-- 20 rows, 10 of them the reader's; the policy shows each role its own
CREATE TABLE sec_t (id int, who name, v vector(3));
INSERT INTO sec_t
SELECT i, CASE WHEN i % 2 = 0 THEN 'regress_ivf_sec_reader' ELSE 'regress_ivf_sec_owner' END,
       ARRAY[i, i % 5, i % 3]::vector(3)
FROM generate_series(1, 20) i;
CREATE INDEX sec_idx ON sec_t USING ivfflat (v) WITH (lists = 2);
RESET client_min_messages;
ALTER TABLE sec_t OWNER TO regress_ivf_sec_owner;
GRANT SELECT ON sec_t TO regress_ivf_sec_reader, regress_ivf_sec_bypass;
GRANT SELECT (v) ON sec_t TO regress_ivf_sec_column;
ALTER TABLE sec_t ENABLE ROW LEVEL SECURITY;
CREATE POLICY sec_own ON sec_t USING (who = current_user);
SET ivf.nprobe = 2;

-- every function that returns what the index holds, each run by the
-- current role: its result, or the SQLSTATE and message (and detail) of
-- its error
SELECT '/tmp/ivf_security_regress_' || current_setting('port') || '.faiss' AS secfile \gset
SELECT set_config('regress_ivf.secfile', :'secfile', false) IS NOT NULL AS file_set;
CREATE FUNCTION sec_calls() RETURNS TABLE (fn text, result text)
LANGUAGE plpgsql AS $$
DECLARE
	calls text[] := ARRAY[
		'ivf_search', 'SELECT count(*) FROM ivf_search(''sec_idx'', ARRAY[''[1,1,1]''::vector], 20)',
		'ivf_recall', 'SELECT ivf_recall(''sec_idx'', ARRAY[''[1,1,1]''::vector], 5)',
		'ivf_search(halfvec[])', 'SELECT count(*) FROM ivf_search(''sec_idx'', ARRAY[''[1,1,1]''::halfvec], 20)',
		'ivf_recall(halfvec[])', 'SELECT ivf_recall(''sec_idx'', ARRAY[''[1,1,1]''::halfvec], 5)',
		'ivf_autotune', 'SELECT count(*) > 0 FROM ivf_autotune(''sec_idx'', 0.5, 5, 10)',
		'ivf_index_info', 'SELECT vectors FROM ivf_index_info(''sec_idx'')',
		'ivf_check', 'SELECT count(*) FROM ivf_check(''sec_idx'')',
		'ivf_export_faiss', format('SELECT ivf_export_faiss(''sec_idx'', %L)',
								   current_setting('regress_ivf.secfile')),
		'ivf_gpu_load', 'SELECT ivf_gpu_load(''sec_idx'')'];
	det text;
BEGIN
	SET LOCAL client_min_messages = warning;	-- autotune's and gpu_load's notices
	FOR i IN 1 .. array_length(calls, 1) BY 2 LOOP
		fn := calls[i];
		BEGIN
			EXECUTE calls[i + 1] INTO result;
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS result = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
			result := SQLSTATE || ': ' || result || coalesce(E'\nDETAIL: ' || nullif(det, ''), '');
		END;
		RETURN NEXT;
	END LOOP;
END $$;

-- the reader sees 10 rows through SELECT, and nothing through the functions
SET ROLE regress_ivf_sec_reader;
SELECT count(*) AS visible_rows FROM sec_t;
SELECT count(*) AS visible_by_index FROM (SELECT id FROM sec_t ORDER BY v <-> '[1,1,1]') s;
SELECT * FROM sec_calls();
-- the error in full, once (and the halfvec[] signature's: the same)
SELECT count(*) FROM ivf_search('sec_idx', ARRAY['[1,1,1]'::vector], 20);
SELECT count(*) FROM ivf_search('sec_idx', ARRAY['[1,1,1]'::halfvec], 20);
-- row_security = off, where SELECT fails, fails too
SET row_security = off;
SELECT count(*) FROM sec_t;
SELECT count(*) FROM ivf_search('sec_idx', ARRAY['[1,1,1]'::vector], 20);
RESET row_security;
-- SELECT on the vector column only: refused, and why
SET ROLE regress_ivf_sec_column;
SELECT * FROM sec_calls();
-- exempt from the policies: BYPASSRLS, the owner, a superuser
SET ROLE regress_ivf_sec_bypass;
SELECT * FROM sec_calls();
SET ROLE regress_ivf_sec_owner;
SELECT * FROM sec_calls();
RESET ROLE;
SELECT * FROM sec_calls();
-- unless the owner forces the policies on itself
ALTER TABLE sec_t FORCE ROW LEVEL SECURITY;
SET ROLE regress_ivf_sec_owner;
SELECT count(*) AS owner_visible_rows FROM sec_t;
SELECT * FROM sec_calls();
-- ivf_set_params returns nothing of the rows: the owner may, others not
SELECT ivf_set_params('sec_idx', 'nprobe=2');
SET ROLE regress_ivf_sec_bypass;
SELECT ivf_set_params('sec_idx', 'nprobe=1');
RESET ROLE;
SELECT * FROM sec_calls();
ALTER TABLE sec_t NO FORCE ROW LEVEL SECURITY;
-- and with row-level security disabled, the reader gets every row
ALTER TABLE sec_t DISABLE ROW LEVEL SECURITY;
SET ROLE regress_ivf_sec_reader;
SELECT * FROM sec_calls();
RESET ROLE;

-- what is not an ivfflat index
CREATE INDEX sec_btree ON sec_t (id);
SELECT * FROM ivf_index_info('sec_btree');
SELECT * FROM ivf_index_info('sec_t');
SELECT * FROM ivf_index_info(4294967295::oid::regclass);
CREATE TABLE sec_p (id int, v vector(3)) PARTITION BY RANGE (id);
CREATE TABLE sec_p1 PARTITION OF sec_p FOR VALUES FROM (0) TO (100);
INSERT INTO sec_p SELECT id, v FROM sec_t;
SET client_min_messages = warning;
CREATE INDEX sec_p_idx ON sec_p USING ivfflat (v) WITH (lists = 2);
RESET client_min_messages;
SELECT * FROM ivf_index_info('sec_p_idx');
SELECT count(*) FROM ivf_search('sec_p_idx', ARRAY['[1,1,1]'::vector], 5);
SELECT vectors FROM ivf_index_info('sec_p1_v_idx');

DROP TABLE sec_t, sec_p;
DROP FUNCTION sec_calls();
REVOKE pg_write_server_files FROM regress_ivf_sec_owner, regress_ivf_sec_reader,
  regress_ivf_sec_bypass, regress_ivf_sec_column;
DROP ROLE regress_ivf_sec_owner, regress_ivf_sec_reader, regress_ivf_sec_bypass,
  regress_ivf_sec_column;
