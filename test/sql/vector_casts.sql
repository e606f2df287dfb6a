-- Casts between vector and arrays.
\set VERBOSITY default

SELECT ARRAY[1,2,3]::vector;
SELECT ARRAY[1.5,2.5,3.5]::real[]::vector;
SELECT ARRAY[1.5,2.5,3.5]::double precision[]::vector;
SELECT ARRAY[1.5,2.5,3.5]::numeric[]::vector;
SELECT ARRAY[0.1]::double precision[]::vector;   -- rounded to float4
SELECT '{1,2,3}'::real[]::vector(3);
SELECT '{1,2,3}'::real[]::vector(2);
SELECT '[1,2,3]'::vector::real[];
SELECT '[0.1,-0,1e-45]'::vector::real[];

-- assignment casts: arrays go into vector columns, typmod is checked
CREATE TABLE ct (v vector(2));
INSERT INTO ct VALUES (ARRAY[1,2]), ('{3,4}'::real[]), ('{5,6}'::float8[]), ('{7,8}'::numeric[]);
INSERT INTO ct VALUES (ARRAY[1,2,3]);
SELECT v FROM ct ORDER BY v;
DROP TABLE ct;

-- vector(n) -> vector(m) coercion
SELECT '[1,2,3]'::vector(3)::vector(3);
SELECT '[1,2,3]'::vector(3)::vector(2);

-- bad arrays
SELECT '{}'::real[]::vector;
SELECT '{{1,2},{3,4}}'::real[]::vector;
SELECT '{1,NULL,3}'::real[]::vector;
SELECT '{NaN}'::real[]::vector;
SELECT '{Infinity}'::real[]::vector;
SELECT '{-Infinity}'::double precision[]::vector;
SELECT '{NaN}'::numeric[]::vector;
SELECT '{1e39}'::double precision[]::vector;
SELECT '{1e39}'::numeric[]::vector;
SELECT array_fill(1, ARRAY[16001])::vector;
SELECT vector_dims(array_fill(1, ARRAY[16000])::vector);

-- the cast catalog matches pgvector's contexts
SELECT castsource::regtype, casttarget::regtype, castcontext
FROM pg_cast WHERE castsource = 'vector'::regtype OR casttarget = 'vector'::regtype
ORDER BY 1::text, 2::text;
