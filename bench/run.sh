#!/usr/bin/env bash
# ivf benchmark: ivf's ivfflat in PostgreSQL against Faiss IndexIVFFlat, one
# data set per invocation, everything in one run (see bench/README.md).
#
#   bash bench/run.sh --dataset siftsmall|bigann10k|fashion-mnist|synth-1m-128|synth-100k-1536
#                     [--lists N] [--nprobe 1,2,4,8,16,32] [--queries N] [--rows N] [--out DIR]
#                     [--shared-buffers SIZE] [--pg-set NAME=VALUE]... [other ivfbench.py options]
#   bash bench/run.sh --help           all options (ivfbench.py's included)
#
# It: checks/installs the dependencies (test/lib/install-deps.sh; as root,
# apt-get only for what is missing), creates or reuses the virtual environment
# bench/.venv with bench/requirements.txt (pinned; pip runs only when that
# file changed), starts a throwaway PostgreSQL cluster (test/lib/cluster.sh:
# a temp dir, unix socket only, as the `postgres` user when root), gives it
# benchmark settings and restarts it, runs bench/ivfbench.py, and removes the
# cluster at the end.  The installed extension is benchmarked: set
# IVF_BUILD=1 to build and install the working tree first (as bench/demo.sh does).
#
#   bash bench/run.sh --dataset siftsmall --peers faiss,pgvector-ivfflat,pgvector-hnsw
#                      ivf against Faiss and pgvector's IVFFlat and HNSW in one run
#   bash bench/run.sh --dataset siftsmall --peers ivf-pgvector
#                      ivf against its own index on pgvector's vector type
#                      (the companion extension ivf_pgvector) in one run
#   bash bench/run.sh --dataset bigann10k --peers ivf-halfvec,pgvector-ivfflat,pgvector-ivfflat-halfvec
#                      ivf on a halfvec column against ivf on vector, and both
#                      against pgvector's IVFFlat on the same type, in one run
#
# With a pgvector peer or ivf-pgvector in --peers, pgvector is installed into
# the benchmarked PostgreSQL first by test/lib/install-pgvector.sh (as the
# test suite does: built from ../shared/vendor/pgvector-*.tar.gz, or the one
# already installed); when there is neither, run.sh says so and exits with
# status 77.  ivf_pgvector's files come with ivf's make install (IVF_BUILD=1);
# run.sh stops when they are not installed.
#
# Options handled here (the rest go to ivfbench.py):
#   --shared-buffers SIZE   default: 25% of RAM or 2GB, whichever is less
#                           (or $IVF_BENCH_SHARED_BUFFERS)
#   --pg-set NAME=VALUE     extra server setting (ALTER SYSTEM), repeatable
#   --huge-pages            (root) reserve 2 MB huge pages for shared_buffers
#                           (vm.nr_hugepages, restored at the end) and start the
#                           server with huge_pages = on, as production servers
#                           with large shared_buffers are set up; the client
#                           and Faiss get transparent huge pages for their
#                           arrays the same way (GLIBC_TUNABLES=glibc.malloc.hugetlb=1;
#                           numpy asks for them itself)
# Server settings always applied: jit = off (JIT compile time would be charged
# to single queries), max_parallel_workers_per_gather = 0 (one process per
# query, like Faiss's one thread), max_parallel_maintenance_workers = 0 (a
# serial build, like Faiss's one thread), max_wal_size = 8GB (loading
# without forced checkpoints).  All non-default settings are recorded in the JSONL env record.
#
# Environment: IVF_DATA_DIR (default ../shared/data), IVF_SKIP_DEPS=1,
# IVF_BUILD=1, IVF_KEEP_TMP=1 (keep the cluster's temp dir), IVF_BENCH_VENV
# (default bench/.venv), IVF_BENCH_EXTRA_DEPS (more Debian packages), PG_CONFIG.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=test/lib/common.sh
. test/lib/common.sh
# shellcheck source=test/lib/cluster.sh
. test/lib/cluster.sh

T_START="$(date +%s)"
VENV="${IVF_BENCH_VENV:-$IVF_REPO_ROOT/bench/.venv}"
SHARED_BUFFERS="${IVF_BENCH_SHARED_BUFFERS:-}"
PG_SETS=()
PY_ARGS=()
DATASET=siftsmall
PEERS=faiss
MODE=bench
HELP=0
HUGE_PAGES=0
HUGE_PAGES_OLD=

