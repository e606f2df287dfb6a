/* ivf_pgvector: the ivf access method on pgvector's own vector type */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION ivf_pgvector CASCADE" to load this file. \quit

-- pgvector (requires = 'vector') provides the type, its I/O, casts and
-- operators; this script adds only the index and ivf's SQL functions, all
-- C functions of ivf.so.  pgvector's vector has the layout ivf's own has
-- (varlena header, int16 dim, int16 unused, float4 x[dim]), so ivf.so reads
-- its datums as they are.  pgvector's schema is on the search path while
-- this script runs, so "vector" below is pgvector's.  SQL names that
-- pgvector also uses (vector_l2_squared_distance, vector_norm, ...) get an
-- ivf_ prefix here, over the same C symbols.

-- ---------------------------------------------------------------- kernels

-- the distance kernel levels this CPU and build support, best last
CREATE FUNCTION ivf_simd_levels() RETURNS text
	AS 'MODULE_PATHNAME', 'ivf_simd_levels_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- the level in use now (see SET ivf.simd_level)
CREATE FUNCTION ivf_simd_level() RETURNS text
	AS 'MODULE_PATHNAME', 'ivf_simd_level_active' LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- ------------------------------------------------------------ ivf index

-- the support functions: ivf identifies the metric by their C functions
CREATE FUNCTION ivf_vector_l2_squared_distance(vector, vector) RETURNS float8
	AS 'MODULE_PATHNAME', 'vector_l2_squared_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION ivf_vector_negative_inner_product(vector, vector) RETURNS float8
	AS 'MODULE_PATHNAME', 'vector_negative_inner_product' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION ivf_vector_norm(vector) RETURNS float8
	AS 'MODULE_PATHNAME', 'vector_norm' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- the same over pgvector's halfvec (its layout is ivf's halfvec's:
-- varlena, int16 dim, int16 unused, IEEE half[dim])
CREATE FUNCTION ivf_halfvec_l2_squared_distance(halfvec, halfvec) RETURNS float8
	AS 'MODULE_PATHNAME', 'halfvec_l2_squared_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION ivf_halfvec_negative_inner_product(halfvec, halfvec) RETURNS float8
	AS 'MODULE_PATHNAME', 'halfvec_negative_inner_product' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION ivf_halfvec_l2_norm(halfvec) RETURNS float8
	AS 'MODULE_PATHNAME', 'halfvec_l2_norm' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- the handler of the standalone extension's ivfflat, under this name: the
-- name ivfflat is pgvector's access method here
CREATE FUNCTION ivf_handler(internal) RETURNS index_am_handler
	AS 'MODULE_PATHNAME', 'ivfflat_handler' LANGUAGE C;

CREATE ACCESS METHOD ivf TYPE INDEX HANDLER ivf_handler;

COMMENT ON ACCESS METHOD ivf IS 'ivf: inverted-file index with list-packed pages';

-- The opclass names follow pgvector's (they are per access method, so
-- they do not clash with those of pgvector's ivfflat and hnsw); the
-- ordering operators are pgvector's.  Support function 1 is the distance
-- that identifies the metric; function 2 (a norm) means vectors are
-- normalised before they are stored (cosine).
CREATE OPERATOR CLASS vector_l2_ops
	DEFAULT FOR TYPE vector USING ivf AS
	OPERATOR 1 <-> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 ivf_vector_l2_squared_distance(vector, vector);

CREATE OPERATOR CLASS vector_ip_ops
	FOR TYPE vector USING ivf AS
	OPERATOR 1 <#> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 ivf_vector_negative_inner_product(vector, vector);

CREATE OPERATOR CLASS vector_cosine_ops
	FOR TYPE vector USING ivf AS
	OPERATOR 1 <=> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 ivf_vector_negative_inner_product(vector, vector),
	FUNCTION 2 ivf_vector_norm(vector);

-- halfvec columns: the list pages store half floats (2 bytes an element),
-- the centroids stay float
CREATE OPERATOR CLASS halfvec_l2_ops
	FOR TYPE halfvec USING ivf AS
	OPERATOR 1 <-> (halfvec, halfvec) FOR ORDER BY float_ops,
	FUNCTION 1 ivf_halfvec_l2_squared_distance(halfvec, halfvec);

