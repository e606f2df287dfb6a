#!/usr/bin/env bash
# ivf demo: build, install, load a real data set, run exact k-NN queries, build
# an ivfflat index, run the same queries through it at several nprobe values,
# and print recall@k and speed for each.
#
#   bash bench/demo.sh
#
# On a fresh Debian bookworm machine run it as root: it installs its own
# dependencies (test/lib/install-deps.sh), builds and installs the extension,
# starts a throwaway PostgreSQL cluster (unix socket only, in a temp dir that
# is removed at the end), loads the data and queries it.
#
# Data: siftsmall (10,000 x 128, 100 queries, official ground truth) from
# ../shared/data/siftsmall-128 (or $IVF_DATA_DIR/siftsmall-128); when that is
# absent, Fashion-MNIST from the Debian package dataset-fashion-mnist
# (first $IVF_DEMO_N=10000 training images as base, 100 test images as
# queries, exact ground truth computed here).
#
# Environment: IVF_DATA_DIR, IVF_DEMO_N (Fashion-MNIST base size),
# IVF_DEMO_K (default 10), IVF_DEMO_LISTS (default 100), IVF_SKIP_DEPS=1, IVF_SKIP_BUILD=1 (use the
# installed extension), IVF_KEEP_TMP=1, PG_CONFIG.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=test/lib/common.sh
. test/lib/common.sh
# shellcheck source=test/lib/cluster.sh
. test/lib/cluster.sh

K="${IVF_DEMO_K:-10}"
LISTS="${IVF_DEMO_LISTS:-100}"
T_START="$(date +%s)"
STEP=0
step() {
	STEP=$((STEP + 1))
	ivf_header "demo step $STEP: $*"
}
now_ns() { date +%s%N; }

trap ivf_cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- data source
DATA_DIR="$(ivf_data_dir || true)"
if [ -n "$DATA_DIR" ] && [ -r "$DATA_DIR/siftsmall-128/siftsmall_base.fvecs" ]; then
	DATASET=siftsmall
else
	DATASET=fashion-mnist
fi

step "dependencies"
if [ "${IVF_SKIP_DEPS:-0}" = 1 ]; then
	echo "skipped (IVF_SKIP_DEPS=1)"
elif [ "$DATASET" = fashion-mnist ]; then
	bash test/lib/install-deps.sh dataset-fashion-mnist
else
	bash test/lib/install-deps.sh
fi
PG_CONFIG="$(ivf_pg_config)" || ivf_die "pg_config not found"
ivf_tmp_init # owned by the `postgres` user, which the deps create
PSQL="$(ivf_pg_bindir)/psql"

step "build and install the extension"
if [ "${IVF_SKIP_BUILD:-0}" = 1 ]; then
	echo "skipped (IVF_SKIP_BUILD=1): using the installed extension"
else
	make -s -j"$(nproc)" PG_CONFIG="$PG_CONFIG"
	if ivf_is_root; then
		make -s install PG_CONFIG="$PG_CONFIG"
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo -n make install PG_CONFIG="$PG_CONFIG"
	else
		make install PG_CONFIG="$PG_CONFIG" ||
			ivf_die "make install failed: run as root (or install the extension first and set IVF_SKIP_BUILD=1)"
	fi
fi

step "start a throwaway PostgreSQL cluster"
ivf_cluster_start

step "prepare the data set ($DATASET)"
WORK="$IVF_TMP/demo"
mkdir -p "$WORK"
cc -O2 -o "$WORK/vecdata" bench/vecdata.c
VECDATA="$WORK/vecdata"
if [ "$DATASET" = siftsmall ]; then
	SRC="$DATA_DIR/siftsmall-128"
	BASE="$SRC/siftsmall_base.fvecs"
	QUERY="$SRC/siftsmall_query.fvecs"
	GT="$SRC/siftsmall_groundtruth.ivecs"
	echo "siftsmall from $SRC (TEXMEX ANN_SIFT10K; official ground truth)"
else
	FM=/usr/share/datasets/fashion-mnist
	N="${IVF_DEMO_N:-10000}"
	[ -r "$FM/train-images-idx3-ubyte.gz" ] ||
		ivf_die "no data: neither ${DATA_DIR:-../shared/data}/siftsmall-128 nor $FM (apt-get install dataset-fashion-mnist)"
	echo "../shared/data not found: using Fashion-MNIST from $FM ($N base images, 100 queries)"
	BASE="$WORK/base.fvecs"
	QUERY="$WORK/query.fvecs"
	GT="$WORK/gt.ivecs"
	gzip -dc "$FM/train-images-idx3-ubyte.gz" | "$VECDATA" idx2fvecs "$N" >"$BASE"
	gzip -dc "$FM/t10k-images-idx3-ubyte.gz" | "$VECDATA" idx2fvecs 100 >"$QUERY"
	t0="$(now_ns)"
	"$VECDATA" gt "$BASE" "$QUERY" 100 >"$GT"
	echo "exact ground truth (top 100, float64, ties to smaller id) in $((($(now_ns) - t0) / 1000000)) ms"
fi
DIM="$(od -An -t d4 -N 4 "$BASE" | tr -d ' ')"
NBASE="$(($(stat -c %s "$BASE") / (4 * (DIM + 1))))"
NQUERY="$(($(stat -c %s "$QUERY") / (4 * (DIM + 1))))"
echo "base: $NBASE x $DIM, queries: $NQUERY, k = $K"
"$VECDATA" copy "$BASE" >"$WORK/items.copy"
"$VECDATA" lines "$QUERY" >"$WORK/queries.txt"
echo "COPY text: $(wc -c <"$WORK/items.copy") bytes; first row: $(head -c 100 "$WORK/items.copy")..."

