#!/usr/bin/env bash
# ivf: the whole test suite, one command.
#
#   bash test/run_all.sh
#
# Works on a fresh Debian bookworm machine as root (installs its own
# dependencies with apt), and as a normal user who already has them (apt is
# skipped, servers run as that user; `make install` needs write access to
# PostgreSQL's directories, or passwordless sudo).
#
# Steps (each prints a header; a failing step is counted and the rest still run):
#    1 deps          test/lib/install-deps.sh (apt-get, root only)
#    2 build         make clean && make WERROR=1
#    3 install       make install, then pgvector beside it for test/t/023 (test/lib/install-pgvector.sh:
#                    built from ../shared/vendor; without a tarball or an installed one, 023 skips)
#    4 kernel-test   make kernel-test (IVF_DATA_DIR = ../shared/data; without it the real-data
#                    checks use Debian's Fashion-MNIST, as TAP 010/016/017 do)
#    5 neon-check    make neon-check: src/kernels and the C kernel tests cross-compiled for AArch64
#                    and run under qemu-user (the NEON level against the scalar reference); skipped
#                    with its reason when the cross compiler or qemu is missing (optional deps)
#    6 cluster       throwaway cluster in a mktemp -d dir (unix socket only)
#    7 installcheck  make installcheck TAP_TESTS= (pg_regress: test/sql, test/expected) against it
#    8 tap           make prove_installcheck (PGXS: prove test/t/*.pl with PostgreSQL::Test::Cluster),
#                    as postgres when root, from a copy of Makefile + test/t + test/fixtures + docs it owns
#    9 client        psycopg 3 + pgvector Python client: test/client/test_pgvector_client.py and
#                    test_halfvec_client.py (HalfVector under ivf and ivf_pgvector); skipped with
#                    its reason when pip cannot install test/client/requirements.txt
#   10 fuzz          make fuzz FUZZ_SECONDS=${IVF_FUZZ_SECONDS:-60} (libFuzzer + ASan/UBSan: the text
#                    parser and the Faiss file reader, half the seconds each)
#   11 gpu-compile   make WITH_CUDA=1 gpu/ivf_gpu.so if nvcc exists, and gpu/test_ivf_gpu on it
#                    (runs the kernels only with a device); make hip-check if hipcc exists (the
#                    HIP half compiled, no hipBLAS needed), and where hipBLAS is installed too,
#                    make WITH_HIP=1 gpu/ivf_gpu.so and gpu/test_ivf_gpu on it; else skipped
#
# Environment:
#   IVF_DATA_DIR        data sets (default: ../shared/data next to the repo; optional)
#   IVF_FUZZ_SECONDS    fuzz duration (default 60)
#   IVF_VENDOR_DIR      third-party release sources, e.g. pgvector (default: ../shared/vendor)
#   IVF_SKIP_<STEP>=1   skip a step for local iteration: DEPS BUILD INSTALL KERNEL NEON REGRESS
#                       TAP CLIENT FUZZ GPU (a skipped step is reported, not counted as passed)
#   IVF_KEEP_TMP=1      keep the temp dir (cluster, TAP logs) for debugging
#   IVF_TAP_TESTS       TAP files to run instead of all (e.g. "t/015_gpu_worker.pl t/019_rls_privileges.pl";
#                       passed on as PROVE_TESTS=test/t/...)
#   IVF_REGRESS         pg_regress tests to run instead of all (e.g. "ivfflat_batch ivf_tune")
#   PG_CONFIG           pg_config to use (default: PostgreSQL 15's)
#
# The summary lists skipped steps and skipped tests with their reasons (prove's
# "skipped: WHY" for a TAP file, "skip  WHAT" from the C tests, e.g. the GPU test
# without a device), then "N passed, M failed" (N, M count steps); it exits
# non-zero if any failed (a skip is not a failure).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=test/lib/common.sh
. test/lib/common.sh
# shellcheck source=test/lib/cluster.sh
. test/lib/cluster.sh

T_START="$(date +%s)"
STEP_NAMES=()
STEP_RESULTS=()
STEP_TIMES=()
N_PASS=0
N_FAIL=0
N_SKIP=0
STEP_NO=0

