#!/usr/bin/env bash
# Where does an ivf query's time go?  Loads a data set into a throwaway cluster
# and builds the index exactly as bench/run.sh does, then:
#
#   1. a time breakdown per nprobe: client round trip of a prepared no-op
#      (SELECT 1, SELECT vector_dims($1)), client wall time of the prepared
#      k-NN query, and from EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) the
#      server's execution time, the index scan's startup time (centroids,
#      list scans, top-k selection: everything before the first row) and the
#      time to return the rows; a linear fit over nprobe splits the index
#      scan into a fixed part and a per-list part (with the implied GB/s);
#   2. `perf record` of the backend process while it runs
#      prepared queries for --profile-seconds (5) at the last nprobe, printing the
#      top shared objects and symbols (and the fraction of wall time the
#      backend was on a CPU at all).
#
#   bash bench/profile.sh [--dataset siftsmall] [--nprobe 1,4,16] [--profile-seconds 5 | --profile-queries N]
#                         [--perf-freq 4999] [--pin same|split|none] [--peers ivf-pgvector] [other run.sh options]
#
# With --peers ivf-pgvector, 1 and 2 are repeated for ivf_pgvector's index on
# pgvector's vector (same cluster, rows and build), followed by both side by
# side and an interleaved A/B of wall, backend CPU and client CPU time per
# query (the engines in turn, so a busy machine's load hits both alike).
#
# Output: the breakdown and the perf top lists on stdout; under bench/results/
# (or --out) <dataset>-profile-<timestamp>.jsonl, -perf.data (open it with
# `perf report -i FILE`) and -perf.txt.  Needs perf (Debian: linux-perf,
# installed as a dependency when root) and root or perf_event_paranoid <= 1
# to attach to the backend.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/run.sh" --mode profile "$@"
