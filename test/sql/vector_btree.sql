-- Comparison operators and the btree operator class.
\set VERBOSITY default

SELECT '[1,2,3]'::vector < '[1,2,4]', '[1,2,3]'::vector <= '[1,2,3]',
	'[1,2,3]'::vector = '[1,2,3]', '[1,2,3]'::vector <> '[1,2,3]',
	'[1,2,4]'::vector >= '[1,2,3]', '[1,2,4]'::vector > '[1,2,3]';
-- shorter sorts first when it is a prefix
SELECT '[1,2]'::vector < '[1,2,3]', '[1,3]'::vector > '[1,2,3]';
SELECT vector_cmp('[1,2]', '[1,2]'), vector_cmp('[1,2]', '[2,1]'), vector_cmp('[2]', '[1,5]');
SELECT '[-0]'::vector = '[0]';

CREATE TABLE bt (v vector);
INSERT INTO bt VALUES ('[3,1]'), ('[1,2,3]'), ('[1,2]'), ('[1,2]'), ('[-1,5]'), (NULL), ('[1]');
SELECT v FROM bt ORDER BY v;
SELECT v FROM bt ORDER BY v DESC NULLS LAST;
SELECT DISTINCT v FROM bt ORDER BY v;
SELECT v, count(*) FROM bt GROUP BY v ORDER BY v;
SELECT count(DISTINCT v) FROM bt;

-- btree index: unique, equality lookups, index-ordered scans
CREATE INDEX bt_v ON bt (v);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM bt WHERE v = '[1,2]';
SELECT * FROM bt WHERE v = '[1,2]';
SELECT v FROM bt WHERE v > '[1,2]' ORDER BY v;
RESET enable_seqscan;
CREATE UNIQUE INDEX bt_u ON bt (v);
DELETE FROM bt WHERE ctid = (SELECT min(ctid) FROM bt WHERE v = '[1,2]');
CREATE UNIQUE INDEX bt_u ON bt (v);
INSERT INTO bt VALUES ('[1,2]');
INSERT INTO bt VALUES ('[1,2.0000001]');  -- rounds to 2 in float4
INSERT INTO bt VALUES ('[1,2.0000003]');  -- the next float4 after 2
DROP TABLE bt;
