-- Text input and output of vector, typmods, and every malformed input.
\set VERBOSITY default

-- round trips
SELECT '[1,2,3]'::vector;
SELECT '[-1.5, 2.25 ,3e2]'::vector;
SELECT '  [ 1 , 2 , 3 ]  '::vector;
SELECT E'\t[\n1,\r2\t]\n'::vector;
SELECT '[1]'::vector;
SELECT '[0.1,0.2,0.3]'::vector;         -- shortest form that reads back
SELECT '[1e-45, 3.4028235e38, -1.17549435e-38]'::vector;  -- denormal, FLT_MAX, -FLT_MIN
SELECT '[-0, 0]'::vector;
SELECT '[0x1p3, 1.5E+2, .5, 5.]'::vector;  -- anything float4 input accepts
SELECT '[1.00000001]'::vector;             -- rounds to the nearest float4
SELECT '[3.14159265358979]'::vector::text::vector = '[3.14159265358979]'::vector AS round_trip;
SELECT vector_dims(('[' || repeat('1,', 15999) || '1]')::vector);

-- malformed brackets and separators
SELECT '1,2,3'::vector;
SELECT '(1,2,3)'::vector;
SELECT ''::vector;
SELECT '   '::vector;
SELECT '[1,2,3'::vector;
SELECT '['::vector;
SELECT '[1,2,3]]'::vector;
SELECT '[1,2,3] x'::vector;
SELECT '[1,2,3],[4]'::vector;
SELECT '[[1,2,3]]'::vector;
SELECT '[1 2]'::vector;
SELECT '[1;2]'::vector;
SELECT '[1,,2]'::vector;
SELECT '[1,2,]'::vector;
SELECT '[,1]'::vector;
SELECT '[1,a]'::vector;
SELECT '[1e]'::vector;
SELECT '[1.2.3]'::vector;
SELECT '[--1]'::vector;

-- empty and too many dimensions
SELECT '[]'::vector;
SELECT '[ ]'::vector;
SELECT ('[' || repeat('1,', 16000) || '1]')::vector;

-- non-finite and out of range
SELECT '[NaN]'::vector;
SELECT '[1,nan,3]'::vector;
SELECT '[Infinity]'::vector;
SELECT '[1,-inf]'::vector;
SELECT '[1e39]'::vector;
SELECT '[-1e39]'::vector;
SELECT '[1e-50]'::vector;
SELECT '[1,2,3e99999]'::vector;

-- long literals are quoted only in part
SELECT ('[' || repeat('1,', 200) || 'x]')::vector;

-- typmod
SELECT '[1,2,3]'::vector(3);
SELECT '[1,2]'::vector(3);
SELECT '[1,2,3,4]'::vector(3);
SELECT '[1]'::vector(0);
SELECT '[1]'::vector(16001);
SELECT '[1]'::vector(1, 2);
SELECT '[1]'::vector('a');
CREATE TABLE vt (v vector(3));
\d vt
INSERT INTO vt VALUES ('[1,2,3]'), (NULL);
INSERT INTO vt VALUES ('[1,2]');
UPDATE vt SET v = '[1,2,3,4]';
INSERT INTO vt SELECT '[4,5,6]'::vector(3)::vector;
INSERT INTO vt SELECT '[4,5]'::vector;
SELECT v FROM vt ORDER BY v;
ALTER TABLE vt ALTER COLUMN v TYPE vector(4);
ALTER TABLE vt ALTER COLUMN v TYPE vector;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
	WHERE attrelid = 'vt'::regclass AND attname = 'v';
DROP TABLE vt;

-- arrays of vectors
SELECT ARRAY['[1,2]'::vector, '[3,4]'];
SELECT '{"[1,2]","[3,4]"}'::vector[];
