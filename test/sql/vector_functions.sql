-- Distance functions, operators, norms and arithmetic.
\set VERBOSITY default

SELECT l2_distance('[0,0]'::vector, '[3,4]');
SELECT '[0,0]'::vector <-> '[3,4]';
SELECT '[1,2,3]'::vector <-> '[1,2,3]';
SELECT inner_product('[1,2,3]'::vector, '[4,5,6]');
SELECT '[1,2,3]'::vector <#> '[4,5,6]';
SELECT cosine_distance('[1,2]'::vector, '[2,4]');
SELECT cosine_distance('[1,0]'::vector, '[0,1]');
SELECT cosine_distance('[1,1]'::vector, '[-1,-1]');
SELECT '[1,2]'::vector <=> '[2,4]';
SELECT l1_distance('[0,0]'::vector, '[3,-4]');
SELECT '[0,0]'::vector <+> '[3,-4]';
SELECT vector_l2_squared_distance('[0,0]', '[3,4]');
SELECT vector_negative_inner_product('[1,2]', '[3,4]');
SELECT round(vector_spherical_distance('[1,0]', '[0,1]')::numeric, 12);

-- a zero vector has no direction: cosine distance is NaN, as in pgvector
SELECT cosine_distance('[0,0]'::vector, '[1,1]');
SELECT '[0,0]'::vector <=> '[0,0]';

-- distances between large dimensions and awkward lengths
SELECT l2_distance(array_fill(1, ARRAY[16000])::vector, array_fill(0, ARRAY[16000])::vector);
SELECT inner_product(array_fill(2, ARRAY[1537])::vector, array_fill(3, ARRAY[1537])::vector);
SELECT l1_distance(array_fill(-1, ARRAY[17])::vector, array_fill(1, ARRAY[17])::vector);

-- dimension mismatch
SELECT '[1,2]'::vector <-> '[1,2,3]';
SELECT '[1,2]'::vector <#> '[1,2,3]';
SELECT '[1,2]'::vector <=> '[1,2,3]';
SELECT '[1,2]'::vector <+> '[1,2,3]';
SELECT '[1,2]'::vector + '[1,2,3]';
SELECT '[1,2]'::vector - '[1,2,3]';
SELECT '[1,2]'::vector * '[1,2,3]';

-- NULLs: every function is strict
SELECT l2_distance(NULL::vector, '[1]'), '[1]'::vector <-> NULL, vector_dims(NULL::vector), vector_norm(NULL);

SELECT vector_dims('[1,2,3]'::vector);
SELECT vector_norm('[3,4]');
SELECT vector_norm('[0,0,0]');
SELECT l2_normalize('[3,4]'::vector);
SELECT l2_normalize('[0,0]'::vector);
SELECT vector_norm(l2_normalize('[1,2,3,4,5]'::vector)) BETWEEN 0.9999999 AND 1.0000001 AS unit;

-- arithmetic
SELECT '[1,2,3]'::vector + '[4,5,6]';
SELECT '[1,2,3]'::vector - '[4,5,6]';
SELECT '[1,2,3]'::vector * '[4,5,6]';
SELECT '[3e38]'::vector + '[3e38]';
SELECT '[-3e38]'::vector - '[3e38]';
SELECT '[1e20]'::vector * '[1e20]';
SELECT '[1e-30]'::vector * '[1e-30]';
SELECT '[1,2]'::vector || '[3]';
SELECT subvector('[1,2,3,4,5]'::vector, 2, 3);
SELECT subvector('[1,2,3,4,5]'::vector, -1, 3);
SELECT subvector('[1,2,3,4,5]'::vector, 4, 10);
SELECT subvector('[1,2,3,4,5]'::vector, 6, 1);
SELECT subvector('[1,2,3,4,5]'::vector, 1, 0);

-- exact k-NN with the operators (a seq scan)
CREATE TABLE items (id int, embedding vector(3));
INSERT INTO items VALUES (1, '[1,1,1]'), (2, '[2,2,2]'), (3, '[1,1,2]'), (4, NULL), (5, '[0,0,0]');
SELECT id, embedding <-> '[1,1,1]' AS d FROM items ORDER BY embedding <-> '[1,1,1]' LIMIT 3;
SELECT id FROM items ORDER BY embedding <#> '[1,1,1]' LIMIT 3;
SELECT id FROM items ORDER BY embedding <=> '[1,1,1]', id;
DROP TABLE items;

-- volatility, strictness and parallel safety match pgvector's
SELECT p.proname, p.provolatile, p.proisstrict, p.proparallel
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'ivf'
WHERE p.prokind = 'f' AND (p.provolatile <> 'i' OR NOT p.proisstrict OR p.proparallel <> 's')
ORDER BY 1;
SELECT count(*) AS non_strict_or_volatile_aggs FROM pg_proc p
JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'ivf'
WHERE p.prokind = 'a' AND p.proparallel <> 's';
SELECT oprname, oprcode, oprcom::regoperator, oprnegate::regoperator
FROM pg_operator WHERE oprleft = 'vector'::regtype ORDER BY oprname;
