-- Every kernel level this CPU supports gives the scalar reference's
-- answers through SQL (the C unit test covers the kernels in depth).
\set VERBOSITY default

SELECT position('scalar' IN ivf_simd_levels()) = 1 AS scalar_listed;
-- the setting exists once the library is loaded (here, by the call above)
SHOW ivf.simd_level;
SET ivf.simd_level = scalar;
SELECT ivf_simd_level();
SET ivf.simd_level = 'no_such_level';
RESET ivf.simd_level;
SELECT ivf_simd_level() = split_part(ivf_simd_levels(), ',', -1) AS auto_is_best;

CREATE TABLE kv (id int, a vector, b vector);
-- integer-valued inputs make every sum exact, so levels must agree exactly
INSERT INTO kv SELECT d, array_agg((i * 7 + d) % 13 - 6)::vector, array_agg((i * 5 + 3 * d) % 11 - 5)::vector
	FROM generate_series(1, 40) d, generate_series(1, d * 17) i GROUP BY d;
SET ivf.simd_level = scalar;
CREATE TABLE ref AS SELECT id, a <-> b AS l2, a <#> b AS ip, a <=> b AS cos, a <+> b AS l1 FROM kv;

DO $$
DECLARE
	lvl text;
	bad int;
BEGIN
	FOREACH lvl IN ARRAY string_to_array(ivf_simd_levels(), ',') LOOP
		PERFORM set_config('ivf.simd_level', lvl, true);
		SELECT count(*) INTO bad FROM kv JOIN ref USING (id)
		WHERE (a <-> b) <> ref.l2 OR (a <#> b) <> ref.ip
			OR (a <=> b) <> ref.cos OR (a <+> b) <> ref.l1;
		IF bad > 0 THEN
			RAISE EXCEPTION 'kernel level % disagrees with scalar on % rows', lvl, bad;
		END IF;
	END LOOP;
END $$;
RESET ivf.simd_level;
SELECT count(*) FROM ref;
DROP TABLE kv, ref;