while [ $# -gt 0 ]; do
	case "$1" in
	--shared-buffers) SHARED_BUFFERS="${2:?--shared-buffers needs a size}"; shift 2 ;;
	--shared-buffers=*) SHARED_BUFFERS="${1#*=}"; shift ;;
	--pg-set) PG_SETS+=("${2:?--pg-set needs NAME=VALUE}"); shift 2 ;;
	--pg-set=*) PG_SETS+=("${1#*=}"); shift ;;
	--huge-pages) HUGE_PAGES=1; shift ;;
	--dataset) DATASET="${2:?--dataset needs a name}"; PY_ARGS+=("$1" "$2"); shift 2 ;;
	--dataset=*) DATASET="${1#*=}"; PY_ARGS+=("$1"); shift ;;
	--peers) PEERS="${2:?--peers needs a list}"; PY_ARGS+=("$1" "$2"); shift 2 ;;
	--peers=*) PEERS="${1#*=}"; PY_ARGS+=("$1"); shift ;;
	--mode) MODE="${2:?}"; PY_ARGS+=("$1" "$2"); shift 2 ;;
	--mode=*) MODE="${1#*=}"; PY_ARGS+=("$1"); shift ;;
	-h | --help) HELP=1; shift ;;
	*) PY_ARGS+=("$1"); shift ;;
	esac
done

step() { ivf_header "bench: $*"; }

# size in MB of a PostgreSQL memory setting such as 2GB, 512MB, 131072kB
size_mb() {
	local v="$1"
	case "$v" in
	*TB) echo $((${v%TB} * 1024 * 1024)) ;;
	*GB) echo $((${v%GB} * 1024)) ;;
	*MB) echo $((${v%MB})) ;;
	*kB) echo $((${v%kB} / 1024)) ;;
	*) ivf_die "--huge-pages: cannot size shared_buffers '$v' (use kB, MB, GB or TB)" ;;
	esac
}

huge_pages_restore() {
	if [ -n "$HUGE_PAGES_OLD" ]; then
		echo "$HUGE_PAGES_OLD" >/proc/sys/vm/nr_hugepages || true
		HUGE_PAGES_OLD=
	fi
}

# reserve enough 2 MB pages for shared_buffers plus the rest of the
# server's shared memory (a generous 10% + 64 MB)
huge_pages_reserve() {
	local sb_mb want have
	ivf_is_root || ivf_die "--huge-pages needs root (it sets vm.nr_hugepages)"
	[ "$(awk '/^Hugepagesize:/ { print $2 }' /proc/meminfo)" = 2048 ] ||
		ivf_die "--huge-pages: this kernel's default huge page size is not 2 MB"
	sb_mb="$(size_mb "$SHARED_BUFFERS")"
	want=$(((sb_mb + sb_mb / 10 + 64) / 2))
	HUGE_PAGES_OLD="$(cat /proc/sys/vm/nr_hugepages)"
	echo $((HUGE_PAGES_OLD + want)) >/proc/sys/vm/nr_hugepages
	have="$(cat /proc/sys/vm/nr_hugepages)"
	[ "$have" -ge $((HUGE_PAGES_OLD + want)) ] ||
		ivf_die "--huge-pages: the kernel reserved $have of $((HUGE_PAGES_OLD + want)) huge pages (memory too fragmented?)"
	ivf_info "reserved $want huge pages of 2 MB for shared_buffers = $SHARED_BUFFERS"
	PG_SETS+=("huge_pages=on")
}

pick_python() {
	local py
	for py in /usr/bin/python3 python3; do
		if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import venv, ensurepip' 2>/dev/null; then
			command -v "$py"
			return 0
		fi
	done
	return 1
}

setup_venv() {
	local py stamp want
	want="$(sha256sum bench/requirements.txt | cut -d' ' -f1)"
	stamp="$VENV/.requirements.sha256"
	if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
		py="$(pick_python)" || ivf_die "no python3 with venv/ensurepip (apt-get install python3-venv)"
		echo "creating venv $VENV with $py ($("$py" --version))"
		rm -rf "$VENV"
		"$py" -m venv "$VENV"
	fi
	if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
		if [ -z "${PIP_CERT:-}" ] && [ -r /etc/ssl/certs/ca-certificates.crt ]; then
			export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
		fi
		echo "pip install -r bench/requirements.txt into $VENV"
		PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
			"$VENV/bin/python" -m pip install -q -r bench/requirements.txt
		printf '%s\n' "$want" >"$stamp"
	else
		echo "reusing venv $VENV (requirements unchanged)"
	fi
	"$VENV/bin/python" -m pip freeze 2>/dev/null |
		grep -i -E '^(faiss-cpu|psycopg|psycopg-binary|numpy|pgvector|matplotlib)==' | tr '\n' ' '
	echo
}

if [ "$HELP" = 1 ]; then
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
	if [ -x "$VENV/bin/python" ]; then
		echo
		PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" bench/ivfbench.py --help
	else
		echo "(ivfbench.py's own options are listed once bench/.venv exists: run once, or see bench/README.md)"
	fi
	exit 0
fi

step "dependencies"
if [ "${IVF_SKIP_DEPS:-0}" = 1 ]; then
	echo "skipped (IVF_SKIP_DEPS=1)"
else
	extra=()
	[ "$DATASET" = fashion-mnist ] && extra+=(dataset-fashion-mnist)
	[ "$MODE" = profile ] && extra+=(linux-perf)
	# shellcheck disable=SC2206 # word splitting intended
	[ -n "${IVF_BENCH_EXTRA_DEPS:-}" ] && extra+=($IVF_BENCH_EXTRA_DEPS)
	bash test/lib/install-deps.sh "${extra[@]}"
