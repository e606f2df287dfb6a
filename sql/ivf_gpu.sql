-- The GPU worker exists only when ivf is in shared_preload_libraries (the
-- TAP test 015 starts one); here the stats say so and its settings do not
-- exist.
SELECT state, worker_pid, backend, memory_used, batches, starts FROM ivf_gpu_stats;
SELECT count(*) FROM ivf_gpu_stats();
SHOW ivf.gpu_worker;
SET ivf.gpu_backend = cpu;