step "load: CREATE EXTENSION ivf, CREATE TABLE, COPY"
"$PSQL" -X -q -v ON_ERROR_STOP=1 -c 'CREATE DATABASE ivf_demo'
export PGDATABASE=ivf_demo
"$PSQL" -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION ivf;
CREATE TABLE items (id int PRIMARY KEY, embedding vector($DIM));
SQL
t0="$(now_ns)"
"$PSQL" -X -q -v ON_ERROR_STOP=1 -c 'COPY items (id, embedding) FROM STDIN' <"$WORK/items.copy"
load_ms=$((($(now_ns) - t0) / 1000000))
"$PSQL" -X -q -v ON_ERROR_STOP=1 -c 'VACUUM ANALYZE items'
echo "loaded $("$PSQL" -X -At -c 'SELECT count(*) FROM items') rows in $load_ms ms;" \
	"table size $("$PSQL" -X -At -c "SELECT pg_size_pretty(pg_total_relation_size('items'))")"

# Build a psql script with one k-NN query per line of queries.txt; query q's
# result rows are printed as "q|id".
make_query_script() {
	awk -v k="$K" '{ printf "SELECT %d, id FROM items ORDER BY embedding <-> '\''%s'\'' LIMIT %d;\n", NR - 1, $0, k }' \
		"$WORK/queries.txt" >"$WORK/queries.sql"
}

# run_queries LABEL [SETUP_SQL]: run every query once (after one warm-up query),
# report ms/query, QPS and recall@K.  Each line names the scan the plan
# uses (from EXPLAIN), so a row shows what it ran, whatever its label.
run_queries() {
	local label="$1" setup="${2:-}" t0 us q1 plan scan
	q1="$(head -n 1 "$WORK/queries.txt")"
	plan="$("$PSQL" -X -At -q -v ON_ERROR_STOP=1 -c "$setup" \
		-c "EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <-> '$q1' LIMIT $K")"
	echo "plan ($label):"
	printf '%s\n' "$plan" | sed 's/^/    /' | cut -c1-150
	scan="$(printf '%s\n' "$plan" | grep -o -m1 -E '(Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan)( using [a-z_0-9]+)?' || echo 'no scan')"
	"$PSQL" -X -At -v ON_ERROR_STOP=1 -c "$setup" \
		-c "SELECT id FROM items ORDER BY embedding <-> '$q1' LIMIT $K" >/dev/null # warm-up
	t0="$(now_ns)"
	{
		[ -n "$setup" ] && printf '%s;\n' "$setup"
		cat "$WORK/queries.sql"
	} | "$PSQL" -X -At -q -v ON_ERROR_STOP=1 >"$WORK/results.$label"
	us=$((($(now_ns) - t0) / 1000))
	awk -v us="$us" -v n="$NQUERY" -v label="$label [$scan]" 'BEGIN {
		printf "%s: %d queries in %.1f ms: %.3f ms/query, %.1f QPS (one psql session, client wall time)\n",
			label, n, us / 1000, us / 1000 / n, n / (us / 1e6) }'
	"$VECDATA" recall "$GT" "$K" "$WORK/results.$label" "$BASE" "$QUERY" | sed "s/^/$label [$scan]: /"
}

step "exact k-NN: ORDER BY embedding <-> \$q LIMIT $K for every query (sequential scan)"
make_query_script
run_queries exact

step "sample result (query 0)"
q0="$(head -n 1 "$WORK/queries.txt")"
echo "query 0: $(printf '%s' "$q0" | cut -c1-90)..."
"$PSQL" -X -v ON_ERROR_STOP=1 -c "SELECT id, round((embedding <-> '$q0')::numeric, 4) AS l2_distance
	FROM items ORDER BY embedding <-> '$q0' LIMIT $K"
echo "ground truth ids (top $K): $("$VECDATA" gtrow "$GT" 0 "$K")"

step "ivfflat index: CREATE INDEX ... USING ivfflat (embedding vector_l2_ops) WITH (lists = $LISTS)"
t0="$(now_ns)"
"$PSQL" -X -q -v ON_ERROR_STOP=1 -c "CREATE INDEX items_embedding_ivfflat ON items USING ivfflat (embedding vector_l2_ops) WITH (lists = $LISTS)"
echo "index built in $((($(now_ns) - t0) / 1000000)) ms;" \
	"size $("$PSQL" -X -At -c "SELECT pg_size_pretty(pg_relation_size('items_embedding_ivfflat'))")"
"$PSQL" -X -v ON_ERROR_STOP=1 -c "SELECT metric, dims, lists, default_nprobe, trained_on, vectors, largest_list, pages
	FROM ivf_index_info('items_embedding_ivfflat')"
echo "ivf_check problems: $("$PSQL" -X -At -c "SELECT count(*) FROM ivf_check('items_embedding_ivfflat')")"
for nprobe in 1 4 10; do
	run_queries "ivfflat-nprobe$nprobe" "SET ivf.nprobe = $nprobe"
done
# At nprobe = lists the planner estimates the index scan above the
# sequential scan and picks the latter; to show the index probing every
# list, sequential scans are off for that row.
run_queries "ivfflat-nprobe$LISTS-all-lists" "SET ivf.nprobe = $LISTS; SET enable_seqscan = off"

step "clean up"
ivf_cleanup
echo "demo finished in $(ivf_elapsed "$T_START")"
