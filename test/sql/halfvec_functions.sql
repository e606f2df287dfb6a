-- halfvec casts, operators, functions, aggregates and btree, as pgvector's
\set VERBOSITY default

-- casts
SELECT '[1,2,3]'::vector::halfvec;
SELECT '[1.1,2.2,3.3]'::vector::halfvec::vector;
SELECT '[0.1,65504]'::halfvec::vector;
SELECT '[1,2,3]'::halfvec::real[];
SELECT ARRAY[1,2,3]::halfvec;
SELECT ARRAY[1.5,2.5]::real[]::halfvec;
SELECT ARRAY[1.0000001,-3]::double precision[]::halfvec;
SELECT ARRAY[1.5,-2.25]::numeric[]::halfvec;
SELECT ARRAY[1,2,3]::halfvec(3);
SELECT '[1,2,3]'::vector(3)::halfvec(3);
-- conversion errors name the element
SELECT '[1,70000]'::vector::halfvec;
SELECT ARRAY[1,2,100000]::halfvec;
SELECT ARRAY[1,'NaN']::real[]::halfvec;
SELECT ARRAY['-Infinity',1]::real[]::halfvec;
SELECT ARRAY[1e300]::double precision[]::halfvec;
SELECT ARRAY[1e40]::numeric[]::halfvec;
SELECT ARRAY[1,NULL]::halfvec;
SELECT ARRAY[[1,2],[3,4]]::halfvec;
SELECT ARRAY['a']::text[]::halfvec;
SELECT ARRAY[1,2]::halfvec(3);
SELECT '[1,2]'::vector::halfvec(3);

-- distances
SELECT '[1,2,3]'::halfvec <-> '[3,2,1]' AS l2,
	'[1,2,3]'::halfvec <#> '[3,2,1]' AS neg_ip,
	'[1,2,3]'::halfvec <=> '[3,2,1]' AS cosine,
	'[1,2,3]'::halfvec <+> '[3,2,1]' AS l1;
SELECT l2_distance('[0,0]'::halfvec, '[3,4]'), inner_product('[1,2]'::halfvec, '[3,4]'),
	cosine_distance('[1,1]'::halfvec, '[-1,-1]'), l1_distance('[1,2]'::halfvec, '[-1,5]');
SELECT cosine_distance('[0,0]'::halfvec, '[1,1]');	-- NaN, as pgvector
SELECT '[1,2]'::halfvec <-> '[1,2,3]';
SELECT halfvec_l2_squared_distance('[0,0]', '[3,4]'), halfvec_negative_inner_product('[1,2]', '[3,4]');
SELECT round(halfvec_spherical_distance('[1,0]', '[0,1]')::numeric, 6);
-- a long vector: the kernels' blocks and tail
SELECT l2_distance(array_fill(1, ARRAY[1001])::halfvec, array_fill(2, ARRAY[1001])::halfvec) ^ 2 AS l2sq_1001,
	inner_product(array_fill(0.5, ARRAY[1001])::halfvec, array_fill(2, ARRAY[1001])::halfvec) AS ip_1001;

-- functions
SELECT vector_dims('[1,2,3]'::halfvec);
SELECT l2_norm('[3,4]'::halfvec), l2_norm('[0,0]'::halfvec);
SELECT l2_normalize('[3,4]'::halfvec), l2_normalize('[0,0]'::halfvec);
SELECT l2_normalize('[5.9604645e-08,0]'::halfvec);
SELECT subvector('[1,2,3,4,5]'::halfvec, 2, 3), subvector('[1,2,3]'::halfvec, -1, 3),
	subvector('[1,2,3]'::halfvec, 2, 100);
SELECT subvector('[1,2,3]'::halfvec, 4, 1);
SELECT subvector('[1,2,3]'::halfvec, 1, 0);

-- arithmetic: in float, rounded once to half
SELECT '[1,2,3]'::halfvec + '[4,5,6]', '[1,2,3]'::halfvec - '[4,5,6]', '[1,2,3]'::halfvec * '[4,5,6]';
SELECT '[0.1]'::halfvec + '[0.2]';
SELECT '[1,2]'::halfvec || '[3]'::halfvec;
SELECT '[65504]'::halfvec + '[65504]';
SELECT '[-65504]'::halfvec - '[65504]';
SELECT '[1e-4]'::halfvec * '[1e-4]';
SELECT '[1,2]'::halfvec + '[1,2,3]';

-- comparisons and btree
SELECT '[1,2,3]'::halfvec = '[1,2,3]', '[1,2,3]'::halfvec <> '[1,2,4]',
	'[1,2]'::halfvec < '[1,2,3]', '[1,3]'::halfvec > '[1,2,3]',
	'[-0]'::halfvec = '[0]', '[1.0001]'::halfvec = '[1]';
SELECT halfvec_cmp('[1,2]', '[1,3]'), halfvec_cmp('[2]', '[1,3]'), halfvec_cmp('[1]', '[1]');
CREATE TEMP TABLE hb (id int, v halfvec);
INSERT INTO hb VALUES (1, '[1,2,3]'), (2, '[1,2]'), (3, '[0.5]'), (4, '[1,2,3]'), (5, '[-1,100]');
SELECT id, v FROM hb ORDER BY v, id;
CREATE INDEX ON hb (v);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hb WHERE v = '[1,2,3]';
SELECT id FROM hb WHERE v = '[1,2,3]' ORDER BY id;
SELECT id FROM hb WHERE v < '[1,2]' ORDER BY id;
RESET enable_seqscan;
SELECT count(DISTINCT v) FROM hb;

-- aggregates
SELECT avg(v), sum(v) FROM (VALUES ('[1,2,3]'::halfvec), ('[3,4,5]')) t(v);
SELECT avg(v) FROM (VALUES ('[0.1]'::halfvec), ('[0.2]'), ('[0.4]')) t(v);
SELECT avg(v), sum(v) FROM hb WHERE false;
SELECT avg(v) FROM (VALUES ('[1,2]'::halfvec), ('[1,2,3]')) t(v);
SELECT sum(v) FROM (VALUES ('[60000]'::halfvec), ('[60000]')) t(v);
SELECT avg(v) FROM (VALUES ('[60000]'::halfvec), ('[60000]')) t(v);
