#!/usr/bin/env bash
# The device check, run on the lent GPU machine from the repository root
# with .devlibs carried (gpu/device_prepare.sh makes it): builds
# gpu/ivf_gpu.so there with its nvcc, then runs the standalone test of the
# GPU library's contract on the device against brute force (the CPU
# implementation first, then the device library).  Output: stdout, and
# $OUT/device_check.log when $OUT is set.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
log="${OUT:-/tmp}/device_check.log"
{
	echo "== $(date -u +%FT%TZ) $(uname -m)"
	nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true
	command -v nvcc && nvcc --version | tail -n 1
	rm -f gpu/ivf_gpu.so
	make -s WITH_CUDA=1 NVCC="$(command -v nvcc || echo nvcc)" PG_CONFIG=true gpu/ivf_gpu.so 2>&1 ||
		nvcc -O2 -std=c++17 --extended-lambda -gencode=arch=compute_90,code=sm_90 \
			-Xcompiler -fPIC -shared -o gpu/ivf_gpu.so gpu/ivf_gpu.cu -lcublas
	ls -l gpu/ivf_gpu.so
	LD_LIBRARY_PATH="$PWD/.devlibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
		.devlibs/test_ivf_gpu gpu/ivf_gpu.so
	echo "rc $?"
} 2>&1 | tee "$log"