record() { # name result seconds
	STEP_NAMES+=("$1")
	STEP_RESULTS+=("$2")
	STEP_TIMES+=("$3")
	case "$2" in
	PASS) N_PASS=$((N_PASS + 1)) ;;
	FAIL) N_FAIL=$((N_FAIL + 1)) ;;
	SKIP*) N_SKIP=$((N_SKIP + 1)) ;;
	esac
}

# run_step NAME SKIPVAR FUNCTION
# The function runs in a subshell with errexit on; exit status 0 = pass,
# 77 = skipped (nothing to do on this machine), anything else = fail.
run_step() {
	local name="$1" skipvar="$2" fn="$3" t0 rc
	STEP_NO=$((STEP_NO + 1))
	ivf_header "step $STEP_NO: $name"
	if [ -n "$skipvar" ] && [ "${!skipvar:-0}" = 1 ]; then
		echo "skipped ($skipvar=1)"
		record "$name" "SKIP ($skipvar=1)" 0
		return 0
	fi
	t0="$(date +%s)"
	set +e
	(
		set -euo pipefail
		"$fn"
	)
	rc=$?
	set -e
	if [ "$rc" -eq 0 ]; then
		echo "--> $name: PASS ($(ivf_elapsed "$t0"))"
		record "$name" PASS "$(($(date +%s) - t0))"
	elif [ "$rc" -eq 77 ]; then
		echo "--> $name: SKIPPED"
		record "$name" "SKIP (not available)" "$(($(date +%s) - t0))"
	else
		echo "--> $name: FAIL (exit $rc, $(ivf_elapsed "$t0"))"
		record "$name" FAIL "$(($(date +%s) - t0))"
	fi
}

PG_CONFIG="$(ivf_pg_config || true)"
DATA_DIR="$(ivf_data_dir || true)"

# note_skips STEP FILE: add the tests that FILE (a step's output) says were
# skipped to $IVF_TMP/skips, one "STEP: what: why" a line, for the summary.
# prove prints "test/t/NNN_x.pl .. skipped: WHY" for a file that plans skip_all;
# the C test programs print "skip  WHAT (WHY)".
note_skips() {
	sed -n -E -e 's/^(\[[0-9:]+\] )?((test\/)?t\/[^ ]+\.pl) \.+ skipped: (.*)$/\2: \4/p' \
		-e 's/^skip  (.*)$/\1/p' "$2" | sed "s|^|$1: |" >>"$IVF_TMP/skips"
}

# --------------------------------------------------------------------------
step_deps() {
	bash test/lib/install-deps.sh
	# pg_config may only exist now
	command -v "$(ivf_pg_config)" >/dev/null
}

step_build() {
	echo "PG_CONFIG=$PG_CONFIG ($("$PG_CONFIG" --version))"
	make clean PG_CONFIG="$PG_CONFIG" >/dev/null
	make -j"$(nproc)" WERROR=1 PG_CONFIG="$PG_CONFIG"
}

step_install() {
	if ivf_is_root; then
		make install PG_CONFIG="$PG_CONFIG"
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		echo "not root: using passwordless sudo for make install"
		sudo -n make install PG_CONFIG="$PG_CONFIG"
	elif make install PG_CONFIG="$PG_CONFIG"; then
		:
	else
		echo "make install failed: run this script as root, or give this user write access to"
		echo "  $("$PG_CONFIG" --pkglibdir) and $("$PG_CONFIG" --sharedir)/extension"
		return 1
	fi
	# 77: no pgvector source nor installed pgvector; the test that needs it skips
	PG_CONFIG="$PG_CONFIG" bash test/lib/install-pgvector.sh || [ $? -eq 77 ]
}

step_kernel() {
	if [ -n "$DATA_DIR" ]; then
		echo "IVF_DATA_DIR=$DATA_DIR"
	else
		ivf_warn "data dir not found (set IVF_DATA_DIR or put it at ../shared/data)"
	fi
	IVF_DATA_DIR="$DATA_DIR" make kernel-test PG_CONFIG="$PG_CONFIG" 2>&1 | tee "$IVF_TMP/kernel.out"
	note_skips kernel-test "$IVF_TMP/kernel.out"
}

