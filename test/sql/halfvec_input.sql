-- halfvec text and binary forms, typmod: pgvector's halfvec, byte for byte
\set VERBOSITY default

-- text output: each half as the shortest float4 text
SELECT '[1,2,3]'::halfvec;
SELECT ' [ 1 , -2.5 ,3e2 ] '::halfvec;
SELECT '[0.1,0.2,0.3333]'::halfvec;
SELECT '[-0,0,1e-8,-1e-8]'::halfvec;
-- edge values: the largest half, the smallest normal and subnormal
SELECT '[65504,-65504,6.1035156e-05,5.9604645e-08,65519.99]'::halfvec;
-- ties round to even: 2049 -> 2048, 2051 -> 2052, 1 + 2^-11 -> 1
SELECT '[2049,2051,1.00048828125,2.98023223876953125e-08]'::halfvec;
SELECT '[1,2,3]'::halfvec(3);
SELECT array_fill(1, ARRAY[16000])::halfvec IS NOT NULL AS max_dims;

-- errors
SELECT '[65520]'::halfvec;
SELECT '[1,-1e5]'::halfvec;
SELECT '[1,NaN]'::halfvec;
SELECT '[Infinity,1]'::halfvec;
SELECT '[1e39]'::halfvec;
SELECT '[]'::halfvec;
SELECT '1,2'::halfvec;
SELECT '[1,2'::halfvec;
SELECT '[1,,2]'::halfvec;
SELECT '[1,a]'::halfvec;
SELECT '[1 2]'::halfvec;
SELECT '[1] x'::halfvec;
SELECT '[1,2,3]'::halfvec(2);
SELECT '[1]'::halfvec(0);
SELECT '[1]'::halfvec(16001);
SELECT '[1]'::halfvec(1, 2);
SELECT array_fill(1, ARRAY[16001])::halfvec;

-- typmod in a table
CREATE TEMP TABLE hv (v halfvec(3));
INSERT INTO hv VALUES ('[1,2,3]');
INSERT INTO hv VALUES ('[1,2]');
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
	WHERE attrelid = 'hv'::regclass AND attname = 'v';

-- binary form: int16 dim, int16 0, big-endian halves
SELECT halfvec_send('[1,2,3]');
SELECT halfvec_send('[1,2,3]') = '\x000300003c0040004200'::bytea AS pgvector_bytes;
SELECT halfvec_send('[-0,5.9604645e-08,65504,-2.5,0.1]');
SELECT length(halfvec_send(array_fill(1, ARRAY[16000])::halfvec));

-- recv through COPY BINARY (the field bytes wrapped in a COPY file)
CREATE TEMP TABLE wire (v halfvec);
CREATE FUNCTION halfvec_from_wire(field bytea) RETURNS halfvec LANGUAGE plpgsql AS $$
DECLARE
	lo oid;
	result halfvec;
BEGIN
	lo := lo_from_bytea(0,
		'\x5047434f50590aff0d0a00'::bytea ||	-- PGCOPY\n\377\r\n\0
		'\x0000000000000000'::bytea ||			-- flags, header extension
		'\x0001'::bytea || int4send(length(field)) || field ||
		'\xffff'::bytea);
	PERFORM lo_export(lo, 'ivf_halfvec_wire_test.copy');
	PERFORM lo_unlink(lo);
	TRUNCATE wire;
	COPY wire FROM 'ivf_halfvec_wire_test.copy' (FORMAT binary);
	SELECT v INTO result FROM wire;
	RETURN result;
END $$;
SELECT halfvec_from_wire('\x000300003c0040004200');
SELECT halfvec_from_wire(halfvec_send('[-0,5.9604645e-08,65504,-2.5,0.1]'));
SELECT halfvec_from_wire('\x000100007c00');		-- infinity
SELECT halfvec_from_wire('\x000200003c00fe00');	-- NaN
SELECT halfvec_from_wire('\x000100013c00');		-- unused must be 0
SELECT halfvec_from_wire('\x000300003c00');		-- too short
SELECT halfvec_from_wire('\x00000000');			-- no dimensions
-- the binary form into a halfvec(n) column: its typmod is checked
TRUNCATE wire;
ALTER TABLE wire ALTER COLUMN v TYPE halfvec(3);
SELECT halfvec_from_wire('\x000300003c0040004200');
SELECT halfvec_from_wire('\x000200003c004000');
DROP FUNCTION halfvec_from_wire(bytea);

-- bad values on every way in, as pgvector reports them, with a DETAIL
-- naming the element: casts from vector, real[], float8[], int[] and
-- numeric[] round to half and refuse what does not fit (above 65504 in
-- magnitude after rounding: 65519 rounds to 65504, 65520 overflows)
SELECT '[1,2,65519]'::vector::halfvec;
SELECT '[70000,1]'::vector::halfvec;
SELECT '[1,-70000]'::vector::halfvec;
SELECT '[1,65520]'::vector::halfvec;
SELECT ARRAY[1,70000]::real[]::halfvec;
SELECT ARRAY[1,'NaN']::real[]::halfvec;
SELECT ARRAY['Infinity',1]::real[]::halfvec;
SELECT ARRAY[1,70000]::float8[]::halfvec;
SELECT ARRAY[1,'NaN']::float8[]::halfvec;
-- (pgvector narrows to float4 first and says "infinite value"; the
-- element is finite, out of half's range)
SELECT ARRAY[1,1e300]::float8[]::halfvec;
SELECT ARRAY[1,70000]::int[]::halfvec;
SELECT ARRAY[1,70000]::numeric[]::halfvec;
SELECT '[1,70000]'::halfvec;
SELECT '[1,-inf]'::halfvec;
-- underflow to zero is not an error for half (pgvector neither)
SELECT '[1e-9,-1e-9]'::vector::halfvec;

-- dimensions: a halfvec(n) column or cast takes only n, from every type
SELECT ARRAY[1,2,3]::real[]::halfvec(2);
SELECT '[1,2,3]'::vector::halfvec(2);
SELECT '[1,2,3]'::halfvec(3)::halfvec(2);
INSERT INTO hv VALUES ('[1,2,3,4]'::vector);
INSERT INTO hv VALUES (ARRAY[1,2]::real[]);
INSERT INTO hv SELECT '[1,2]'::halfvec;
UPDATE hv SET v = '[1,2,3,4]';
-- and two halfvec values of different dimensions in an operator
SELECT '[1,2,3]'::halfvec <-> '[1,2]';
SELECT '[1,2,3]'::halfvec + '[1,2]';
