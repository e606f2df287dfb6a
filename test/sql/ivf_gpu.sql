-- The GPU worker exists only when ivf is in shared_preload_libraries (the
-- TAP test 015 starts one); here the stats say so and its settings do not
-- exist.
SELECT state, worker_pid, backend, memory_used, batches, starts FROM ivf_gpu_stats;
SELECT count(*) FROM ivf_gpu_stats();
SHOW ivf.gpu_worker;
-- ivf.gpu exists everywhere; without a worker the CPU answers
SHOW ivf.gpu;
CREATE TABLE g (v vector(3));
INSERT INTO g SELECT ARRAY[i, i % 7, 1]::vector FROM generate_series(1, 100) i;
CREATE INDEX g_idx ON g USING ivfflat (v) WITH (lists = 2);
SELECT ivf_gpu_load('g_idx');
SET ivf.gpu = on;
SELECT query, rank, distance FROM ivf_search('g_idx', ARRAY['[3,3,1]']::vector[], 3);
SET ivf.gpu = maybe;
RESET ivf.gpu;
DROP TABLE g;
SET ivf.gpu_backend = cpu;