# The NEON kernels on this x86-64 machine: cross compiler + qemu-user, both
# optional packages (test/lib/install-deps.sh); without them, a skip with
# the reason.  Run times under qemu say nothing about ARM performance.
step_neon() {
	local t missing=()
	for t in aarch64-linux-gnu-gcc qemu-aarch64; do
		command -v "$t" >/dev/null 2>&1 || missing+=("$t")
	done
	if [ "${#missing[@]}" -gt 0 ]; then
		echo "skip  the NEON kernels under qemu (${missing[*]} not found: packages gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user not installed; no network, or not root?)" >"$IVF_TMP/neon.out"
		cat "$IVF_TMP/neon.out"
		note_skips neon-check "$IVF_TMP/neon.out"
		return 77
	fi
	make neon-check PG_CONFIG="$PG_CONFIG" 2>&1 | tee "$IVF_TMP/neon.out"
	note_skips neon-check "$IVF_TMP/neon.out"
}

step_cluster() {
	ivf_cluster_start
	"$(ivf_pg_bindir)/psql" -X -At -c 'SELECT version()'
}

need_cluster() {
	if [ ! -f "$IVF_TMP/cluster/env.sh" ]; then
		echo "no running test cluster (the cluster step failed)"
		return 1
	fi
	ivf_cluster_env
}

step_regress() {
	need_cluster
	rm -rf results regression.diffs regression.out
	local only=()
	[ -n "${IVF_REGRESS:-}" ] && only=(REGRESS="$IVF_REGRESS")
	# TAP_TESTS=: the TAP files are step 7's
	if make installcheck TAP_TESTS= PG_CONFIG="$PG_CONFIG" "${only[@]}"; then
		return 0
	fi
	if [ -f regression.diffs ]; then
		ivf_header "regression.diffs"
		cat regression.diffs
	fi
	return 1
}

