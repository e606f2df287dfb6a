-- ivf_search's row estimate (ivf_search_support): nq * k when the queries
-- and k are known at plan time, so a join back to the table on ctid takes a
-- TID scan per row instead of hashing the whole table.
SELECT setseed(0.5);
CREATE TABLE sp (id int PRIMARY KEY, v vector(8));
INSERT INTO sp
SELECT i, ARRAY(SELECT round((random() * 100)::numeric, 1) FROM generate_series(1, 8))::real[]::vector(8)
FROM generate_series(1, 20000) i;
CREATE INDEX sp_idx ON sp USING ivfflat (v) WITH (lists = 10);
ANALYZE sp;

CREATE FUNCTION plan_rows(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
	p json;
BEGIN
	EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO p;
	RETURN (p -> 0 -> 'Plan' ->> 'Plan Rows')::float8;
END $$;

-- literals: 2 queries x k 3
SELECT plan_rows($q$SELECT * FROM ivf_search('sp_idx', ARRAY['[1,2,3,4,5,6,7,8]', '[8,7,6,5,4,3,2,1]']::vector[], 3)$q$);
-- ARRAY[...] of casts, k 5
SELECT plan_rows($q$SELECT * FROM ivf_search('sp_idx', ARRAY['[1,2,3,4,5,6,7,8]'::vector, '[1,1,1,1,1,1,1,1]'::vector, '[2,2,2,2,2,2,2,2]'::vector], 5, 2)$q$);
-- a custom plan's parameters
PREPARE sp_q(vector[], int) AS SELECT * FROM ivf_search('sp_idx', $1, $2);
SELECT plan_rows($q$EXECUTE sp_q(ARRAY['[1,2,3,4,5,6,7,8]']::vector[], 4)$q$);
-- halfvec[] queries (the other signature, the same support function):
-- literals, 2 x 3, and a custom plan's parameters, 1 x 4
SELECT plan_rows($q$SELECT * FROM ivf_search('sp_idx', ARRAY['[1,2,3,4,5,6,7,8]', '[8,7,6,5,4,3,2,1]']::halfvec[], 3)$q$);
PREPARE sp_hq(halfvec[], int) AS SELECT * FROM ivf_search('sp_idx', $1, $2);
SELECT plan_rows($q$EXECUTE sp_hq(ARRAY['[1,2,3,4,5,6,7,8]']::halfvec[], 4)$q$);
-- unknown at plan time (a column): the declared 1000
SELECT plan_rows($q$SELECT s.* FROM (SELECT ARRAY['[1,2,3,4,5,6,7,8]']::vector[] AS a FROM sp LIMIT 1) x, LATERAL ivf_search('sp_idx', x.a, 3) s$q$) >= 1000 AS declared_rows;

EXPLAIN (COSTS OFF)
SELECT s.query, s.rank, t.id
FROM ivf_search('sp_idx', ARRAY['[1,2,3,4,5,6,7,8]', '[8,7,6,5,4,3,2,1]']::vector[], 3) s
JOIN sp t ON t.ctid = s.tid;

-- and the join returns what the search found: at nprobe = lists, the
-- sequential scan's rows
SET enable_indexscan = off;
SELECT (SELECT array_agg(id ORDER BY v <-> '[1,2,3,4,5,6,7,8]', id) FROM
		(SELECT id, v FROM sp ORDER BY v <-> '[1,2,3,4,5,6,7,8]', id LIMIT 3) e)
	= (SELECT array_agg(t.id ORDER BY s.rank)
	   FROM ivf_search('sp_idx', ARRAY['[1,2,3,4,5,6,7,8]']::vector[], 3, 10) s
	   JOIN sp t ON t.ctid = s.tid) AS same_rows;
RESET enable_indexscan;

DEALLOCATE sp_q;
DEALLOCATE sp_hq;
DROP FUNCTION plan_rows(text);
DROP TABLE sp;