fi
PG_CONFIG="$(ivf_pg_config)" || ivf_die "pg_config not found"
BINDIR="$(ivf_pg_bindir)"

if [ "${IVF_BUILD:-0}" = 1 ]; then
	step "build and install the extension (IVF_BUILD=1)"
	make -s -j"$(nproc)" PG_CONFIG="$PG_CONFIG"
	if ivf_is_root; then
		make -s install PG_CONFIG="$PG_CONFIG"
	else
		sudo -n make install PG_CONFIG="$PG_CONFIG" || ivf_die "make install needs root"
	fi
fi
[ -f "$("$PG_CONFIG" --sharedir)/extension/ivf.control" ] ||
	ivf_die "the ivf extension is not installed (make && make install, or IVF_BUILD=1)"

case ",$PEERS," in
*,ivf-pgvector,*)
	# the companion extension comes with ivf's make install (IVF_BUILD=1
	# above); an ivf installed before it existed lacks it
	ext="$("$PG_CONFIG" --sharedir)/extension"
	[ -f "$ext/ivf_pgvector.control" ] ||
		ivf_die "--peers ivf-pgvector: ivf_pgvector is not installed in $ext (make install installs it with ivf, or set IVF_BUILD=1)"
	ipv_version="$(sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" "$ext/ivf_pgvector.control")"
	[ -f "$ext/ivf_pgvector--$ipv_version.sql" ] ||
		ivf_die "--peers ivf-pgvector: $ext/ivf_pgvector--$ipv_version.sql is missing (make install, or IVF_BUILD=1)"
	;;
esac

case ",$PEERS," in
*,pgvector-* | *,ivf-pgvector,*)
	# profile mode measures no pgvector peer, but ivf-pgvector needs pgvector
	if [ "$MODE" != profile ] || [[ ",$PEERS," == *,ivf-pgvector,* ]]; then
		# the same installer the test suite runs (test/run_all.sh's install
		# step): pgvector from ../shared/vendor, or the one already installed
		step "pgvector for --peers $PEERS"
		rc=0
		PG_CONFIG="$PG_CONFIG" bash test/lib/install-pgvector.sh || rc=$?
		if [ "$rc" = 77 ]; then
			echo "bench: --peers $PEERS needs pgvector, which is not installed in $("$PG_CONFIG" --sharedir) and" \
				"has no source tarball (pgvector-*.tar.gz in \$IVF_VENDOR_DIR, default ../shared/vendor): stopping" >&2
			exit 77
		fi
		[ "$rc" = 0 ] || ivf_die "installing pgvector failed (test/lib/install-pgvector.sh exited $rc)"
	fi
	;;
esac

step "python environment"
setup_venv

step "throwaway PostgreSQL cluster"
if [ -z "$SHARED_BUFFERS" ]; then
	mem_mb=$(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) / 1024))
	sb=$((mem_mb / 4))
	[ "$sb" -gt 2048 ] && sb=2048
	SHARED_BUFFERS="${sb}MB"
fi
ivf_tmp_init
trap 'ivf_cleanup; huge_pages_restore' EXIT
trap 'exit 130' INT TERM
[ "$HUGE_PAGES" = 1 ] && huge_pages_reserve
ivf_cluster_start
{
	echo "ALTER SYSTEM SET shared_buffers = '$SHARED_BUFFERS';"
	echo "ALTER SYSTEM SET jit = off;"
	echo "ALTER SYSTEM SET max_parallel_workers_per_gather = 0;"
	echo "ALTER SYSTEM SET max_parallel_maintenance_workers = 0;"
	echo "ALTER SYSTEM SET max_wal_size = '8GB';"
	for s in "${PG_SETS[@]}"; do
		case "$s" in
		*=*) echo "ALTER SYSTEM SET ${s%%=*} = '$(printf '%s' "${s#*=}" | sed "s/'/''/g")';" ;;
		*) ivf_die "--pg-set $s: expected NAME=VALUE" ;;
		esac
	done
} | "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1
ivf_info "restarting with shared_buffers = $SHARED_BUFFERS${PG_SETS[*]:+, ${PG_SETS[*]}}"
if ! ivf_as_pg "$BINDIR/pg_ctl" -D "$IVF_PGDATA" -l "$IVF_PGLOG" -w -t 120 restart >/dev/null; then
	tail -n 30 "$IVF_PGLOG" >&2 || true
	ivf_die "server did not restart with the benchmark settings"
fi

step "ivfbench.py ${PY_ARGS[*]}"
if [ "$HUGE_PAGES" = 1 ]; then
	# only the client process (Faiss): the server has its own setting
	export GLIBC_TUNABLES="glibc.malloc.hugetlb=1${GLIBC_TUNABLES:+:$GLIBC_TUNABLES}"
fi
PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" -u bench/ivfbench.py "${PY_ARGS[@]}"

step "clean up"
ivf_cleanup
huge_pages_restore
trap - EXIT
echo "bench finished in $(ivf_elapsed "$T_START")"
