-- Binary send/recv: byte for byte pgvector's wire format
-- (int16 dim, int16 unused = 0, then big-endian float4s).
\set VERBOSITY default

SELECT vector_send('[1,2,3]');
SELECT vector_send('[1,2,3]') = '\x000300003f8000004000000040400000'::bytea AS pgvector_bytes;
SELECT vector_send('[-0,1e-45,3.4028235e38]');
SELECT vector_send('[-1.5]');
SELECT length(vector_send(array_fill(1, ARRAY[16000])::vector));

-- recv: build a COPY BINARY file around the given field bytes, write it
-- with lo_export and read it back with COPY, which calls vector_recv
CREATE TEMP TABLE wire (v vector);
CREATE FUNCTION vector_from_wire(field bytea) RETURNS vector LANGUAGE plpgsql AS $$
DECLARE
	lo oid;
	result vector;
BEGIN
	lo := lo_from_bytea(0,
		'\x5047434f50590aff0d0a00'::bytea ||	-- PGCOPY\n\377\r\n\0
		'\x0000000000000000'::bytea ||			-- flags, header extension
		'\x0001'::bytea || int4send(length(field)) || field ||
		'\xffff'::bytea);
	PERFORM lo_export(lo, 'ivf_vector_wire_test.copy');
	PERFORM lo_unlink(lo);
	TRUNCATE wire;
	COPY wire FROM 'ivf_vector_wire_test.copy' (FORMAT binary);
	SELECT v INTO result FROM wire;
	RETURN result;
END $$;
SELECT vector_from_wire('\x000300003f8000004000000040400000');
SELECT vector_from_wire(vector_send('[0.1,-2.5e-20,7]')) = '[0.1,-2.5e-20,7]' AS round_trip;
-- malformed binary input
SELECT vector_from_wire('\x00000000');
SELECT vector_from_wire('\x3e810000');
SELECT vector_from_wire('\x00010001' || '\x3f800000'::bytea);
SELECT vector_from_wire('\x00030000' || '\x3f800000'::bytea);
SELECT vector_from_wire('\x00010000' || '\x7fc00000'::bytea);
SELECT vector_from_wire('\x00010000' || '\x7f800000'::bytea);
SELECT vector_from_wire('\x00010000' || '\x3f80000000'::bytea);
SELECT vector_from_wire('\xffff0000');
-- typmod is checked on binary input too
ALTER TABLE wire ALTER COLUMN v TYPE vector(3);
SELECT vector_from_wire('\x00010000' || '\x40000000'::bytea);
SELECT vector_from_wire('\x00030000' || '\x3f8000004000000040400000'::bytea);
SELECT count(*) AS leftover_large_objects FROM pg_largeobject_metadata;
DROP FUNCTION vector_from_wire(bytea);
