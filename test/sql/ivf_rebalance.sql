-- ivf_rebalance's arguments, privileges and the indexes it refuses or
-- leaves alone (its splits are tested by t/034_split.pl)
SET client_min_messages = warning;
CREATE TABLE rb (id int, v vector(3));
INSERT INTO rb SELECT i, ARRAY[i % 7, i % 5, i % 3]::vector FROM generate_series(1, 200) i;
CREATE INDEX rb_btree ON rb (id);
CREATE INDEX rb_ivf ON rb USING ivfflat (v vector_l2_ops) WITH (lists = 2);
RESET client_min_messages;

-- not an ivf index, not an index
SELECT * FROM ivf_rebalance('rb_btree');
SELECT * FROM ivf_rebalance('rb');
-- NULL index: NULL; max_ops below 1
SELECT * FROM ivf_rebalance(NULL);
SELECT * FROM ivf_rebalance('rb_ivf', 0);

-- nothing to split: a row of zeros
SELECT * FROM ivf_rebalance('rb_ivf');
SELECT * FROM ivf_rebalance('rb_ivf', 1);

-- adaptive off now: a notice, nothing done
ALTER INDEX rb_ivf SET (adaptive = off);
SELECT * FROM ivf_rebalance('rb_ivf');
ALTER INDEX rb_ivf RESET (adaptive);

-- built with adaptive = off
SET client_min_messages = warning;
CREATE INDEX rb_fixed ON rb USING ivfflat (v vector_l2_ops) WITH (lists = 2, adaptive = off);
RESET client_min_messages;
SELECT * FROM ivf_rebalance('rb_fixed');

-- format 3 (the tests' setting): refused, REINDEX is the way
SET ivf.build_format = 3;
SET client_min_messages = warning;
CREATE INDEX rb_v3 ON rb USING ivfflat (v vector_l2_ops) WITH (lists = 2);
RESET client_min_messages;
RESET ivf.build_format;
SELECT * FROM ivf_rebalance('rb_v3');

-- only the owner (or a superuser)
CREATE ROLE regress_ivf_rebalance;
GRANT SELECT ON rb TO regress_ivf_rebalance;
SET ROLE regress_ivf_rebalance;
SELECT * FROM ivf_rebalance('rb_ivf');
RESET ROLE;
REVOKE SELECT ON rb FROM regress_ivf_rebalance;
DROP ROLE regress_ivf_rebalance;

-- the test hook takes the steps' names only
SET ivf.debug_maintenance_pause = 'nowhere';
SET ivf.debug_maintenance_pause = 'copy';
RESET ivf.debug_maintenance_pause;

DROP TABLE rb;