CREATE OPERATOR CLASS halfvec_ip_ops
	FOR TYPE halfvec USING ivf AS
	OPERATOR 1 <#> (halfvec, halfvec) FOR ORDER BY float_ops,
	FUNCTION 1 ivf_halfvec_negative_inner_product(halfvec, halfvec);

CREATE OPERATOR CLASS halfvec_cosine_ops
	FOR TYPE halfvec USING ivf AS
	OPERATOR 1 <=> (halfvec, halfvec) FOR ORDER BY float_ops,
	FUNCTION 1 ivf_halfvec_negative_inner_product(halfvec, halfvec),
	FUNCTION 2 ivf_halfvec_l2_norm(halfvec);

-- Structural check of an ivf index: one row per problem, none when the
-- index is sound.
CREATE FUNCTION ivf_check(index regclass) RETURNS SETOF text
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- What an ivf index holds (walks the whole index).
CREATE FUNCTION ivf_index_info(index regclass,
	OUT metric text, OUT dims int, OUT lists int, OUT lists_requested int,
	OUT default_nprobe int, OUT seed bigint, OUT trained_on bigint,
	OUT built_vectors bigint, OUT vectors bigint, OUT dead_slots bigint,
	OUT empty_lists bigint, OUT largest_list bigint, OUT pages bigint,
	OUT vectors_per_group int, OUT list_ordering text, OUT prefilter bool,
	OUT element_type text, OUT format_version int, OUT adaptive bool,
	OUT generation bigint, OUT list_slots int, OUT splits bigint,
	OUT merges bigint, OUT vectors_copied bigint,
	OUT vectors_reassigned bigint, OUT lists_recycled bigint)
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- Planner support for ivf_search: its row count, nq * k, when the queries
-- and k are known at plan time (ivfbatch.c).
CREATE FUNCTION ivf_search_support(internal) RETURNS internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Batch search: the k nearest rows of every query, as an index scan would
-- return them one query at a time (same nprobe, max_codes, budgets).
-- query is the 1-based position in the array; join tid back to the table:
--   SELECT s.query, s.rank, t.* FROM ivf_search('idx', $1, 10) s
--   JOIN items t ON t.ctid = s.tid;
CREATE FUNCTION ivf_search(index regclass, queries vector[], k int, nprobe int DEFAULT NULL)
	RETURNS TABLE (query int, rank int, tid tid, distance real)
	AS 'MODULE_PATHNAME' LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL RESTRICTED ROWS 1000
	SUPPORT ivf_search_support;

-- Tuning.  A parameter string sets several search knobs at once:
-- 'nprobe=8,max_codes=4096,profile=approx_fast' (names: nprobe, max_codes,
-- profile, candidate_budget, budget_strategy).
--
-- ivf_set_params stores one as the index's defaults (the params option,
-- shown by \d): queries that do not set a knob themselves use it.  ''
-- removes it.  Returns the stored text.
CREATE FUNCTION ivf_set_params(index regclass, params text)
	RETURNS text
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- Mean recall@k of the index's scans (with the session's settings) for the
-- given queries, against exact search of the table.
CREATE FUNCTION ivf_recall(index regclass, queries vector[], k int)
	RETURNS float8
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- Faiss's auto-tuning: measure operating points (nprobe x max_codes x
-- profile) on nqueries rows sampled from the table and return the Pareto
-- frontier, fastest first; NOTICE lines report each experiment.  With
-- apply, the cheapest point reaching target_recall becomes the index's
-- params.
CREATE FUNCTION ivf_autotune(index regclass, target_recall float8 DEFAULT 0.95,
	k int DEFAULT 10, nqueries int DEFAULT 500, apply bool DEFAULT false)
	RETURNS TABLE (params text, recall float8, ms_per_query float8)
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE ROWS 20;
COMMENT ON FUNCTION ivf_set_params(regclass, text) IS
	'store search defaults (e.g. ''nprobe=8,max_codes=4096'') as the index''s params option';
COMMENT ON FUNCTION ivf_recall(regclass, vector[], int) IS
	'mean recall@k of the index''s scans for these queries, against exact search';
COMMENT ON FUNCTION ivf_autotune(regclass, float8, int, int, bool) IS
	'explore nprobe x max_codes x profile on sampled rows; the Pareto-optimal points, optionally applying the cheapest reaching target_recall';