step_tap() {
	local bindir tapdir data rc logf
	bindir="$(ivf_pg_bindir)"
	shopt -s nullglob
	local tests=(test/t/*.pl)
	if [ -n "${IVF_TAP_TESTS:-}" ]; then
		local t
		tests=()
		for t in $IVF_TAP_TESTS; do
			tests+=("test/t/$(basename "$t")")
		done
	fi
	if [ "${#tests[@]}" -eq 0 ]; then
		echo "no TAP tests in test/t"
		return 1
	fi
	# PGXS's prove_installcheck (make prove_installcheck) runs prove with
	# TESTDIR=. (tmp_check/ and its logs go there).  The tests start their own
	# servers, which refuse to run as root: run make as `postgres` in a copy
	# of what it needs that it owns (the repo may live under /root).
	tapdir="$IVF_TMP/tap"
	mkdir -p "$tapdir/test"
	cp Makefile "$tapdir/"
	cp -R test/t "$tapdir/test/t"
	[ -d test/fixtures ] && cp -R test/fixtures "$tapdir/test/fixtures"
	# t/029 runs the SQL of docs/tutorial.md, found beside t/'s parent
	[ -d docs ] && cp -R docs "$tapdir/test/docs"
	data="$DATA_DIR"
	if [ -n "$data" ] && ivf_is_root && ! runuser -u postgres -- test -r "$data/README.md"; then
		echo "data dir not readable by postgres: copying it to $tapdir/data"
		cp -R "$data" "$tapdir/data"
		data="$tapdir/data"
	fi
	ivf_chown_pg "$tapdir"
	set +e
	ivf_as_pg env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE \
		PATH="$bindir:/usr/local/bin:/usr/bin:/bin" \
		IVF_DATA_DIR="$data" \
		IVF_TEST_DIR="$tapdir/test" \
		make -C "$tapdir" prove_installcheck PG_CONFIG="$PG_CONFIG" \
		PROVE_TESTS="${tests[*]}" PROVE_FLAGS=--timer 2>&1 | tee "$IVF_TMP/prove.out"
	rc=${PIPESTATUS[0]}
	set -e
	note_skips tap "$IVF_TMP/prove.out"
	if [ "$rc" -ne 0 ]; then
		for logf in "$tapdir"/tmp_check/log/regress_log_*; do
			ivf_header "tail of $(basename "$logf")"
			tail -n 60 "$logf"
		done
	fi
	return "$rc"
}

pick_python() {
	local py
	for py in /usr/bin/python3 python3; do
		if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import venv, ensurepip' 2>/dev/null; then
			printf '%s\n' "$(command -v "$py")"
			return 0
		fi
	done
	return 1
}

step_client() {
	local py venv
	need_cluster
	py="$(pick_python)" || {
		echo "no python3 with venv/ensurepip (install python3-venv)"
		return 1
	}
	venv="${IVF_VENV:-$IVF_REPO_ROOT/test/client/.venv}"
	if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
		echo "creating venv $venv with $py ($("$py" --version))"
		rm -rf "$venv"
		"$py" -m venv "$venv"
	else
		echo "reusing venv $venv ($("$venv/bin/python" --version))"
	fi
	# pip's own CA bundle doesn't know CAs that only the system store has
	# (e.g. a TLS-inspecting proxy's); ca-certificates provides the bundle.
	if [ -z "${PIP_CERT:-}" ] && [ -r /etc/ssl/certs/ca-certificates.crt ]; then
		export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
	fi
	# without the pinned packages (no network, no index) the client tests
	# cannot run: a skip with its reason, not a failure of ivf
	if ! PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
		"$venv/bin/python" -m pip install -q -r test/client/requirements.txt; then
		echo "skip  client tests: pip could not install test/client/requirements.txt into $venv (no network or package index?)"
		return 77
	fi
	"$venv/bin/python" -m pip freeze | grep -i -E '^(psycopg|psycopg-binary|numpy|pgvector)=='
	"$(ivf_pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 -c 'SET client_min_messages = warning' \
		-c 'DROP DATABASE IF EXISTS ivf_client' -c 'CREATE DATABASE ivf_client'
	PGDATABASE=ivf_client "$venv/bin/python" test/client/test_pgvector_client.py
	# halfvec through pgvector's HalfVector, under ivf and ivf_pgvector (its
	# own scratch databases)
	PGDATABASE=ivf_client "$venv/bin/python" test/client/test_halfvec_client.py
}

step_fuzz() {
	local secs="${IVF_FUZZ_SECONDS:-60}" log="$IVF_TMP/fuzz.log" rc
	if [ ! -f test/fuzz/fuzz_vector_parse.c ]; then
		echo "FAIL: fuzz target test/fuzz/fuzz_vector_parse.c does not exist"
		return 1
	fi
	echo "make fuzz FUZZ_SECONDS=$secs (full output in the fuzzer log; tail below)"
	set +e
	make fuzz FUZZ_SECONDS="$secs" PG_CONFIG="$PG_CONFIG" >"$log" 2>&1
	rc=$?
	set -e
	if [ "$rc" -ne 0 ]; then
		tail -n 80 "$log"
	else
		grep -v -E '^#[0-9]+\s+(NEW|REDUCE|pulse)' "$log" | tail -n 25
	fi
	return "$rc"
}

# hipBLAS's header where ROCm installs it (Debian has none)
have_hipblas() {
	local d
	for d in "${ROCM_PATH:-}" /opt/rocm /usr; do
		[ -n "$d" ] && [ -f "$d/include/hipblas/hipblas.h" ] && return 0
	done
	return 1
}

step_gpu() {
	local nvcc="" hipcc=""
	if command -v nvcc >/dev/null 2>&1; then
		nvcc="$(command -v nvcc)"
	elif [ -x /usr/local/cuda/bin/nvcc ]; then
		nvcc=/usr/local/cuda/bin/nvcc
	fi
	command -v hipcc >/dev/null 2>&1 && hipcc="$(command -v hipcc)"
	if [ -z "$nvcc" ] && [ -z "$hipcc" ]; then
		echo "skipped: neither nvcc nor hipcc found"
		return 77
	fi
	if [ -n "$nvcc" ]; then
		echo "nvcc: $nvcc ($("$nvcc" --version | tail -n 1))"
		rm -f gpu/ivf_gpu.so
		make WITH_CUDA=1 NVCC="$nvcc" PG_CONFIG="$PG_CONFIG" gpu/ivf_gpu.so
		ls -l gpu/ivf_gpu.so
		# loads without a driver and exports the operations table (the
		# kernels themselves are only checked where there is a device)
		make PG_CONFIG="$PG_CONFIG" gpu-test GPU_LIB=gpu/ivf_gpu.so 2>&1 | tee "$IVF_TMP/gpu.out"
		note_skips gpu-compile "$IVF_TMP/gpu.out"
	fi
	if [ -n "$hipcc" ]; then
		echo "hipcc: $hipcc ($(hipconfig --version 2>/dev/null || echo "version unknown"))"
		make hip-check HIPCC="$hipcc" PG_CONFIG="$PG_CONFIG"
		if have_hipblas; then
			rm -f gpu/ivf_gpu.so
			make WITH_HIP=1 HIPCC="$hipcc" PG_CONFIG="$PG_CONFIG" gpu/ivf_gpu.so
			ls -l gpu/ivf_gpu.so
			make PG_CONFIG="$PG_CONFIG" gpu-test GPU_LIB=gpu/ivf_gpu.so 2>&1 | tee "$IVF_TMP/gpu.out"
			note_skips gpu-compile "$IVF_TMP/gpu.out"
		else
			echo "no hipBLAS (ROCm's include/hipblas/hipblas.h): the HIP library is compiled (hip-check), not linked"
		fi
	fi
}

# --------------------------------------------------------------------------
ivf_info "repo: $IVF_REPO_ROOT; user: $(id -un); CI=${CI:-}"
trap ivf_cleanup EXIT
trap 'exit 130' INT TERM

run_step deps IVF_SKIP_DEPS step_deps
# after the deps: the temp dir belongs to the `postgres` user, which
# installing postgresql-15 creates
ivf_tmp_init
ivf_info "temp dir: $IVF_TMP"
: >"$IVF_TMP/skips"
PG_CONFIG="$(ivf_pg_config || true)"
if [ -z "$PG_CONFIG" ]; then
	ivf_warn "pg_config not found; later steps will fail"
	PG_CONFIG=pg_config
fi
run_step build IVF_SKIP_BUILD step_build
run_step install IVF_SKIP_INSTALL step_install
run_step kernel-test IVF_SKIP_KERNEL step_kernel
run_step neon-check IVF_SKIP_NEON step_neon
run_step cluster "" step_cluster
run_step installcheck IVF_SKIP_REGRESS step_regress
run_step tap IVF_SKIP_TAP step_tap
run_step client IVF_SKIP_CLIENT step_client
run_step fuzz IVF_SKIP_FUZZ step_fuzz
run_step gpu-compile IVF_SKIP_GPU step_gpu

SKIPPED_TESTS=()
mapfile -t SKIPPED_TESTS <"$IVF_TMP/skips"

# Stop the cluster and remove the temp dir now, so that the summary really is
# the last thing printed (the EXIT trap then has nothing left to do).
ivf_header "cleanup"
ivf_cleanup || true

ivf_header "summary"
for i in "${!STEP_NAMES[@]}"; do
	printf '  %-14s %-26s %5ss\n' "${STEP_NAMES[$i]}" "${STEP_RESULTS[$i]}" "${STEP_TIMES[$i]}"
done
printf '  total time: %s; %d step(s) skipped; %d test(s) skipped%s\n' "$(ivf_elapsed "$T_START")" \
	"$N_SKIP" "${#SKIPPED_TESTS[@]}" "$([ "${#SKIPPED_TESTS[@]}" -eq 0 ] || echo :)"
for i in "${!SKIPPED_TESTS[@]}"; do
	printf '    %s\n' "${SKIPPED_TESTS[$i]}"
done
echo "$N_PASS passed, $N_FAIL failed"
[ "$N_FAIL" -eq 0 ]
