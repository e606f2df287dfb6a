-- ivfflat: ivf.iterative_scan = strict_order returns the rows relaxed_order
-- returns, in exact distance order, also when the executor filters most
-- of them out (each list's radius bounds the lists not probed yet)
CREATE TABLE s (id int PRIMARY KEY, v vector(4));
INSERT INTO s
SELECT i, ARRAY[(i % 10) * 3 + sin(i), ((i / 10) % 10) * 3 + cos(i),
                sin(i * 3), cos(i * 5)]::vector(4)
FROM generate_series(1, 3000) i;
CREATE TABLE q (name text, q vector(4));
INSERT INTO q VALUES ('a', '[13,14,0,0]'), ('b', '[1,27,0.5,-0.5]'), ('c', '[25,2,1,1]');

-- ids of the rows id % 150 = 7 (20 rows, spread over the lists) nearest
-- first for the query named n and the operator op, as the index scan
-- returns them (LIMIT 20 over the filter) and as an exact scan orders them
CREATE FUNCTION scan_ids(n text, op text) RETURNS int[] LANGUAGE plpgsql AS $$
DECLARE r int[];
BEGIN
  EXECUTE format('SELECT array_agg(id) FROM (SELECT id FROM s WHERE id %% 150 = 7 '
                 'ORDER BY v %s $1 LIMIT 20) x', op)
    INTO r USING (SELECT q FROM q WHERE name = n);
  RETURN r;
END $$;
CREATE FUNCTION exact_ids(n text, op text) RETURNS int[] LANGUAGE plpgsql
SET enable_indexscan = off SET enable_bitmapscan = off SET enable_seqscan = on AS $$
DECLARE r int[];
BEGIN
  EXECUTE format('SELECT array_agg(id ORDER BY d, id) FROM (SELECT id, v %s $1 AS d '
                 'FROM s WHERE id %% 150 = 7) x', op)
    INTO r USING (SELECT q FROM q WHERE name = n);
  RETURN r;
END $$;
-- whether ids are in ascending distance order
CREATE FUNCTION in_order(ids int[], n text, op text) RETURNS bool LANGUAGE plpgsql AS $$
DECLARE r bool;
BEGIN
  EXECUTE format('SELECT coalesce(bool_and(d >= prev), true) FROM (SELECT d, lag(d) OVER (ORDER BY k) AS prev '
                 'FROM (SELECT k, v %s $2 AS d '
                 'FROM unnest($1) WITH ORDINALITY u(id, k) JOIN s USING (id)) a) b', op)
    INTO r USING ids, (SELECT q FROM q WHERE name = n);
  RETURN r;
END $$;
-- per query: how many rows relaxed and strict return, whether strict
-- returns the relaxed rows, in order, and in the exact scan's order
CREATE FUNCTION compare(op text) RETURNS TABLE (name text, n_relaxed int, n_strict int,
                                                same_rows bool, ordered bool, exact_order bool)
LANGUAGE plpgsql AS $$
DECLARE rel int[]; str int[];
BEGIN
  FOR name IN SELECT q.name FROM q ORDER BY 1 LOOP
    SET LOCAL ivf.iterative_scan = relaxed_order;
    rel := scan_ids(name, op);
    SET LOCAL ivf.iterative_scan = strict_order;
    str := scan_ids(name, op);
    n_relaxed := coalesce(cardinality(rel), 0);
    n_strict := coalesce(cardinality(str), 0);
    same_rows := (SELECT array_agg(x ORDER BY x) FROM unnest(rel) x) IS NOT DISTINCT FROM
                 (SELECT array_agg(x ORDER BY x) FROM unnest(str) x);
    ordered := in_order(str, name, op);
    exact_order := str IS NOT DISTINCT FROM exact_ids(name, op);
    RETURN NEXT;
  END LOOP;
END $$;

SET enable_seqscan = off;
SET jit = off;  -- the seq scans enable_seqscan = off penalises would be compiled
SET ivf.nprobe = 1;

-- l2, with and without the prefilter's code layout
CREATE INDEX s_l2 ON s USING ivfflat (v vector_l2_ops) WITH (lists = 30);
SELECT * FROM compare('<->');
DROP INDEX s_l2;
CREATE INDEX s_l2 ON s USING ivfflat (v vector_l2_ops) WITH (lists = 30, prefilter = off);
SELECT * FROM compare('<->');
-- ivf.max_nprobe: strict_order returns the rows of the lists it may probe,
-- the same ones as relaxed_order, still in order
SET ivf.max_nprobe = 10;
SELECT name, n_relaxed, n_strict, same_rows, ordered FROM compare('<->');
RESET ivf.max_nprobe;
DROP INDEX s_l2;
-- inner product and cosine
CREATE INDEX s_ip ON s USING ivfflat (v vector_ip_ops) WITH (lists = 30);
SELECT * FROM compare('<#>');
DROP INDEX s_ip;
CREATE INDEX s_cos ON s USING ivfflat (v vector_cosine_ops) WITH (lists = 30);
SELECT * FROM compare('<=>');
DROP INDEX s_cos;

-- an insert that lands far from its list's centroid grows the list's
-- radius: four tight clusters (one list each), then a row at the edge of
-- the first one's cell, next to a query whose nearest list is the second
CREATE TABLE c (id int PRIMARY KEY, v vector(2));
INSERT INTO c SELECT i, ARRAY[(i % 4) * 10 + 0.3 * sin(i), 0.3 * cos(i)]::vector(2)
FROM generate_series(1, 400) i;
CREATE INDEX c_l2 ON c USING ivfflat (v vector_l2_ops) WITH (lists = 4);
SELECT largest_list FROM ivf_index_info('c_l2');
INSERT INTO c VALUES (0, '[4.8,0]');
SELECT count(*) AS in_nearest_list FROM
  (SELECT id FROM c ORDER BY v <-> '[5.3,0]' LIMIT 5) x WHERE id = 0;
SET ivf.iterative_scan = strict_order;
SELECT array_agg(id) AS strict_first5 FROM
  (SELECT id FROM c ORDER BY v <-> '[5.3,0]' LIMIT 5) x;
SET enable_indexscan = off;
SET enable_seqscan = on;
SELECT array_agg(id) AS exact_first5 FROM
  (SELECT id FROM c ORDER BY v <-> '[5.3,0]', id LIMIT 5) x;
SET enable_indexscan = on;
SET enable_seqscan = off;
-- the same with vectors of many pages (each insert adds a five-page group;
-- the record that links it raises the radius)
DROP TABLE c;
CREATE TABLE w (id int PRIMARY KEY, v vector(9000));
INSERT INTO w SELECT i, array_fill(((i % 2) * 10)::real + 0.1 * (i % 7), ARRAY[9000])::vector(9000)
FROM generate_series(1, 40) i;
CREATE INDEX w_l2 ON w USING ivfflat (v vector_l2_ops) WITH (lists = 2);
INSERT INTO w SELECT 100 + i, array_fill(4.6::real + 0.01 * i, ARRAY[9000])::vector(9000)
FROM generate_series(1, 3) i;
CREATE TEMP TABLE wq AS SELECT array_fill(5.5::real, ARRAY[9000])::vector(9000) AS q;
SELECT array_agg(id) AS strict_first5 FROM
  (SELECT id FROM w ORDER BY v <-> (SELECT q FROM wq) LIMIT 5) x;
SET enable_indexscan = off;
SET enable_seqscan = on;
SELECT array_agg(id) AS exact_first5 FROM
  (SELECT id FROM w ORDER BY v <-> (SELECT q FROM wq), id LIMIT 5) x;
DROP TABLE w, wq;

RESET ivf.iterative_scan;
RESET ivf.nprobe;
RESET enable_seqscan;
RESET enable_indexscan;
RESET jit;
DROP FUNCTION compare(text), scan_ids(text, text), exact_ids(text, text),
  in_order(int[], text, text);
DROP TABLE s, q;