-- The GPU worker as it published itself (one row; state "not loaded"
-- without ivf in shared_preload_libraries, "off" with ivf.gpu_worker off).
CREATE FUNCTION ivf_gpu_stats(OUT state text, OUT worker_pid int,
	OUT backend text, OUT device text, OUT device_memory bigint,
	OUT memory_limit bigint, OUT memory_used bigint,
	OUT indexes_resident int, OUT batches bigint, OUT mean_batch_size float8,
	OUT queries bigint, OUT fallbacks bigint, OUT starts int, OUT detail text,
	OUT kmeans_rounds bigint, OUT assigned_points bigint,
	OUT refreshed_lists bigint)
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE PARALLEL SAFE;
CREATE VIEW ivf_gpu_stats AS SELECT * FROM ivf_gpu_stats();

-- Upload an index to the GPU worker now (the first search through the
-- worker does it otherwise); true when the worker holds it.
CREATE FUNCTION ivf_gpu_load(index regclass) RETURNS bool
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- ------------------------------------------------------------ Faiss interop
--
-- ivf_export_faiss writes an ivf index as a Faiss IndexIVFFlat file
-- (faiss.read_index loads it); the index option centroids = '/path' builds
-- an index around the centroids of such a file.  Rows are identified in
-- the file by their tid as block * 65536 + offset: ivf_faiss_id and
-- ivf_faiss_tid convert.  Server files: writing needs
-- pg_write_server_files, reading pg_read_server_files (or superuser).

-- Write the index to a Faiss file at an absolute path (replaced whole, or
-- left as it was on error); returns the number of vectors written.
CREATE FUNCTION ivf_export_faiss(index regclass, path text) RETURNS bigint
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION ivf_export_faiss(regclass, text) IS
	'write an ivf index as a Faiss IndexIVFFlat file (ids: ivf_faiss_id of each row''s tid); returns the vectors written';

-- The id of a row in files written by ivf_export_faiss.
CREATE FUNCTION ivf_faiss_id(tid) RETURNS bigint
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION ivf_faiss_id(tid) IS
	'the id of a row in a Faiss file written by ivf_export_faiss: block * 65536 + offset of its tid';

-- The tid of a Faiss id from such a file (an error for ids that are not
-- one, such as the -1 Faiss returns for missing results).
CREATE FUNCTION ivf_faiss_tid(bigint) RETURNS tid
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION ivf_faiss_tid(bigint) IS
	'the tid of an id in a Faiss file written by ivf_export_faiss (inverse of ivf_faiss_id)';

-- ------------------------------------------- halfvec queries for ivf_search

-- ivf_search and ivf_recall with halfvec[] queries, for an index over
-- either type: a query is widened to float (exactly) as the scan does with
-- the vector form; ivf_recall gives its scans values of the indexed
-- column's type.  An untyped NULL or literal for queries is now
-- ambiguous, as for pgvector's overloaded functions: write NULL::vector[].
CREATE FUNCTION ivf_search(index regclass, queries halfvec[], k int, nprobe int DEFAULT NULL)
	RETURNS TABLE (query int, rank int, tid tid, distance real)
	AS 'MODULE_PATHNAME', 'ivf_search_halfvec'
	LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL RESTRICTED ROWS 1000
	SUPPORT ivf_search_support;

CREATE FUNCTION ivf_recall(index regclass, queries halfvec[], k int)
	RETURNS float8
	AS 'MODULE_PATHNAME', 'ivf_recall_halfvec'
	LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION ivf_recall(regclass, halfvec[], int) IS
	'mean recall@k of the index''s scans for these queries, against exact search';

-- ------------------------------------------------ self-balancing lists

-- Split the lists of an adaptive index that outgrew their bound, as VACUUM
-- does (src/README "Self-balancing lists"); at most max_ops operations.
-- The caller must own the index.
CREATE FUNCTION ivf_rebalance(index regclass, max_ops int DEFAULT NULL,
	OUT splits bigint, OUT merges bigint, OUT vectors_copied bigint,
	OUT vectors_reassigned bigint, OUT lists_recycled bigint)
	AS 'MODULE_PATHNAME' LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;
