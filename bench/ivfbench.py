#!/usr/bin/env python3
"""ivf benchmark runner: ivf's ivfflat index in PostgreSQL against Faiss
IndexIVFFlat on the same data, lists, nprobe, k and queries, in one run.

Run it through bench/run.sh (which creates the venv and a throwaway cluster);
it connects with libpq's environment (PGHOST, PGPORT, PGUSER, PGDATABASE).

    bench/run.sh --dataset siftsmall [--lists N] [--nprobe 1,2,4] [--queries N] [--out DIR]

What one run does (see bench/README.md for the meaning of every output):

  1. load the data set (bench/datasets.py) and its exact ground truth;
  2. CREATE DATABASE ivfbench, CREATE EXTENSION ivf, binary COPY of the base
     vectors into items (id int4, embedding vector(d)), VACUUM (FREEZE, ANALYZE);
  3. CREATE INDEX ... USING ivfflat (embedding vector_l2_ops) WITH (lists = N),
     timed client-side; pg_relation_size; ivf_index_info; pg_prewarm of the
     table, its TOAST table and the index;
  4. Faiss IndexIVFFlat with the same lists, k-means iterations and seed:
     train + add, timed;
  5. for every sweep point (nprobe, and whatever else a point sets): ivf
     through one psycopg connection with a server-side prepared statement
     (binary vector parameter) after a warm-up pass, and Faiss one query per
     search() call, both single-threaded: recall@k, QPS, p50/p99 latency;
  6. batch search: Faiss index.search(xq[:nq]) for nq in 1, 10, 100, 1000;
     ivf's ivf_search() when the SQL function exists (skipped otherwise);
  7. a table on stdout, <out>/<dataset>-<timestamp>.jsonl and two SVG plots.

With --mode profile it does steps 1-3, then a time breakdown of one query
(client round trip, planning, executor, index scan startup vs tuple fetch,
fixed vs per-list cost) and a `perf record` of the backend running prepared
queries, printing the top symbols (bench/profile.sh).

Extending the sweep: a sweep point is a label, the SQL it runs before being
measured (e.g. "SET ivf.nprobe = 8") and the attributes it sets on the Faiss
index (e.g. {"nprobe": 8}); build_points() makes them.  --max-codes already
crosses nprobe with max_codes (ivf.max_codes when the server has that
setting; skipped with a message otherwise).  --set GUC=VALUE adds a setting
to every point on the ivf side (e.g. a budget profile).
"""
import os

# Faiss (OpenMP) and the OpenBLAS that the Faiss wheel and numpy bundle must run
# single-threaded: the variables must be set before either is imported;
# faiss.omp_set_num_threads(1) follows the import below.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import numpy as np  # noqa: E402
import faiss  # noqa: E402
import psycopg  # noqa: E402
from psycopg import rows as pgrows, sql as pgsql  # noqa: E402
from pgvector import HalfVector  # noqa: E402
from pgvector.psycopg import register_vector  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import datasets  # noqa: E402
import scenarios  # noqa: E402

faiss.omp_set_num_threads(1)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
INDEX = "items_embedding_idx"
BENCH_DB = "ivfbench"
# Engines ivf is compared with (--peers).  pgvector defines the type `vector`
# and an access method `ivfflat` as ivf does, so each pgvector engine gets its
# own database in the same cluster, with the same table, index name and query
# text as ivf's (two indexes on one table would leave the choice between them
# to the planner).
PEERS = ("faiss", "ivf-pgvector", "pgvector-ivfflat", "pgvector-hnsw", "ivf-halfvec", "pgvector-ivfflat-halfvec")
PGVECTOR_DB = {"pgvector-ivfflat": "ivfbench_pgvector_ivfflat", "pgvector-hnsw": "ivfbench_pgvector_hnsw",
               "pgvector-ivfflat-halfvec": "ivfbench_pgvector_ivfflat_halfvec"}
# halfvec engines: the same rows in a halfvec(d) column (each element rounded
# to the nearest half; the run counts the elements that change, which the
# issue's comparison wants at zero: SIFT / bigann integers are exact), a
# halfvec_l2_ops index and the query sent as pgvector-python's HalfVector in
# binary (halfvec's binary form, big-endian halves), for ivf and pgvector
# alike.  ivf-halfvec: standalone ivf (CREATE EXTENSION ivf) in a database
# of its own, built with ivf's build_ivf() and swept at ivf's points;
# pgvector-ivfflat-halfvec: pgvector's IVFFlat at ivf's lists and nprobe, as
# pgvector-ivfflat.  The issue's targets for ivf-halfvec against ivf on
# vector at the same nprobe: recall@k within HALFVEC_RECALL_TOL, QPS at
# least HALFVEC_QPS_TARGET x, index at most HALFVEC_SIZE_TARGET x.
HALFVEC_ENGINES = ("ivf-halfvec", "pgvector-ivfflat-halfvec")
IVF_HALFVEC_DB = "ivfbench_ivf_halfvec"
HALFVEC_RECALL_TOL = 0.005
HALFVEC_QPS_TARGET = 1.15
HALFVEC_SIZE_TARGET = 0.6
# ivf-pgvector: ivf's own index (access method ivf of the companion extension
# ivf_pgvector, the same ivf.so) on pgvector's vector type, in a database of
# its own for the same reason; built and swept exactly as ivf is (same
# lists, k-means settings, seed, --index-with, sweep points).  The issue's
# target: its QPS at least IVF_PGVECTOR_TARGET x ivf's at the same nprobe
# and recall (reading pgvector's datums costs nothing).
IVF_PGVECTOR_DB = "ivfbench_ivf_pgvector"
IVF_PGVECTOR_TARGET = 0.95
# Set on every PostgreSQL engine's connection after the plan check, for the
# single-query sweep: it measures the index at every setting, but pgvector's
# cost model for an HNSW scan grows with hnsw.ef_search and on a small table
# prefers a sequential scan at high values (seen at 10,000 x 784, ef_search
# 320).  It changes the plan choice only, and also pins the plan that a
# prepared statement caches (a generic plan is not re-planned when a setting
# changes).  ivf's batch search RESETs it: its join is planned as before.
SESSION_SETTINGS = {"enable_seqscan": "off"}
PEER_CONNS = []  # the pgvector engines' connections, closed before their databases are dropped


def log(*a):
    print(*a, flush=True)


def now():
    return time.perf_counter()


# ----------------------------------------------------------------- arguments


def int_list(s):
    return [int(x) for x in s.split(",") if x.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="ivf vs Faiss IVFFlat benchmark (run it through bench/run.sh)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default="siftsmall", choices=datasets.NAMES)
    p.add_argument("--lists", type=int, help="IVF lists (default per data set: %s)" % datasets.DEFAULT_LISTS)
    p.add_argument("--nprobe", type=int_list,
                   help="nprobe sweep, comma-separated (default 1,2,4,8,16,32; 1..64 for synth-1m)")
    p.add_argument("--queries", type=int, help="use the first N queries (default: all of the data set's)")
    p.add_argument("--rows", type=int, help="use the first N base vectors (ground truth is recomputed)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--out", default=os.path.join(HERE, "results"), help="results directory")
    p.add_argument("--data-dir", default=os.environ.get("IVF_DATA_DIR") or os.path.join(REPO, "..", "shared", "data"))
    p.add_argument("--cache-dir", help="ground-truth cache (default OUT/cache)")
    p.add_argument("--maintenance-work-mem", default="1GB")
    p.add_argument("--min-time", type=float, default=2.0,
                   help="seconds: each timed measurement repeats whole passes over the queries until this long")
    p.add_argument("--warmup", type=int, default=1000, help="warm-up queries before each timed measurement")
    p.add_argument("--rounds", type=int,
                   help="measure the whole sweep this many times; QPS = median over rounds "
                        "(default 3 for siftsmall and bigann10k, 1 otherwise)")
    p.add_argument("--batch-nq", type=int_list, default=[1, 10, 100, 1000])
    p.add_argument("--batch-nprobe", type=int,
                   help="nprobe for batch search (default: smallest swept nprobe where Faiss recall >= 0.95)")
    p.add_argument("--max-codes", type=int_list,
                   help="also sweep max_codes (0 = unlimited), crossed with nprobe; needs ivf.max_codes on the server")
    p.add_argument("--profiles", type=lambda s: [x for x in s.split(",") if x],
                   help="also sweep ivf.profile (e.g. exact,approx_fast,approx_balanced,approx_quality), "
                        "crossed with nprobe; ivf only (Faiss has no such budgets) except for exact")
    p.add_argument("--set", action="append", default=[], metavar="GUC=VALUE",
                   help="extra ivf setting at every sweep point (repeatable)")
    p.add_argument("--build-set", action="append", default=[], metavar="GUC=VALUE",
                   help="setting for the CREATE INDEX session, e.g. ivf.kmeans_points_per_list=256 (repeatable)")
    p.add_argument("--index-with", action="append", default=[], metavar="OPTION=VALUE",
                   help="extra CREATE INDEX ... WITH option, e.g. list_ordering=residual_norm_asc (repeatable)")
    p.add_argument("--halfvec-index-with", action="append", default=[], metavar="OPTION=VALUE",
                   help="CREATE INDEX ... WITH option for ivf-halfvec only, after --index-with's (e.g. "
                        "prefilter=off; repeatable)")
    p.add_argument("--batch-modes", type=lambda s: [x for x in s.split(",") if x], default=["auto"],
                   help="ivf.search_mode values to measure ivf_search() with (when the setting exists)")
    p.add_argument("--faiss-niter", type=int,
                   help="Faiss k-means iterations (default: Faiss's own for IndexIVF, cp.niter = 10)")
    p.add_argument("--pin", choices=["same", "split", "none"], default="same",
                   help="CPU pinning: same = this process (client + Faiss) and the PostgreSQL backend on one "
                        "CPU; split = client and backend on two different CPUs; none = leave it to the scheduler")
    p.add_argument("--cpu", type=int, help="the CPU for --pin (default: the highest one we may use)")
    p.add_argument("--peers", type=lambda s: [x.strip() for x in s.split(",") if x.strip()], default="faiss",
                   help="engines measured beside ivf in the same run, comma-separated, from " + ",".join(PEERS)
                        + " (pgvector-*: pgvector's IVFFlat / HNSW in their own databases of the same cluster; "
                          "ivf-pgvector: ivf's index through the companion extension ivf_pgvector on pgvector's "
                          "vector type, in its own database, built and swept as ivf; ivf-halfvec: ivf on a "
                          "halfvec(d) column with halfvec_l2_ops, pgvector-ivfflat-halfvec: pgvector's IVFFlat on "
                          "halfvec, each in its own database, same lists and nprobe; bench/run.sh installs "
                          "pgvector when asked for)")
    p.add_argument("--skip-faiss", action="store_true", help="do not measure Faiss (removes it from --peers)")
    p.add_argument("--hnsw-m", type=int, default=16, help="pgvector HNSW: m (pgvector's default)")
    p.add_argument("--hnsw-ef-construction", type=int, default=64,
                   help="pgvector HNSW: ef_construction (pgvector's default)")
    p.add_argument("--hnsw-ef-search", type=int_list, default="10,20,40,80,160,320",
                   help="pgvector HNSW: hnsw.ef_search sweep (values below k are skipped: HNSW returns at "
                        "most ef_search rows)")
    p.add_argument("--matched-recall", type=lambda s: [float(x) for x in s.split(",") if x.strip()],
                   default="0.90,0.95,0.99",
                   help="summary: for each target, the first swept setting of each engine with recall@k >= "
                        "target, and ivf's QPS over the peer's there")
    p.add_argument("--ivf-batch-sql",
                   help="batch search statement returning (query 1-based, rank 1-based, id) rows; "
                        "%%b = the vector[] of queries, %%d = k (default: ivf_search(index, %%b, k) "
                        "joined to items on ctid)")
    p.add_argument("--png", action="store_true", help="also write PNG copies of the plots")
    p.add_argument("--replot", metavar="JSONL", help="only redraw the plots of an earlier run's JSONL")
    p.add_argument("--keep-db", action="store_true", help="keep the ivfbench database (the cluster is still thrown away by run.sh)")
    p.add_argument("--storage", choices=["auto", "plain", "main", "external"], default="auto",
                   help="storage of the embedding column (ALTER TABLE ... SET STORAGE); auto: plain when a "
                        "vector fits a heap page (<= 2000 dims), else the type's default (external). Every "
                        "row a query returns has its distance re-evaluated by the executor (the ORDER BY "
                        "expression is in the target list), which with external storage is a TOAST fetch "
                        "per row")
    p.add_argument("--mode", choices=["bench", "profile"], default="bench")
    scenarios.add_arguments(p)
    p.add_argument("--profile-seconds", type=float, default=5.0,
                   help="profile mode: seconds of prepared queries run under perf")
    p.add_argument("--profile-queries", type=int,
                   help="profile mode: run exactly this many prepared queries under perf instead")
    p.add_argument("--perf-freq", type=int, default=4999, help="profile mode: perf sampling frequency (Hz)")
    a = p.parse_args(argv)
    if a.lists is None:
        a.lists = datasets.DEFAULT_LISTS[a.dataset]
    if a.nprobe is None:
        if a.mode == "profile":
            a.nprobe = [1, 4, 16]
        elif a.dataset == "synth-1m-128":
            a.nprobe = [1, 2, 4, 8, 16, 32, 64]
        else:
            a.nprobe = [1, 2, 4, 8, 16, 32]
    if a.rounds is None:
        a.rounds = 3 if a.dataset in ("siftsmall", "bigann10k") else 1
    if a.cache_dir is None:
        a.cache_dir = os.path.join(a.out, "cache")
    bad = [x for x in a.peers if x not in PEERS]
    if bad:
        p.error(f"--peers {','.join(bad)}: unknown (choose from {','.join(PEERS)})")
    a.peers = [x for x in dict.fromkeys(a.peers) if not (x == "faiss" and a.skip_faiss)]
    a.skip_faiss = "faiss" not in a.peers
    a.pgvector = [x for x in a.peers if x in PGVECTOR_DB]
    a.ivf_pgvector = "ivf-pgvector" in a.peers
    a.ivf_halfvec = "ivf-halfvec" in a.peers
    scenarios.check_arguments(p, a)
    if a.scenario and any(x in HALFVEC_ENGINES for x in a.peers):
        p.error("--scenario: the halfvec peers (" + ",".join(HALFVEC_ENGINES) + ") are measured by the "
                "nprobe sweep only")
    for opt, vals in (("--set", a.set), ("--build-set", a.build_set), ("--index-with", a.index_with),
                      ("--halfvec-index-with", a.halfvec_index_with)):
        for s in vals:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*=.+", s):
                p.error(f"{opt} {s!r}: expected NAME=VALUE")
    return a


# --------------------------------------------------------------- JSONL output


class Results:
    def __init__(self, path):
        self.path = path
        self.records = []
        self.f = open(path, "w", encoding="utf-8")

    def add(self, rec):
        self.records.append(rec)
        self.f.write(json.dumps(rec, default=_json_default, sort_keys=False) + "\n")
        self.f.flush()
        return rec

    def close(self):
        self.f.close()


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# ---------------------------------------------------------------- environment


def sh(cmd, cwd=None):
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def lscpu():
    out = {}
    for line in sh(["lscpu"]).splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def meminfo_kb(key="MemTotal"):
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def read_text(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def cpu_busy(seconds=1.0):
    """Fraction of all CPUs' time spent non-idle over `seconds` (other
    processes: we sleep meanwhile)."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait
    try:
        t0, i0 = snap()
        time.sleep(seconds)
        t1, i1 = snap()
        return 1.0 - (i1 - i0) / max(1, t1 - t0)
    except (OSError, ValueError, IndexError):
        return None


def sha256_file(path):
    try:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None


def faiss_simd_level():
    try:
        return faiss.SIMDConfig.get_level_name()
    except Exception:  # older wheels: one library per level
        return getattr(faiss.loader, "loaded_library", None) or "unknown"


def pgvector_info(conn):
    """What the pgvector side runs: the extension's version (pg_extension),
    its library and its settings (loaded by a first use of the type)."""
    info = {"extversion": one(conn, "SELECT extversion FROM pg_extension WHERE extname = 'vector'")}
    conn.execute("SELECT '[1]'::vector")  # loads vector.so, which defines the ivfflat.* and hnsw.* settings
    libdir = one(conn, "SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'")
    so = os.path.join(libdir, "vector.so") if libdir else None
    info["so"] = so
    info["so_sha256"] = sha256_file(so) if so else None
    with conn.cursor() as cur:
        cur.execute("SELECT name, setting FROM pg_settings WHERE name LIKE 'ivfflat.%' OR name LIKE 'hnsw.%' "
                    "ORDER BY name")
        info["settings"] = dict(cur.fetchall())
    return info


def env_record(conn, args, pgvector=None):
    cpu = lscpu()
    git = ["git", "-C", REPO]
    commit = sh(git + ["rev-parse", "HEAD"])
    dirty = bool(sh(git + ["status", "--porcelain", "--untracked-files=no"]))
    untracked = len(sh(git + ["status", "--porcelain", "--untracked-files=normal"]).splitlines()) - \
        len(sh(git + ["status", "--porcelain", "--untracked-files=no"]).splitlines())
    pkglibdir = None
    with conn.cursor() as cur:
        cur.execute("SELECT version(), current_setting('server_version_num')")
        version, version_num = cur.fetchone()
        cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'ivf'")
        extversion = cur.fetchone()[0]
        cur.execute("SELECT ivf_simd_level(), ivf_simd_levels()")
        simd, simd_levels = cur.fetchone()
        cur.execute("SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'")
        row = cur.fetchone()
        pkglibdir = row[0] if row else None
        # everything not at its built-in default, as the server sees it now
        cur.execute("""SELECT name, setting, unit, source FROM pg_settings
                       WHERE source NOT IN ('default', 'override') ORDER BY name""")
        settings = {n: {"setting": s, "unit": u, "source": src} for n, s, u, src in cur.fetchall()}
    so = os.path.join(pkglibdir, "ivf.so") if pkglibdir else None
    so_mtime = None
    if so and os.path.exists(so):
        so_mtime = datetime.datetime.fromtimestamp(os.path.getmtime(so), datetime.timezone.utc).isoformat()
    mods = {}
    for m in ("psycopg", "pgvector", "matplotlib"):
        try:
            mod = __import__(m)
            mods[m] = getattr(mod, "__version__", None)
        except Exception:
            mods[m] = None
    try:
        from importlib.metadata import version as pkgver
        mods["pgvector"] = pkgver("pgvector")
        mods["psycopg_binary"] = pkgver("psycopg-binary")
    except Exception:
        pass
    governor = None
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") as f:
            governor = f.read().strip()
    except OSError:
        pass
    return {
        "type": "env",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        "hostname": platform.node(),
        "cpu_model": cpu.get("Model name"),
        "cpu_vendor": cpu.get("Vendor ID"),
        "hypervisor": cpu.get("Hypervisor vendor"),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "threads_per_core": cpu.get("Thread(s) per core"),
        "l2_cache": cpu.get("L2 cache"),
        "l3_cache": cpu.get("L3 cache"),
        "cpu_flags_avx": sorted(f for f in cpu.get("Flags", "").split() if f.startswith(("avx", "fma"))),
        "scaling_governor": governor,
        "memory_kb": meminfo_kb(),
        "kernel": platform.release(),
        "os": sh(["sh", "-c", ". /etc/os-release && echo \"$PRETTY_NAME\""]),
        "pg_version": version,
        "pg_version_num": int(version_num),
        "pg_settings_non_default": settings,
        "ivf_commit": commit,
        "ivf_dirty": dirty,
        "ivf_untracked_files": max(untracked, 0),
        "ivf_extversion": extversion,
        "ivf_so": so,
        "ivf_so_sha256": sha256_file(so) if so else None,
        "ivf_so_mtime": so_mtime,
        "ivf_simd_level": simd,
        "ivf_simd_levels": simd_levels,
        "peers": args.peers,
        "pgvector_extversion": pgvector["extversion"] if pgvector else None,
        "pgvector": pgvector,
        "faiss_version": faiss.__version__,
        "faiss_simd_level": faiss_simd_level(),
        "faiss_compile_options": faiss.get_compile_options().strip(),
        "faiss_omp_threads": faiss.omp_get_max_threads(),
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "client_modules": mods,
        "env_threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
        # huge pages: the server's shared memory (huge_pages, vm.nr_hugepages;
        # reserved/total pages show whether the server took them) and this
        # process's (Faiss, numpy) through glibc's hugetlb tunable
        "huge_pages": {
            "pg_huge_pages": settings.get("huge_pages", {}).get("setting", "try (default)"),
            "hugepages_total": meminfo_kb("HugePages_Total"),
            "hugepages_free": meminfo_kb("HugePages_Free"),
            "hugepages_rsvd": meminfo_kb("HugePages_Rsvd"),
            "thp_enabled": read_text("/sys/kernel/mm/transparent_hugepage/enabled"),
            "glibc_tunables": os.environ.get("GLIBC_TUNABLES"),
        },
        "loadavg": os.getloadavg(),
        "cpu_busy_before": cpu_busy(),
    }


# ------------------------------------------------------------------- database


def connect(dbname=None):
    kw = {"autocommit": True}
    if dbname:
        kw["dbname"] = dbname
    conn = psycopg.connect(**kw)
    return conn


def create_database(name=BENCH_DB):
    with connect() as c:
        c.execute("SET client_min_messages = warning")
        c.execute(f"DROP DATABASE IF EXISTS {name}")
        c.execute(f"CREATE DATABASE {name}")


def drop_database(name=BENCH_DB):
    with connect() as c:
        c.execute(f"DROP DATABASE IF EXISTS {name}")


def copy_rows_binary(conn, base, chunk=20000, ids=None, elem="vector"):
    """COPY items (id, embedding) FROM STDIN (FORMAT BINARY), built with numpy:
    per row int16 2 fields, int32 4, int32 id, int32 4+4d, int16 d, int16 0,
    d big-endian float4 (the vector type's binary form); for elem halfvec
    int32 4+2d and d big-endian halves (halfvec's; numpy rounds to nearest
    even, as the vector-to-halfvec cast does).  Row i gets id ids[i], or i."""
    n, d = base.shape
    esz, fmt = (2, ">f2") if elem == "halfvec" else (4, ">f4")
    rec_t = np.dtype([("nf", ">i2"), ("l1", ">i4"), ("id", ">i4"), ("l2", ">i4"),
                      ("dim", ">i2"), ("unused", ">i2"), ("v", fmt, (d,))])
    nbytes = 0
    with conn.cursor() as cur:
        with cur.copy("COPY items (id, embedding) FROM STDIN WITH (FORMAT BINARY)") as cp:
            head = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
            cp.write(head)
            nbytes += len(head)
            for s in range(0, n, chunk):
                e = min(n, s + chunk)
                rec = np.empty(e - s, dtype=rec_t)
                rec["nf"] = 2
                rec["l1"] = 4
                rec["id"] = np.arange(s, e, dtype=np.int64) if ids is None else ids[s:e]
                rec["l2"] = 4 + esz * d
                rec["dim"] = d
                rec["unused"] = 0
                rec["v"] = base[s:e]
                buf = rec.tobytes()
                cp.write(buf)
                nbytes += len(buf)
            cp.write(struct.pack(">h", -1))
    return nbytes + 2


def one(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
        return row[0] if row and len(row) == 1 else row


def setting_exists(conn, name):
    return one(conn, "SELECT current_setting(%s, true) IS NOT NULL", (name,))


def pin_cpus(conn, args, res, engine="ivf"):
    """Pin this process and the backend serving `conn` (see --pin).  On a VM a
    round trip between processes on two vCPUs pays for waking a halted vCPU
    (tens of microseconds, varying from run to run); on one CPU it is a plain
    context switch.  Recorded in the JSONL either way."""
    backend = one(conn, "SELECT pg_backend_pid()")
    rec = {"type": "pinning", "engine": engine, "mode": args.pin, "backend_pid": backend}
    if args.pin != "none":
        cpus = sorted(os.sched_getaffinity(0))
        cpu = args.cpu if args.cpu is not None else cpus[-1]
        if args.pin == "same":
            client, server = {cpu}, {cpu}
        else:
            others = [c for c in cpus if c != cpu]
            if not others:
                log("--pin split needs two CPUs; using --pin same")
                client, server = {cpu}, {cpu}
            else:
                client, server = {others[-1]}, {cpu}
        try:
            os.sched_setaffinity(0, client)
            os.sched_setaffinity(backend, server)
        except OSError as e:
            log(f"WARNING: could not pin CPUs ({e}); measuring unpinned")
            rec["error"] = str(e)
    rec["client_cpus"] = sorted(os.sched_getaffinity(0))
    try:
        rec["backend_cpus"] = sorted(os.sched_getaffinity(backend))
    except OSError:
        rec["backend_cpus"] = None
    log(f"CPU pinning ({args.pin}): client + Faiss on CPUs {rec['client_cpus']}, "
        f"{engine} backend {backend} on CPUs {rec['backend_cpus']}")
    res.add(rec)


def engine_elem(engine):
    """The column type an engine's table has: halfvec or vector."""
    return "halfvec" if engine in HALFVEC_ENGINES else "vector"


def engine_queries(ds, engine):
    """The query parameters an engine's statements get: numpy rows (sent as
    vector, binary) or, for the halfvec engines, pgvector-python HalfVector
    objects (sent as halfvec, binary), made once so the timed loop does the
    same work for every engine."""
    if engine_elem(engine) == "halfvec":
        if not hasattr(ds, "_half_queries"):
            ds._half_queries = [HalfVector(q) for q in ds.queries]
        return ds._half_queries
    return ds.queries


def load_table(conn, ds, args, res, engine="ivf"):
    """Table items (id, embedding vector(d)) with the column storage of
    --storage, binary COPY, VACUUM (FREEZE, ANALYZE), CHECKPOINT.  The same
    for ivf and pgvector: both types have the same binary form.  The halfvec
    engines get a halfvec(d) column (see HALFVEC_ENGINES)."""
    elem = engine_elem(engine)
    conn.execute(f"CREATE TABLE items (id int4 NOT NULL, embedding {elem}({ds.d}) NOT NULL)")
    if elem == "halfvec":
        # how many elements (base and queries) rounding to half changes
        changed = int(np.count_nonzero(ds.base.astype(np.float16).astype(np.float32) != ds.base))
        qchanged = int(np.count_nonzero(ds.queries.astype(np.float16).astype(np.float32) != ds.queries))
        log(f"{engine}: halfvec rounding changes {changed:,} of {ds.base.size:,} base elements and {qchanged:,} "
            f"of {ds.queries.size:,} query elements" + ("" if changed or qchanged else " (all exact in half)"))
        res.add({"type": "halfvec_rounding", "engine": engine, "base_changed": changed,
                 "base_elements": int(ds.base.size), "query_changed": qchanged,
                 "query_elements": int(ds.queries.size)})
    storage = args.storage
    if storage == "auto":
        storage = "plain" if ds.d <= 2000 else "external"
    conn.execute(f"ALTER TABLE items ALTER COLUMN embedding SET STORAGE {storage}")
    res.add({"type": "storage", "engine": engine, "embedding": storage})
    log(f"{engine}: embedding column storage: {storage}")
    t0 = now()
    nbytes = copy_rows_binary(conn, ds.base, elem=elem)
    load_s = now() - t0
    t0 = now()
    conn.execute("VACUUM (FREEZE, ANALYZE) items")
    vacuum_s = now() - t0
    # a cluster in steady state: the load's WAL segments become recyclable
    # (the build reuses them instead of zero-filling new ones) and its dirty
    # buffers are written now, not by a checkpoint during the measurements;
    # the throwaway cluster runs with fsync = off, so the OS is asked to
    # write them out as a checkpoint's fsyncs would (otherwise the kernel
    # flushes ~1 GB of the load during the build and throttles its writes)
    conn.execute("CHECKPOINT")
    os.sync()
    table_bytes = one(conn, "SELECT pg_table_size('items')")
    log(f"{engine}: loaded {ds.n} rows ({nbytes / 1e6:.1f} MB binary COPY) in {load_s:.2f} s, "
        f"VACUUM (FREEZE, ANALYZE) {vacuum_s:.2f} s; table + TOAST {table_bytes / 1e6:.1f} MB")
    res.add({"type": "load", "engine": engine, "rows": ds.n, "dims": ds.d, "copy_bytes": nbytes,
             "copy_s": load_s, "vacuum_analyze_s": vacuum_s, "table_bytes": table_bytes})


def prewarm(conn, res, engine="ivf"):
    """Load everything a query touches into shared_buffers: index, heap
    (ids), TOAST (not read by the k-NN query, but cheap); check it fits."""
    toast = one(conn, "SELECT reltoastrelid::regclass::text FROM pg_class "
                      "WHERE oid = 'items'::regclass AND reltoastrelid <> 0")
    blocks = {}
    for rel in [INDEX, "items"] + ([toast] if toast else []):
        blocks[rel] = one(conn, "SELECT pg_prewarm(%s::regclass)", (rel,))
    sb_blocks = int(one(conn, "SELECT setting FROM pg_settings WHERE name = 'shared_buffers'"))
    total = sum(blocks.values())
    log(f"{engine}: pg_prewarm: {blocks} = {total} blocks; shared_buffers = {sb_blocks} blocks "
        f"({one(conn, 'SHOW shared_buffers')})")
    if blocks[INDEX] > sb_blocks:
        log("WARNING: the index does not fit in shared_buffers; queries will read from the OS cache")
    res.add({"type": "prewarm", "engine": engine, "blocks": blocks, "shared_buffers_blocks": sb_blocks,
             "index_fits": blocks[INDEX] <= sb_blocks, "all_fit": total <= sb_blocks})
    return total, sb_blocks


def build_ivf(conn, args, res, engine="ivf", method="ivfflat"):
    """ivf's CREATE INDEX, timed client-side, with --maintenance-work-mem,
    --build-set and --index-with; then pg_relation_size, ivf_index_info and
    ivf_check.  The same for standalone ivf (access method ivfflat) and for
    ivf-pgvector (access method ivf of ivf_pgvector on pgvector's vector):
    the same statement but for the method's name, so both build the same
    lists from the same rows and seed."""
    conn.execute(pgsql.SQL("SET maintenance_work_mem = {}").format(pgsql.Literal(args.maintenance_work_mem)))
    mwm = one(conn, "SHOW maintenance_work_mem")
    for b in args.build_set:
        conn.execute(set_sql(b))
    kmeans_max = int(one(conn, "SHOW ivf.kmeans_iterations"))
    notices = []
    debug = []

    def on_notice(d):
        (debug if d.severity_nonlocalized == "DEBUG" else notices).append(d.message_primary)
    conn.add_notice_handler(on_notice)
    # the DEBUG2 line that says how many k-means rounds ran (it stops early
    # at ivf.kmeans_tolerance); not part of the timed statement's work
    conn.execute("SET client_min_messages = debug2")
    t0 = now()
    index_with = args.index_with + (args.halfvec_index_with if engine == "ivf-halfvec" else [])
    with_opts = ", ".join([f"lists = {args.lists}"] + [
        f"{o.split('=', 1)[0]} = {pgsql.quote(o.split('=', 1)[1])}" for o in index_with])
    ddl = f"CREATE INDEX {INDEX} ON items USING {method} (embedding {engine_elem(engine)}_l2_ops) WITH ({with_opts})"
    conn.execute(ddl)
    build_s = now() - t0
    conn.execute("RESET client_min_messages")
    conn.remove_notice_handler(on_notice)
    kmeans_iter = kmeans_max
    for n in debug:
        m = re.search(r"k-means ran (\d+) of at most", n)
        if m:
            kmeans_iter = int(m.group(1))
    conn.execute("RESET maintenance_work_mem")
    for b in args.build_set:
        conn.execute(pgsql.SQL("RESET {}").format(pgsql.Identifier(*b.split("=", 1)[0].split("."))))
    index_bytes = one(conn, "SELECT pg_relation_size(%s)", (INDEX,))
    with conn.cursor(row_factory=pgrows.dict_row) as cur:
        cur.execute("SELECT * FROM ivf_index_info(%s)", (INDEX,))
        info = cur.fetchone()
    problems = one(conn, "SELECT count(*) FROM ivf_check(%s)", (INDEX,))
    log(f"{engine}: CREATE INDEX ... USING {method} (lists = {args.lists}, built {info['lists']}) in {build_s:.2f} s "
        f"(maintenance_work_mem {mwm}, {kmeans_iter} k-means iterations, trained on {info['trained_on']} rows); "
        f"index {index_bytes / 1e6:.1f} MB; ivf_check problems: {problems}")
    for n in notices:
        log(f"  NOTICE: {n}")
    res.add({"type": "build", "engine": engine, "sql": ddl, "method": method, "lists_requested": args.lists,
             "lists": info["lists"], "seconds": build_s, "index_bytes": index_bytes, "maintenance_work_mem": mwm,
             "kmeans_iterations": kmeans_iter, "index_info": info, "ivf_check_problems": problems,
             "notices": notices})
    return info, kmeans_iter, build_s, index_bytes


def load_and_build(conn, ds, args, res):
    """Steps 2 and 3: table, COPY, index, prewarm (the database exists)."""
    register_vector(conn)
    pin_cpus(conn, args, res)
    load_table(conn, ds, args, res)
    info, kmeans_iter, build_s, index_bytes = build_ivf(conn, args, res)
    prewarm(conn, res)
    return info, kmeans_iter, build_s, index_bytes


# ------------------------------------------------------------------- sweeping


@dataclass
class Point:
    """One sweep point.  variant groups points into curves ("" = plain
    nprobe); ivf_sql runs on the benchmark connection before ivf is
    measured; faiss holds attributes set on the Faiss index, or None when
    Faiss has no equivalent (then only ivf is measured)."""
    label: str
    nprobe: int
    variant: str
    ivf_sql: list
    faiss: dict
    extra: dict = field(default_factory=dict)  # recorded as is


# Settings a sweep may vary, in the order they are applied.  Each point sets
# the ones it uses and RESETs the others (when the server has them), so
# points never inherit settings from the point before.
SWEEP_GUCS = ("ivf.max_codes", "ivf.profile")


def build_points(args, conn, lists):
    """The sweep: nprobe x max_codes x profiles (each only when asked for and
    the server has the setting).  To sweep another setting, add it to
    SWEEP_GUCS and to the product below."""
    have = {g for g in SWEEP_GUCS if setting_exists(conn, g)}
    max_codes = [None]
    if args.max_codes:
        if "ivf.max_codes" in have:
            max_codes = args.max_codes
        else:
            log(f"--max-codes {args.max_codes}: skipped: this ivf has no setting ivf.max_codes")
    profiles = [None]
    if args.profiles:
        if "ivf.profile" in have:
            profiles = args.profiles
        else:
            log(f"--profiles {args.profiles}: skipped: this ivf has no setting ivf.profile")
    extra_sql = [set_sql(s) for s in args.set]
    points = []
    for prof in profiles:
        for mc in max_codes:
            for nprobe in args.nprobe:
                if nprobe > lists:
                    continue
                knobs = {"ivf.max_codes": mc, "ivf.profile": prof}
                sql = [f"SET ivf.nprobe = {nprobe}"]
                for g in SWEEP_GUCS:
                    if g in have:
                        sql.append(f"SET {g} = {pgsql.quote(str(knobs[g]))}" if knobs[g] is not None else f"RESET {g}")
                sql += extra_sql
                # the variant names what differs from a plain nprobe scan
                # (max_codes 0 and profile exact are the defaults)
                variant = ",".join(f"{g.split('.')[-1]}={v}" for g, v in knobs.items()
                                   if v not in (None, 0, "exact"))
                fa = {"nprobe": nprobe, "max_codes": mc or 0}
                if prof not in (None, "exact"):
                    fa = None  # Faiss has no candidate-budget profiles
                extra = {g.split(".")[-1]: v for g, v in knobs.items() if v is not None}
                label = f"nprobe={nprobe}" + (f",{variant}" if variant else "")
                points.append(Point(label, nprobe, variant, sql, fa, extra))
    skipped = [n for n in args.nprobe if n > lists]
    if skipped:
        log(f"nprobe {skipped} > lists {lists}: skipped")
    return points


def set_sql(s):
    name, value = s.split("=", 1)
    return pgsql.SQL("SET {} = {}").format(pgsql.Identifier(*name.split(".")), pgsql.Literal(value)).as_string(None)


def recall_at(ids, gt, k):
    """Mean |ids[:, :k] & gt[:, :k]| / k over queries."""
    hits = 0
    for r, g in zip(ids[:, :k], gt[:, :k]):
        hits += len(np.intersect1d(r[r >= 0], g, assume_unique=False))
    return hits / (k * len(gt))


def recall_ties(ids, ds, k, block=256):
    """Like recall@k, but a returned id counts when its exact distance is no
    larger than the k-th true neighbour's (ties at the boundary)."""
    hits = 0
    for s in range(0, ds.nq, block):
        e = min(ds.nq, s + block)
        q = ds.queries[s:e].astype(np.float64)[:, None, :]
        kth = ds.gt[s:e, k - 1]
        dk = ((ds.base[kth].astype(np.float64) - q[:, 0, :]) ** 2).sum(1)
        r = ids[s:e, :k]
        valid = r >= 0
        dr = ((ds.base[np.where(valid, r, 0)].astype(np.float64) - q) ** 2).sum(2)
        hits += int(((dr <= dk[:, None] * (1 + 1e-12)) & valid).sum())
    return hits / (k * ds.nq)


def lat_stats(lat_ns):
    a = np.asarray(lat_ns, dtype=np.float64) / 1e6
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "mean_ms": float(a.mean()), "min_ms": float(a.min()), "max_ms": float(a.max())}


def timed_passes(one_query, nq, min_time):
    """Run one_query(i) for i in 0..nq-1, whole passes, until min_time
    seconds have passed.  Returns (latencies ns, wall seconds, passes)."""
    lat = []
    passes = 0
    t_start = now()
    while True:
        for i in range(nq):
            t0 = time.perf_counter_ns()
            one_query(i)
            lat.append(time.perf_counter_ns() - t0)
        passes += 1
        if now() - t_start >= min_time:
            break
    return lat, now() - t_start, passes


def knn_sql(k):
    return f"SELECT id FROM items ORDER BY embedding <-> %b LIMIT {k}"


def explain(conn, q, k, analyze=True):
    opts = "ANALYZE, BUFFERS, COSTS" if analyze else "COSTS"
    with conn.cursor() as cur:
        cur.execute(f"EXPLAIN ({opts}) " + knn_sql(k), (q,))
        return [r[0] for r in cur.fetchall()]


def plan_uses_index(plan):
    return any(f"Index Scan using {INDEX}" in line for line in plan)


def check_index_plan(conn, ds, args, engine, settings_sql):
    """Once per engine, before anything is measured: the k-NN query must be
    an index scan on the engine's index, or the run stops (a sequential scan
    would be measured as the engine)."""
    for s in settings_sql:
        conn.execute(s)
    plan = explain(conn, engine_queries(ds, engine)[0], args.k, analyze=False)
    if not plan_uses_index(plan):
        sys.exit(f"{engine}: the k-NN query does not use {INDEX} (after {'; '.join(settings_sql)}); plan:\n  "
                 + "\n  ".join(line[:200] for line in plan))
    log(f"{engine}: EXPLAIN: " + next(line.strip() for line in plan if f"Index Scan using {INDEX}" in line))
    return plan


def session_settings(conn, res, engine):
    sql = [f"SET {name} = {value}" for name, value in SESSION_SETTINGS.items()]
    for s in sql:
        conn.execute(s)
    res.add({"type": "session", "engine": engine, "settings": sql})


def measure_sql(conn, ds, settings_sql, args, engine, label, fatal=False):
    """One engine in PostgreSQL at one sweep point: settings_sql, then the
    prepared k-NN statement once per query (binary vector parameter) after
    a warm-up, whole passes for at least --min-time.  The same code for ivf
    and pgvector; only the database (and so the extension) differs."""
    for s in settings_sql:
        conn.execute(s)
    k = args.k
    xq = engine_queries(ds, engine)
    plan = explain(conn, xq[0], k)
    index_scan = plan_uses_index(plan)
    if not index_scan:
        msg = (f"{engine} ({label}): the plan is not an index scan on {INDEX}:\n  "
               + "\n  ".join(line[:200] for line in plan))
        if fatal:
            sys.exit(msg)
        log("WARNING " + msg)
    sql = knn_sql(k)
    cur = conn.cursor(binary=True)
    for i in range(min(args.warmup, ds.nq)):
        cur.execute(sql, (xq[i],), prepare=True)
        cur.fetchall()
    ids = np.full((ds.nq, k), -1, dtype=np.int64)

    def q(i):
        cur.execute(sql, (xq[i],), prepare=True)
        rows = cur.fetchall()
        ids[i, : len(rows)] = [r[0] for r in rows]

    pid = backend_pid(conn)
    cpu0 = proc_cpu_ns(pid)
    lat, wall, passes = timed_passes(q, ds.nq, args.min_time)
    cpu1 = proc_cpu_ns(pid)
    cur.close()
    # the backend's CPU time per query: what the server spent, whatever else
    # the machine was running (wall time counts the waits too)
    cpu_us = (cpu1 - cpu0) / len(lat) / 1e3 if cpu0 is not None and cpu1 is not None else None
    return {"recall": recall_at(ids, ds.gt, k), "recall_ties": recall_ties(ids, ds, k),
            "qps": len(lat) / wall, **lat_stats(lat), "executions": len(lat), "passes": passes,
            "wall_s": wall, "backend_cpu_us": cpu_us, "index_scan": index_scan,
            "plan": [line[:200] for line in plan[:8]], "_lat": lat}


def proc_cpu_ns(pid):
    """A process's time on a CPU so far, in ns (/proc/PID/schedstat)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, IndexError, ValueError):
        return None


_BACKEND_PIDS = {}


def backend_pid(conn):
    """The pid of the backend serving conn (asked once per connection)."""
    if id(conn) not in _BACKEND_PIDS:
        _BACKEND_PIDS[id(conn)] = one(conn, "SELECT pg_backend_pid()")
    return _BACKEND_PIDS[id(conn)]


def measure_ivf(conn, ds, point, args):
    return measure_sql(conn, ds, point.ivf_sql, args, "ivf", point.label)


# ------------------------------------------------------------------- pgvector


@dataclass
class PeerPoint:
    """A sweep point of a pgvector engine: its label, the settings it runs
    before being measured and the knob's value (recorded as is)."""
    label: str
    sql: list
    knob: dict


def pgvector_points(engine, args, lists):
    """pgvector IVFFlat: ivfflat.probes over ivf's nprobe list (same lists);
    HNSW: hnsw.ef_search over --hnsw-ef-search, values below k skipped (an
    HNSW scan returns at most ef_search rows).  Iterative scans stay at
    pgvector's default (off), as ivf's scans return what the probed lists
    hold."""
    if engine in ("pgvector-ivfflat", "pgvector-ivfflat-halfvec"):
        vals = [n for n in args.nprobe if n <= lists]
        return [PeerPoint(f"nprobe={n}", [f"SET ivfflat.probes = {n}"], {"nprobe": n}) for n in vals]
    low = [e for e in args.hnsw_ef_search if e < args.k]
    if low:
        log(f"pgvector-hnsw: ef_search {low} < k = {args.k}: skipped (HNSW returns at most ef_search rows)")
    return [PeerPoint(f"ef_search={e}", [f"SET hnsw.ef_search = {e}"], {"ef_search": e})
            for e in args.hnsw_ef_search if e >= args.k]


def build_pgvector(conn, ds, args, res, engine, lists):
    """pgvector's CREATE INDEX, timed client-side like ivf's: IVFFlat with
    the lists ivf built, HNSW with --hnsw-m / --hnsw-ef-construction; the
    same maintenance_work_mem; serial (the server runs with
    max_parallel_maintenance_workers = 0, checked here)."""
    conn.execute(pgsql.SQL("SET maintenance_work_mem = {}").format(pgsql.Literal(args.maintenance_work_mem)))
    mwm = one(conn, "SHOW maintenance_work_mem")
    workers = int(one(conn, "SHOW max_parallel_maintenance_workers"))
    if workers != 0:
        log(f"WARNING: max_parallel_maintenance_workers = {workers}: {engine}'s build may run in parallel")
    if engine in ("pgvector-ivfflat", "pgvector-ivfflat-halfvec"):
        method, params = "ivfflat", {"lists": lists}
    else:
        method, params = "hnsw", {"m": args.hnsw_m, "ef_construction": args.hnsw_ef_construction}
    ddl = (f"CREATE INDEX {INDEX} ON items USING {method} (embedding {engine_elem(engine)}_l2_ops) WITH ("
           + ", ".join(f"{a} = {v}" for a, v in params.items()) + ")")
    notices = []

    def on_notice(d):
        notices.append(d.message_primary)
    conn.add_notice_handler(on_notice)
    t0 = now()
    conn.execute(ddl)
    build_s = now() - t0
    conn.remove_notice_handler(on_notice)
    conn.execute("RESET maintenance_work_mem")
    index_bytes = one(conn, "SELECT pg_relation_size(%s)", (INDEX,))
    log(f"{engine}: {ddl} in {build_s:.2f} s (maintenance_work_mem {mwm}, "
        f"max_parallel_maintenance_workers {workers}); index {index_bytes / 1e6:.1f} MB")
    for n in notices:
        log(f"  NOTICE: {n}")
    res.add({"type": "build", "engine": engine, "sql": ddl, "method": method, "params": params,
             "seconds": build_s, "index_bytes": index_bytes, "maintenance_work_mem": mwm,
             "max_parallel_maintenance_workers": workers, "notices": notices})
    return build_s, index_bytes


def setup_pgvector(engine, ds, args, res, lists):
    """The pgvector engine's database (created by main()): pin its backend,
    load the same rows into the same table, build, prewarm, check the plan.
    Returns (connection, points, build seconds, index bytes, prewarmed blocks)."""
    conn = connect(PGVECTOR_DB[engine])
    PEER_CONNS.append(conn)
    register_vector(conn)
    pin_cpus(conn, args, res, engine)
    load_table(conn, ds, args, res, engine)
    build_s, index_bytes = build_pgvector(conn, ds, args, res, engine, lists)
    blocks, _ = prewarm(conn, res, engine)
    points = pgvector_points(engine, args, lists)
    if not points:
        sys.exit(f"{engine}: nothing to sweep (check --nprobe / --hnsw-ef-search)")
    check_index_plan(conn, ds, args, engine, points[0].sql)
    session_settings(conn, res, engine)
    return conn, points, build_s, index_bytes, blocks


def setup_ivf_pgvector(ds, args, res, points):
    """ivf-pgvector's database (created by main() with CREATE EXTENSION
    ivf_pgvector CASCADE): pin its backend, load the same rows into the same
    table (pgvector's vector; the same binary form), build ivf's index with
    ivf's own build_ivf() (USING ivf instead of ivfflat), prewarm, check that
    ivf's first sweep point is an index scan on it.
    Returns (connection, ivf_index_info, build seconds, index bytes)."""
    conn = connect(IVF_PGVECTOR_DB)
    PEER_CONNS.append(conn)
    register_vector(conn)
    # loads ivf.so into this backend, so its settings (ivf.kmeans_iterations,
    # ivf.nprobe, ...) exist before the build reads them
    simd = one(conn, "SELECT ivf_simd_level()")
    log(f"ivf-pgvector: ivf_simd_level() = {simd}")
    pin_cpus(conn, args, res, "ivf-pgvector")
    load_table(conn, ds, args, res, "ivf-pgvector")
    info, _, build_s, index_bytes = build_ivf(conn, args, res, "ivf-pgvector", "ivf")
    prewarm(conn, res, "ivf-pgvector")
    check_index_plan(conn, ds, args, "ivf-pgvector", points[0].ivf_sql)
    session_settings(conn, res, "ivf-pgvector")
    return conn, info, build_s, index_bytes


def setup_ivf_halfvec(ds, args, res, points):
    """ivf-halfvec's database (created by main() with CREATE EXTENSION ivf):
    the same rows in a halfvec(d) column, ivf's index with halfvec_l2_ops
    built by build_ivf() (same lists, k-means settings, seed, --index-with),
    prewarm, and the plan check at ivf's first sweep point.
    Returns (connection, build seconds, index bytes)."""
    conn = connect(IVF_HALFVEC_DB)
    PEER_CONNS.append(conn)
    register_vector(conn)
    pin_cpus(conn, args, res, "ivf-halfvec")
    load_table(conn, ds, args, res, "ivf-halfvec")
    _, _, build_s, index_bytes = build_ivf(conn, args, res, "ivf-halfvec")
    prewarm(conn, res, "ivf-halfvec")
    check_index_plan(conn, ds, args, "ivf-halfvec", points[0].ivf_sql)
    session_settings(conn, res, "ivf-halfvec")
    return conn, build_s, index_bytes


def read_server_file(conn, path, chunk=64 << 20):
    """The bytes of a file on the server, in chunks (pg_read_binary_file:
    superuser, as the benchmark connects), so the client need not see the
    server's file system."""
    size = one(conn, "SELECT size FROM pg_stat_file(%s)", (path,))
    with conn.cursor(binary=True) as cur:
        for off in range(0, size, chunk):
            cur.execute("SELECT pg_read_binary_file(%s, %s, %s)", (path, off, min(chunk, size - off)))
            yield cur.fetchone()[0]


def faiss_lists(buf):
    """Centroids, list sizes and sorted ids per list of an IndexIVFFlat file."""
    raw = faiss.deserialize_index(np.frombuffer(buf, dtype=np.uint8))  # owns the index: keep it alive
    idx = faiss.downcast_index(raw)
    nlist = idx.nlist
    cents = idx.quantizer.reconstruct_n(0, nlist)
    inv = idx.invlists
    sizes = np.array([inv.list_size(i) for i in range(nlist)], dtype=np.int64)
    ids = [np.sort(faiss.rev_swig_ptr(inv.get_ids(i), int(sizes[i])).copy()) if sizes[i] else
           np.empty(0, dtype=np.int64) for i in range(nlist)]
    return cents, sizes, ids


def compare_ivf_lists(conn, pconn, info, pinfo, res):
    """Do standalone ivf and ivf-pgvector hold the same lists?  The same rows
    in the same heap order, the same lists, seed and k-means settings give
    the same training sample, centroids and assignment, so they should.
    First ivf_index_info of both; then both indexes are written with
    ivf_export_faiss into the data directory of the throwaway cluster and
    read back over the connection: byte-identical files mean identical
    centroids, list sizes and list contents (the ids are the rows' tids,
    which the identical loads make equal); otherwise Faiss reads both files
    and the record says what differs."""
    diff = {k: [v, pinfo.get(k)] for k, v in info.items() if v != pinfo.get(k)}
    rec = {"type": "lists_compare", "engines": ["ivf", "ivf-pgvector"], "index_info_equal": not diff,
           "index_info_diff": diff}
    try:
        datadir = one(conn, "SHOW data_directory")
        files = {}
        for eng, c in (("ivf", conn), ("ivf-pgvector", pconn)):
            path = os.path.join(datadir, f"ivfbench-{eng}.faiss")
            vectors = one(c, "SELECT ivf_export_faiss(%s, %s)", (INDEX, path))
            h = hashlib.sha256()
            nbytes = 0
            for part in read_server_file(c, path):
                h.update(part)
                nbytes += len(part)
            files[eng] = {"path": path, "vectors": vectors, "bytes": nbytes, "sha256": h.hexdigest()}
        rec["export"] = files
        same = files["ivf"]["sha256"] == files["ivf-pgvector"]["sha256"]
        rec["export_identical"] = same
        if not same:
            a = faiss_lists(b"".join(read_server_file(conn, files["ivf"]["path"])))
            b = faiss_lists(b"".join(read_server_file(pconn, files["ivf-pgvector"]["path"])))
            if a[0].shape == b[0].shape:
                rec["centroids_equal"] = bool(np.array_equal(a[0], b[0]))
                rec["centroids_max_abs_diff"] = float(np.abs(a[0] - b[0]).max())
                rec["lists_with_other_size"] = int((a[1] != b[1]).sum())
                rec["rows_in_other_list"] = int(sum(len(np.setdiff1d(x, y)) for x, y in zip(a[2], b[2])))
            else:
                rec["centroids_shape"] = [list(a[0].shape), list(b[0].shape)]
    except psycopg.Error as e:
        rec["export_error"] = str(e).strip()
    if rec.get("export_identical"):
        rec["verdict"] = ("identical: ivf_index_info equal; ivf_export_faiss files byte-identical "
                          "(centroids, list sizes and contents)")
    elif "export_error" in rec:
        rec["verdict"] = (f"ivf_index_info {'equal' if not diff else 'differs: ' + json.dumps(diff, default=str)}; "
                          f"export not compared ({rec['export_error']})")
    else:
        rec["verdict"] = ("DIFFERENT: ivf_index_info " + ("equal" if not diff else "differs: "
                                                          + json.dumps(diff, default=str))
                          + "; " + ", ".join(f"{k} {rec[k]}" for k in ("centroids_equal", "centroids_max_abs_diff",
                                                                       "lists_with_other_size", "rows_in_other_list",
                                                                       "centroids_shape") if k in rec))
    log(f"ivf vs ivf-pgvector lists: {rec['verdict']}")
    return res.add(rec)


def build_faiss(ds, lists, niter, train_rows, res):
    """Faiss IndexIVFFlat, k-means with Faiss's own iteration count for
    IndexIVF (cp.niter, 10) unless niter is given; Faiss samples
    max_points_per_centroid (default 256) x lists rows, raised to ivf's
    sample when ivf trains on more (ivf: max(ivf.kmeans_points_per_list,
    default 128, x lists, 10,000)), never lowered below Faiss's default."""
    quantizer = faiss.IndexFlatL2(ds.d)
    index = faiss.IndexIVFFlat(quantizer, ds.d, lists, faiss.METRIC_L2)
    if niter:
        index.cp.niter = niter
    niter = index.cp.niter
    index.cp.max_points_per_centroid = max(index.cp.max_points_per_centroid, -(-int(train_rows) // lists))
    t0 = now()
    index.train(ds.base)
    train_s = now() - t0
    t0 = now()
    index.add(ds.base)
    add_s = now() - t0
    mem = lists * ds.d * 4 + ds.n * (ds.d * 4 + 8)
    sizes = np.array([index.invlists.list_size(i) for i in range(lists)])
    log(f"faiss: IndexIVFFlat train {train_s:.2f} s + add {add_s:.2f} s = {train_s + add_s:.2f} s "
        f"(lists {lists}, {niter} k-means iterations, seed {index.cp.seed}, "
        f"trained on {min(ds.n, lists * index.cp.max_points_per_centroid)} rows); ~{mem / 1e6:.1f} MB")
    res.add({"type": "build", "engine": "faiss", "lists": lists, "train_s": train_s, "add_s": add_s,
             "seconds": train_s + add_s, "memory_bytes": mem, "kmeans_iterations": niter,
             "seed": index.cp.seed, "max_points_per_centroid": index.cp.max_points_per_centroid,
             "trained_on": min(ds.n, lists * index.cp.max_points_per_centroid),
             "largest_list": int(sizes.max()), "empty_lists": int((sizes == 0).sum())})
    return index, train_s + add_s


def measure_faiss(index, ds, point, args):
    for a, v in point.faiss.items():
        setattr(index, a, v)
    k = args.k
    xq = ds.queries
    for i in range(min(args.warmup, ds.nq)):
        index.search(xq[i : i + 1], k)
    ids = np.full((ds.nq, k), -1, dtype=np.int64)

    def q(i):
        _, I = index.search(xq[i : i + 1], k)
        ids[i] = I[0]

    lat, wall, passes = timed_passes(q, ds.nq, args.min_time)
    return {"recall": recall_at(ids, ds.gt, k), "recall_ties": recall_ties(ids, ds, k),
            "qps": len(lat) / wall, **lat_stats(lat), "executions": len(lat), "passes": passes,
            "wall_s": wall, "params": dict(point.faiss), "_lat": lat}


def measure_null(conn, ds, args):
    """The floor under every ivf number: the same client, driver and prepared
    statement machinery, one binary vector parameter, no index work."""
    sql = "SELECT vector_dims(%b)"
    cur = conn.cursor(binary=True)
    xq = ds.queries
    for i in range(min(args.warmup, ds.nq)):
        cur.execute(sql, (xq[i],), prepare=True)
        cur.fetchall()

    def q(i):
        cur.execute(sql, (xq[i],), prepare=True)
        cur.fetchall()

    lat, wall, passes = timed_passes(q, ds.nq, min(args.min_time, 1.0))
    cur.close()
    return {"sql": sql.replace("%b", "$1"), "qps": len(lat) / wall, **lat_stats(lat), "executions": len(lat),
            "wall_s": wall, "_lat": lat}


def combine_rounds(rounds):
    """Merge the measurements of one point over rounds: QPS is the median of
    the rounds' QPS (all listed in qps_rounds), latency percentiles are over
    all executions of all rounds, recall is the first round's (the answers do
    not change between rounds; recall_rounds lists them if they did)."""
    out = {k: v for k, v in rounds[0].items() if not k.startswith("_")}
    lat = [x for r in rounds for x in r["_lat"]]
    out.update(lat_stats(lat))
    qps = [r["qps"] for r in rounds]
    out["qps"] = float(np.median(qps))
    out["qps_rounds"] = qps
    out["rounds"] = len(rounds)
    out["executions"] = len(lat)
    out["wall_s"] = sum(r["wall_s"] for r in rounds)
    if "passes" in out:
        out["passes"] = sum(r["passes"] for r in rounds)
    cpu = [r.get("backend_cpu_us") for r in rounds]
    if cpu and all(c is not None for c in cpu):
        out["backend_cpu_us"] = float(np.median(cpu))
        out["backend_cpu_us_rounds"] = cpu
    recalls = sorted({r["recall"] for r in rounds if "recall" in r})
    if len(recalls) > 1:
        out["recall_rounds"] = [r["recall"] for r in rounds]
    return out


# --------------------------------------------------------------- batch search


def tiled(xq, nq):
    reps = (nq + len(xq) - 1) // len(xq)
    return np.ascontiguousarray(np.tile(xq, (reps, 1))[:nq])


def batch_query_set(ds, args):
    """The queries every batch measurement answers: the first max(batch_nq)
    queries (repeated when the data set has fewer), cut into calls of nq, so
    that every nq answers the same queries."""
    total = max(args.batch_nq)
    Q = tiled(ds.queries, total)
    gt = ds.gt[np.arange(total) % ds.nq]
    return Q, gt


def timed_batches(call, Q, nq, min_time):
    """call(batch) -> ids (len(batch) x k) or None.  Calls of nq queries
    walk through Q (and around again) until min_time has passed; a slow
    engine may stop before the end of Q.  Returns (ids of the queries
    answered in the first pass, queries answered, calls, wall seconds)."""
    starts = list(range(0, len(Q), nq))
    first = []
    calls = 0
    answered = 0
    t0 = now()
    while True:
        s = starts[calls % len(starts)]
        out = call(Q[s : s + nq])
        if calls < len(starts):
            first.append(out)
        calls += 1
        answered += len(Q[s : s + nq])
        if now() - t0 >= min_time:
            break
    wall = now() - t0
    ids = None if any(o is None for o in first) else np.vstack(first)
    return ids, answered, calls, wall


def batch_record(nq, ids, answered, calls, wall, gt, k):
    rec = {"nq": nq, "qps": answered / wall, "calls": calls, "queries_answered": answered, "wall_s": wall,
           "ms_per_call": wall / calls * 1e3, "queries": len(gt)}
    rec["recall"] = recall_at(ids, gt[: len(ids)], k) if ids is not None else None
    return rec


def measure_faiss_batch(index, ds, nprobe, args):
    index.nprobe = nprobe
    index.max_codes = 0
    Q, gt = batch_query_set(ds, args)
    out = []
    for nq in args.batch_nq:
        index.search(Q[:nq], args.k)  # warm-up
        r = timed_batches(lambda b: index.search(b, args.k)[1], Q, nq, min(args.min_time, 1.0))
        out.append(batch_record(nq, *r, gt, args.k))
    return out


def ivf_search_signature(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.proname = 'ivf_search'")
        return [r[0] for r in cur.fetchall()]


def ivf_batch_variants(args):
    """(name, SQL with %b = the vector[] of queries), each returning rows
    (query 1-based, rank 1-based, id or tid):
      join: ids through the join the README documents (t.ctid = s.tid);
      tids: the function's own rows; ids looked up client-side (a dict from
            ctid to id read once), so this is the search plus row transfer."""
    call = f"ivf_search('{INDEX}'::regclass, %b, {args.k})"
    join = args.ivf_batch_sql or f"SELECT s.query, s.rank, t.id FROM {call} s JOIN items t ON t.ctid = s.tid"
    return [("join", join.replace("%d", str(args.k))), ("tids", f"SELECT s.query, s.rank, s.tid FROM {call} s")]


def measure_ivf_batch(conn, ds, nprobe, args):
    for name in SESSION_SETTINGS:
        conn.execute(f"RESET {name}")
    conn.execute(f"SET ivf.nprobe = {nprobe}")
    for g in SWEEP_GUCS:
        if setting_exists(conn, g):
            conn.execute(f"RESET {g}")
    modes = args.batch_modes if setting_exists(conn, "ivf.search_mode") else [None]
    Q, gt = batch_query_set(ds, args)
    with conn.cursor(binary=True) as cur:
        cur.execute("SELECT ctid, id FROM items")
        tidmap = dict(cur.fetchall())
    out = []
    for mode in modes:
        if mode is not None:
            conn.execute(f"SET ivf.search_mode = {pgsql.quote(mode)}")
        for variant, sql in ivf_batch_variants(args):
            cur = conn.cursor(binary=True)
            with conn.cursor() as c2:
                c2.execute("EXPLAIN " + sql.replace("%b", "ARRAY[]::vector[]"))
                plan = [r[0][:200] for r in c2.fetchall()]

            def call(b, sql=sql, variant=variant):
                cur.execute(sql, (list(b),), prepare=True)
                return _batch_ids(cur.fetchall(), len(b), args.k, tidmap if variant == "tids" else None)

            for nq in args.batch_nq:
                rec = {"variant": variant, "search_mode": mode, "sql": sql.replace("%b", "$1"), "plan": plan}
                try:
                    call(Q[:nq])  # warm-up (and prepare)
                    r = timed_batches(call, Q, nq, min(args.min_time, 1.0))
                except psycopg.Error as e:
                    log(f"  ivf batch search ({variant}, nq={nq}): error: {str(e).strip()}")
                    out.append({"nq": nq, **rec, "error": str(e).strip()})
                    break
                out.append({**batch_record(nq, *r, gt, args.k), **rec})
            cur.close()
    if modes != [None]:
        conn.execute("RESET ivf.search_mode")
    return out


def _batch_ids(rows, nq, k, tidmap=None):
    """rows (query 1-based, rank 1-based, id or tid) -> nq x k ids (-1 = missing)."""
    ids = np.full((nq, k), -1, dtype=np.int64)
    for r in rows:
        q, rank = int(r[0]) - 1, int(r[1]) - 1
        if 0 <= q < nq and 0 <= rank < k:
            ids[q, rank] = tidmap.get(r[2], -1) if tidmap is not None else int(r[2])
    return ids


# ---------------------------------------------------------------------- plots


def plots(ds, res, stem, title_extra, png=False):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator
    plt.rcParams["svg.hashsalt"] = "ivfbench"
    plt.rcParams["svg.fonttype"] = "none"
    files = []
    search = [r for r in res.records if r["type"] == "search"]
    env = next((r for r in res.records if r["type"] == "env"), {})
    footer = (f"{env.get('cpu_model', '?')}, {env.get('cores', '?')} cores; "
              f"{(env.get('pg_version') or 'PostgreSQL ?').split(' on ')[0]}; "
              f"ivf {(env.get('ivf_commit') or '?')[:10]}{'+dirty' if env.get('ivf_dirty') else ''} "
              f"({env.get('ivf_simd_level', '?')}); faiss-cpu {env.get('faiss_version', '?')} "
              f"({env.get('faiss_simd_level', '?')}); "
              + (f"pgvector {env['pgvector_extversion']}; " if env.get("pgvector_extversion") else "")
              + (env.get("date") or "")[:10])
    thousands = FuncFormatter(lambda v, _: f"{v:,.0f}")

    def finish(fig, ax):
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(thousands)
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        fig.text(0.01, 0.01, footer, fontsize=6.5, color="0.35")
        fig.tight_layout(rect=(0, 0.03, 1, 1))

    def save(fig, name):
        p = f"{stem}-{name}.svg"
        fig.savefig(p, format="svg", metadata={"Date": None})
        if png:
            fig.savefig(p[:-4] + ".png", format="png", dpi=110)
        plt.close(fig)
        files.append(p)

    colors = {"ivf": ["tab:blue", "tab:cyan", "tab:olive", "navy", "teal", "slateblue"],
              "faiss": ["tab:orange", "tab:brown", "tab:pink", "gold", "maroon", "salmon"],
              "pgvector-ivfflat": ["tab:green"], "pgvector-hnsw": ["tab:purple"],
              "ivf-pgvector": ["tab:red", "tab:gray", "darkred", "rosybrown", "crimson", "dimgray"],
              "ivf-halfvec": ["tab:cyan", "darkcyan", "cadetblue", "lightseagreen", "deepskyblue", "steelblue"],
              "pgvector-ivfflat-halfvec": ["yellowgreen"]}
    pgv = env.get("pgvector_extversion") or "?"
    names = {"ivf": "ivf (PostgreSQL, prepared SQL, 1 client)", "faiss": "Faiss IndexIVFFlat (1 thread)",
             "pgvector-ivfflat": f"pgvector {pgv} IVFFlat (same client)",
             "pgvector-hnsw": f"pgvector {pgv} HNSW (same client)",
             "ivf-pgvector": f"ivf on pgvector {pgv}'s vector (ivf_pgvector, same client)",
             "ivf-halfvec": "ivf on halfvec (same client)",
             "pgvector-ivfflat-halfvec": f"pgvector {pgv} IVFFlat on halfvec (same client)"}
    fig, ax = plt.subplots(figsize=(7, 4.6))
    for eng, marker in (("ivf", "o"), ("ivf-pgvector", "v"), ("ivf-halfvec", "P"), ("faiss", "s"),
                        ("pgvector-ivfflat", "^"), ("pgvector-ivfflat-halfvec", "<"), ("pgvector-hnsw", "D")):
        variants = list(dict.fromkeys(r.get("variant", "") for r in search if r["engine"] == eng))
        for vi, var in enumerate(variants):
            pts = [r for r in search if r["engine"] == eng and r.get("variant", "") == var]
            color = colors[eng][vi % len(colors[eng])]
            ax.plot([r["recall"] for r in pts], [r["qps"] for r in pts], marker=marker, color=color,
                    label=names[eng] + (f", {var}" if var else ""))
            for r in pts:
                knob = r["ef_search"] if eng == "pgvector-hnsw" else r["nprobe"]
                ax.annotate(str(knob), (r["recall"], r["qps"]), textcoords="offset points",
                            xytext=(4, 4), fontsize=7, color=color)
    ax.set_yscale("log")
    ax.set_xlabel(f"recall@{search[0]['k'] if search else 10}")
    ax.set_ylabel("queries per second (single query)")
    ax.set_title(f"{ds.name}: {ds.n:,} x {ds.d}, {title_extra}; labels = nprobe"
                 + (" (HNSW: ef_search)" if any(r["engine"] == "pgvector-hnsw" for r in search) else ""),
                 fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    finish(fig, ax)
    save(fig, "qps-recall")

    batch = [r for r in res.records if r["type"] == "batch" and "qps" in r]
    if batch:
        fig, ax = plt.subplots(figsize=(7, 4.6))
        nprobe = batch[0]["nprobe"]
        curves = list(dict.fromkeys((r["engine"], r.get("variant"), r.get("search_mode")) for r in batch))
        ci = {"ivf": 0, "faiss": 0}
        for eng, var, mode in curves:
            pts = sorted((r for r in batch if (r["engine"], r.get("variant"), r.get("search_mode")) == (eng, var, mode)),
                         key=lambda r: r["nq"])
            color = colors[eng][ci[eng] % len(colors[eng])]
            ci[eng] += 1
            if eng == "faiss":
                label = "Faiss search(xq[i:i+nq])"
            else:
                label = "ivf " + ("ivf_search() JOIN items (ids)" if var == "join" else "ivf_search() (tids)")
                label += f", search_mode {mode}" if mode else ""
            ax.plot([r["nq"] for r in pts], [r["qps"] for r in pts], marker="s" if eng == "faiss" else "o",
                    color=color, linestyle="-" if var in (None, "join") else "--", label=label)
        for eng, color in (("ivf", "tab:blue"), ("faiss", "tab:orange")):
            single = [r for r in search if r["engine"] == eng and r["nprobe"] == nprobe and not r.get("variant")]
            if single:
                ax.axhline(single[0]["qps"], color=color, linestyle=":", linewidth=1,
                           label=f"{eng} single-query loop")
        skipped = [r for r in res.records if r["type"] == "batch" and r["engine"] == "ivf" and "skipped" in r]
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("queries per call (nq)")
        ax.set_ylabel("queries per second")
        t = f"{ds.name}: batch search, nprobe {nprobe}, {title_extra}"
        if skipped:
            t += " (ivf_search: not in this build)"
        ax.set_title(t, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        ax.xaxis.set_major_formatter(thousands)
        finish(fig, ax)
        save(fig, "batch")
    return files


# ----------------------------------------------------------------------- main


def fmt_qps(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def print_rows(hdr, lines):
    w = [max([len(h)] + [len(line[i]) for line in lines]) for i, h in enumerate(hdr)]
    log(" | ".join(h.rjust(w[i]) for i, h in enumerate(hdr)))
    log("-+-".join("-" * x for x in w))
    for line in lines:
        log(" | ".join(c.rjust(w[i]) for i, c in enumerate(line)))


def print_table(ds, lists, rows, build, floor, batch, k):
    log("")
    rounds = rows[0]["ivf"].get("rounds", 1) if rows else 1
    log(f"=== {ds.name}: {ds.n:,} x {ds.d}, {ds.nq:,} queries, k = {k}, lists = {lists}; single-query QPS, "
        f"1 client / 1 thread{f'; median of {rounds} rounds' if rounds > 1 else ''} ===")
    plain = all(not r["variant"] for r in rows)
    hdr = ["nprobe" if plain else "point", "ivf recall", "faiss recall", "ivf QPS", "faiss QPS", "ivf/faiss",
           "ivf p50/p99 ms", "faiss p50/p99 ms"]
    lines = []
    for r in rows:
        iv, fa = r.get("ivf"), r.get("faiss")
        lines.append([
            str(r["nprobe"]) if plain else r["point"],
            f"{iv['recall']:.4f}" if iv else "-",
            f"{fa['recall']:.4f}" if fa else "-",
            fmt_qps(iv["qps"]) if iv else "-",
            fmt_qps(fa["qps"]) if fa else "-",
            f"{iv['qps'] / fa['qps']:.2f}" if iv and fa else "-",
            f"{iv['p50_ms']:.3f}/{iv['p99_ms']:.3f}" if iv else "-",
            f"{fa['p50_ms']:.3f}/{fa['p99_ms']:.3f}" if fa else "-",
        ])
    print_rows(hdr, lines)
    ib, fb = build.get("ivf"), build.get("faiss")
    s = f"build: ivf CREATE INDEX {ib:.2f} s"
    if fb:
        s += f", faiss train+add {fb:.2f} s, ivf/faiss {ib / fb:.2f}"
    log(s)
    if floor:
        log(f"client floor (prepared '{floor['sql']}', same connection): p50 {floor['p50_ms']:.3f} ms, "
            f"{fmt_qps(floor['qps'])} QPS")
    ok = [b for b in batch if "qps" in b]
    if ok:
        nprobe = ok[0]["nprobe"]
        cols = list(dict.fromkeys((b["engine"], b.get("variant"), b.get("search_mode")) for b in ok))
        hdr = ["nq"] + [("faiss" if e == "faiss" else f"ivf {v}" + (f" {m}" if m and len(args_modes(ok)) > 1 else ""))
                        + " QPS" for e, v, m in cols]
        fa_col = next((i for i, c in enumerate(cols) if c[0] == "faiss"), None)
        iv_col = next((i for i, c in enumerate(cols) if c[0] == "ivf" and c[1] == "join"), None)
        if fa_col is not None and iv_col is not None:
            hdr.append("ivf join/faiss")
        lines = []
        for nq in sorted({b["nq"] for b in ok}):
            vals = []
            for c in cols:
                m = [b for b in ok if (b["engine"], b.get("variant"), b.get("search_mode")) == c and b["nq"] == nq]
                vals.append(m[0]["qps"] if m else None)
            line = [str(nq)] + [fmt_qps(v) if v else "-" for v in vals]
            if len(hdr) > len(line):
                a, b = vals[iv_col], vals[fa_col]
                line.append(f"{a / b:.2f}" if a and b else "-")
            lines.append(line)
        log(f"batch search at nprobe {nprobe} (the same {ok[0].get('queries', '?')} queries in calls of nq):")
        print_rows(hdr, lines)
    for b in batch:
        if "skipped" in b:
            log(f"ivf batch search: skipped ({b['skipped']})")


def matched_recall(table, peer_rows, targets):
    """For each recall target, each engine's first setting in knob order
    (nprobe; HNSW: ef_search) whose recall@k reaches it, and ivf's QPS over
    the peer's there.  The engines' recalls at those settings differ a little
    (both are listed); an engine that never reaches the target gets its best
    recall instead."""
    curves = {"ivf": [], "ivf-pgvector": [], "ivf-halfvec": [], "faiss": []}
    for r in table:
        if r["variant"]:
            continue
        for e in ("ivf", "ivf-pgvector", "ivf-halfvec", "faiss"):
            if e in r:
                curves[e].append((r["nprobe"], r["point"], r[e]))
    for eng, rows in peer_rows.items():
        key = "ef_search" if eng == "pgvector-hnsw" else "nprobe"
        curves[eng] = [(r[key], r["point"], r["m"]) for r in rows]
    out = []
    for t in targets:
        ent = {"target": t, "engines": {}, "qps_ratio_ivf_over": {}}
        for eng, c in curves.items():
            if not c:
                continue
            hit = next((x for x in sorted(c, key=lambda x: x[0]) if x[2]["recall"] >= t), None)
            if hit:
                m = hit[2]
                ent["engines"][eng] = {"point": hit[1], "recall": m["recall"], "qps": m["qps"],
                                       "p50_ms": m["p50_ms"], "p99_ms": m["p99_ms"]}
            else:
                ent["engines"][eng] = {"point": None, "max_recall": max(x[2]["recall"] for x in c)}
        iv = ent["engines"].get("ivf", {})
        for eng, e in ent["engines"].items():
            if eng != "ivf" and iv.get("qps") and e.get("qps"):
                ent["qps_ratio_ivf_over"][eng] = iv["qps"] / e["qps"]
        out.append(ent)
    return out


def print_peers(ds, lists, table, peer_rows, peer_floors, matched, build, sizes, args, pgv_version,
                lists_cmp=None, ivf_pgv_version=None):
    """The pgvector tables, the matched-recall summary (every QPS figure a
    ratio against ivf in the same run) and the builds of all engines."""
    k = args.k
    if any("ivf-pgvector" in r for r in table):
        print_ivf_pgvector(table, build, sizes, lists_cmp, ivf_pgv_version, pgv_version)
    for eng in ("pgvector-ivfflat", "pgvector-ivfflat-halfvec"):
        if eng not in peer_rows:
            continue
        log("")
        # pgvector on halfvec is set against ivf on halfvec when measured
        ref = "ivf-halfvec" if eng.endswith("-halfvec") and any("ivf-halfvec" in r for r in table) else "ivf"
        log(f"=== {eng} (pgvector {pgv_version or '?'}): lists = {lists}, ivfflat.probes = nprobe; same table, "
            f"query and client in database {PGVECTOR_DB[eng]}; set against {ref} ===")
        ivf_by = {r["point"]: r[ref] for r in table if not r["variant"] and ref in r}
        hdr = ["nprobe", f"{ref} recall", "pgv recall", f"{ref} QPS", "pgv QPS", f"{ref}/pgv", f"{ref} p50/p99 ms",
               "pgv p50/p99 ms"]
        lines = []
        for r in peer_rows[eng]:
            iv, pv = ivf_by.get(r["point"]), r["m"]
            lines.append([str(r["nprobe"]), f"{iv['recall']:.4f}" if iv else "-", f"{pv['recall']:.4f}",
                          fmt_qps(iv["qps"]) if iv else "-", fmt_qps(pv["qps"]),
                          f"{iv['qps'] / pv['qps']:.2f}" if iv else "-",
                          f"{iv['p50_ms']:.3f}/{iv['p99_ms']:.3f}" if iv else "-",
                          f"{pv['p50_ms']:.3f}/{pv['p99_ms']:.3f}"])
        print_rows(hdr, lines)
    if "pgvector-hnsw" in peer_rows:
        eng = "pgvector-hnsw"
        log("")
        log(f"=== {eng} (pgvector {pgv_version or '?'}): m = {args.hnsw_m}, ef_construction = "
            f"{args.hnsw_ef_construction}, hnsw.ef_search swept; same table, query and client in database "
            f"{PGVECTOR_DB[eng]} ===")
        lines = [[str(r["ef_search"]), f"{r['m']['recall']:.4f}", fmt_qps(r["m"]["qps"]),
                  f"{r['m']['p50_ms']:.3f}/{r['m']['p99_ms']:.3f}"] for r in peer_rows[eng]]
        print_rows(["ef_search", "recall", "QPS", "p50/p99 ms"], lines)
    for eng, fl in peer_floors.items():
        log(f"client floor in {eng}'s database: p50 {fl['p50_ms']:.3f} ms, {fmt_qps(fl['qps'])} QPS")
    if not args.peers:
        return

    log("")
    log(f"=== matched recall@{k}: each engine's first setting (in nprobe / ef_search order) reaching the "
        f"target; ivf/engine = ivf QPS / engine QPS at those settings ===")
    lines = []
    for ent in matched:
        for eng, e in ent["engines"].items():
            if e.get("point"):
                ratio = ent["qps_ratio_ivf_over"].get(eng)
                lines.append([f"{ent['target']:.2f}", eng, e["point"], f"{e['recall']:.4f}", fmt_qps(e["qps"]),
                              "-" if eng == "ivf" else (f"{ratio:.2f}" if ratio else "-")])
            else:
                lines.append([f"{ent['target']:.2f}", eng, f"not reached (best recall {e['max_recall']:.4f})",
                              "-", "-", "-"])
    print_rows(["target", "engine", "setting", "recall", "QPS", "ivf/engine"], lines)

    if any("ivf-halfvec" in r for r in table) or "pgvector-ivfflat-halfvec" in peer_rows:
        print_halfvec(table, peer_rows, sizes)
    if not peer_rows and "ivf-pgvector" not in build and "ivf-halfvec" not in build:
        return  # the builds are in the Faiss table's build line
    log("")
    mwm = args.maintenance_work_mem
    parts = []
    for eng, t in build.items():
        size = f", {sizes[eng] / 1e6:.1f} MB" if eng in sizes else ""
        what = "train+add" if eng == "faiss" else "CREATE INDEX"
        parts.append(f"{eng} {what} {t:.2f} s{size}")
    log(f"build (one process, maintenance_work_mem {mwm}): " + "; ".join(parts))
    ratios = [f"{e} {build['ivf'] / t:.2f}" for e, t in build.items() if e != "ivf" and t > 0]
    if ratios:
        log("build time ivf/engine: " + ", ".join(ratios) + " (below 1: ivf builds faster)")
    sr = [f"{e} {sizes['ivf'] / b:.2f}" for e, b in sizes.items() if e != "ivf" and b]
    if sr:
        log("index size ivf/engine (pg_relation_size): " + ", ".join(sr))


def halfvec_rows(table, peer_rows):
    """Per nprobe (plain sweep points): ivf on vector, ivf-halfvec and the
    pgvector IVFFlat engines that ran; the issue's ratios ivf-halfvec /
    ivf (QPS, recall difference) and the ivf / pgvector QPS ratios on both
    types (ivf-halfvec over pgvector-ivfflat-halfvec, ivf over
    pgvector-ivfflat)."""
    pgv = {eng: {r["point"]: r["m"] for r in peer_rows.get(eng, [])}
           for eng in ("pgvector-ivfflat", "pgvector-ivfflat-halfvec")}
    out = []
    for r in table:
        if r["variant"]:
            continue
        iv, ih = r.get("ivf"), r.get("ivf-halfvec")
        pv, ph = pgv["pgvector-ivfflat"].get(r["point"]), pgv["pgvector-ivfflat-halfvec"].get(r["point"])
        row = {"point": r["point"], "nprobe": r["nprobe"], "ivf_recall": iv["recall"], "ivf_qps": iv["qps"]}
        if ih:
            diff = ih["recall"] - iv["recall"]
            row.update({"ivf_halfvec_recall": ih["recall"], "ivf_halfvec_qps": ih["qps"],
                        "ivf_halfvec_p50_ms": ih["p50_ms"], "ivf_halfvec_p99_ms": ih["p99_ms"],
                        "recall_diff_halfvec_minus_vector": diff,
                        "recall_within_tol": abs(diff) <= HALFVEC_RECALL_TOL,
                        "qps_ratio_halfvec_over_vector": ih["qps"] / iv["qps"],
                        "meets_qps_target": ih["qps"] / iv["qps"] >= HALFVEC_QPS_TARGET})
        if pv:
            row.update({"pgvector_recall": pv["recall"], "pgvector_qps": pv["qps"],
                        "qps_ratio_ivf_over_pgvector": iv["qps"] / pv["qps"]})
        if ph:
            row.update({"pgvector_halfvec_recall": ph["recall"], "pgvector_halfvec_qps": ph["qps"]})
            if ih:
                row["qps_ratio_ivf_halfvec_over_pgvector_halfvec"] = ih["qps"] / ph["qps"]
        out.append(row)
    return out


def halfvec_summary(table, peer_rows, sizes):
    rows = halfvec_rows(table, peer_rows)
    iv, ih = sizes.get("ivf"), sizes.get("ivf-halfvec")
    pv, ph = sizes.get("pgvector-ivfflat"), sizes.get("pgvector-ivfflat-halfvec")
    return {"targets": {"recall_tol": HALFVEC_RECALL_TOL, "qps_ratio": HALFVEC_QPS_TARGET,
                        "size_ratio": HALFVEC_SIZE_TARGET},
            "points": rows,
            "index_bytes": {"ivf": iv, "ivf-halfvec": ih, "pgvector-ivfflat": pv, "pgvector-ivfflat-halfvec": ph},
            "size_ratio_ivf_halfvec_over_ivf": ih / iv if iv and ih else None,
            "size_ratio_pgvector_halfvec_over_pgvector": ph / pv if pv and ph else None,
            "recall_within_tol_all": all(r["recall_within_tol"] for r in rows if "recall_within_tol" in r),
            "qps_target_points": sum(r.get("meets_qps_target", False) for r in rows),
            "points_total": len(rows)}


def print_halfvec(table, peer_rows, sizes):
    """The halfvec comparison, per nprobe: ivf-halfvec against ivf on
    vector (recall difference, QPS ratio; the index size ratio below), and
    ivf against pgvector's IVFFlat on each type (the speedup on halfvec
    beside the one on vector)."""
    rows = halfvec_rows(table, peer_rows)
    sm = halfvec_summary(table, peer_rows, sizes)
    log("")
    log(f"=== halfvec: ivf-halfvec (ivf, halfvec(d) column, halfvec_l2_ops, database {IVF_HALFVEC_DB}) against "
        f"ivf on vector, same rows, lists and sweep; query sent as halfvec (binary); targets: recall diff within "
        f"{HALFVEC_RECALL_TOL}, QPS ratio >= {HALFVEC_QPS_TARGET:.2f}, size ratio <= {HALFVEC_SIZE_TARGET} ===")
    have_ih = any("ivf_halfvec_qps" in r for r in rows)
    have_pv = any("pgvector_qps" in r for r in rows)
    have_ph = any("pgvector_halfvec_qps" in r for r in rows)
    hdr = ["nprobe", "ivf recall"]
    if have_ih:
        hdr += ["ivf-half recall", "diff", "ivf QPS", "ivf-half QPS", "half/vector"]
    else:
        hdr += ["ivf QPS"]
    if have_ph:
        hdr += ["pgv-half recall", "pgv-half QPS"]
        if have_ih:
            hdr += ["ivf-half/pgv-half"]
    if have_pv:
        hdr += ["ivf/pgv (vector)"]
    lines = []
    for r in rows:
        line = [str(r["nprobe"]), f"{r['ivf_recall']:.4f}"]
        if have_ih:
            ok = "" if r.get("recall_within_tol", True) else " !"
            line += [f"{r['ivf_halfvec_recall']:.4f}" if "ivf_halfvec_recall" in r else "-",
                     f"{r['recall_diff_halfvec_minus_vector']:+.4f}{ok}" if "ivf_halfvec_recall" in r else "-",
                     fmt_qps(r["ivf_qps"]),
                     fmt_qps(r["ivf_halfvec_qps"]) if "ivf_halfvec_qps" in r else "-",
                     f"{r['qps_ratio_halfvec_over_vector']:.3f}" if "ivf_halfvec_qps" in r else "-"]
        else:
            line += [fmt_qps(r["ivf_qps"])]
        if have_ph:
            line += [f"{r['pgvector_halfvec_recall']:.4f}" if "pgvector_halfvec_recall" in r else "-",
                     fmt_qps(r["pgvector_halfvec_qps"]) if "pgvector_halfvec_qps" in r else "-"]
            if have_ih:
                v = r.get("qps_ratio_ivf_halfvec_over_pgvector_halfvec")
                line += [f"{v:.2f}" if v else "-"]
        if have_pv:
            v = r.get("qps_ratio_ivf_over_pgvector")
            line += [f"{v:.2f}" if v else "-"]
        lines.append(line)
    print_rows(hdr, lines)
    if have_ih:
        log(f"recall within {HALFVEC_RECALL_TOL} at every nprobe: {'yes' if sm['recall_within_tol_all'] else 'no'}; "
            f"QPS ratio >= {HALFVEC_QPS_TARGET:.2f} at {sm['qps_target_points']} of {sm['points_total']} points")
    b = sm["index_bytes"]
    parts = []
    if sm["size_ratio_ivf_halfvec_over_ivf"] is not None:
        parts.append(f"ivf-halfvec {b['ivf-halfvec'] / 1e6:.2f} MB / ivf {b['ivf'] / 1e6:.2f} MB = "
                     f"{sm['size_ratio_ivf_halfvec_over_ivf']:.3f} (target <= {HALFVEC_SIZE_TARGET})")
    if sm["size_ratio_pgvector_halfvec_over_pgvector"] is not None:
        parts.append(f"pgvector IVFFlat halfvec {b['pgvector-ivfflat-halfvec'] / 1e6:.2f} MB / vector "
                     f"{b['pgvector-ivfflat'] / 1e6:.2f} MB = {sm['size_ratio_pgvector_halfvec_over_pgvector']:.3f}")
    if b.get("ivf-halfvec") and b.get("pgvector-ivfflat-halfvec"):
        parts.append(f"ivf-halfvec / pgvector IVFFlat halfvec = "
                     f"{b['ivf-halfvec'] / b['pgvector-ivfflat-halfvec']:.3f}")
    if parts:
        log("index size (pg_relation_size): " + "; ".join(parts))


def ivf_pgvector_rows(table):
    """Per sweep point: both engines' recall and QPS and the issue's ratio
    ivf-pgvector QPS / ivf QPS; meets_target when it reaches
    IVF_PGVECTOR_TARGET with the same recall (the same lists and nprobe
    answer the same rows, so the recalls should be equal)."""
    out = []
    for r in table:
        iv, ip = r.get("ivf"), r.get("ivf-pgvector")
        if not iv or not ip:
            continue
        ratio = ip["qps"] / iv["qps"]
        same = abs(ip["recall"] - iv["recall"]) < 1e-9
        out.append({"point": r["point"], "nprobe": r["nprobe"], "variant": r["variant"],
                    "ivf_recall": iv["recall"], "ivf_pgvector_recall": ip["recall"], "same_recall": same,
                    "ivf_qps": iv["qps"], "ivf_pgvector_qps": ip["qps"],
                    "ivf_qps_rounds": iv.get("qps_rounds"), "ivf_pgvector_qps_rounds": ip.get("qps_rounds"),
                    "ivf_p50_ms": iv["p50_ms"], "ivf_p99_ms": iv["p99_ms"],
                    "ivf_pgvector_p50_ms": ip["p50_ms"], "ivf_pgvector_p99_ms": ip["p99_ms"],
                    "qps_ratio_ivf_pgvector_over_ivf": ratio,
                    "ivf_backend_cpu_us": iv.get("backend_cpu_us"),
                    "ivf_pgvector_backend_cpu_us": ip.get("backend_cpu_us"),
                    "meets_target": bool(same and ratio >= IVF_PGVECTOR_TARGET)})
    return out


def ivf_pgvector_summary(table, build, sizes, lists_cmp, ivf_pgv_version):
    rows = ivf_pgvector_rows(table)
    return {"extversion": ivf_pgv_version, "target_qps_ratio": IVF_PGVECTOR_TARGET, "points": rows,
            "points_meeting_target": sum(r["meets_target"] for r in rows), "points_total": len(rows),
            "build_s": {"ivf": build.get("ivf"), "ivf-pgvector": build.get("ivf-pgvector")},
            "build_ratio_ivf_pgvector_over_ivf": build["ivf-pgvector"] / build["ivf"] if build.get("ivf") else None,
            "index_bytes": {"ivf": sizes.get("ivf"), "ivf-pgvector": sizes.get("ivf-pgvector")},
            "index_size_ratio_ivf_pgvector_over_ivf": sizes["ivf-pgvector"] / sizes["ivf"] if sizes.get("ivf")
            else None,
            "lists": {k: lists_cmp.get(k) for k in ("verdict", "index_info_equal", "export_identical")}
            if lists_cmp else None}


def cpu_pair(a, b):
    if a is None or b is None:
        return "-"
    return f"{a:.1f}/{b:.1f} ({b / a:.3f})"


def print_ivf_pgvector(table, build, sizes, lists_cmp, ivf_pgv_version, pgv_version):
    """ivf-pgvector against standalone ivf, point by point: the issue's
    ratio ivf-pgvector QPS / ivf QPS (target >= IVF_PGVECTOR_TARGET at the
    same nprobe and recall), then builds, sizes and the list comparison."""
    rows = ivf_pgvector_rows(table)
    plain = all(not r["variant"] for r in rows)
    log("")
    log(f"=== ivf-pgvector (ivf_pgvector {ivf_pgv_version or '?'} on pgvector {pgv_version or '?'}'s vector, "
        f"CREATE INDEX ... USING ivf, database {IVF_PGVECTOR_DB}): same table, lists, k-means, sweep, query and "
        f"client as ivf; ratio = ivf-pgvector QPS / ivf QPS, target >= {IVF_PGVECTOR_TARGET:.2f} at the same "
        f"recall ===")
    lines = []
    for r in rows:
        lines.append([str(r["nprobe"]) if plain else r["point"], f"{r['ivf_recall']:.4f}",
                      f"{r['ivf_pgvector_recall']:.4f}", fmt_qps(r["ivf_qps"]), fmt_qps(r["ivf_pgvector_qps"]),
                      f"{r['qps_ratio_ivf_pgvector_over_ivf']:.3f}",
                      "yes" if r["meets_target"] else ("no (recall differs)" if not r["same_recall"] else "no"),
                      f"{r['ivf_p50_ms']:.3f}/{r['ivf_p99_ms']:.3f}",
                      f"{r['ivf_pgvector_p50_ms']:.3f}/{r['ivf_pgvector_p99_ms']:.3f}",
                      cpu_pair(r["ivf_backend_cpu_us"], r["ivf_pgvector_backend_cpu_us"])])
    print_rows(["nprobe" if plain else "point", "ivf recall", "ivf-pgv recall", "ivf QPS", "ivf-pgv QPS",
                "ivf-pgv/ivf", f">= {IVF_PGVECTOR_TARGET:.2f}", "ivf p50/p99 ms", "ivf-pgv p50/p99 ms",
                "backend CPU us/query ivf/ivf-pgv (ratio)"], lines)
    log("(backend CPU: the server process's CPU time per query, /proc/PID/schedstat, median of the rounds; "
        "unlike QPS it does not count waits, so it is the comparison to read on a busy machine)")
    met = sum(r["meets_target"] for r in rows)
    log(f"target met at {met} of {len(rows)} points")
    ib, pb = build.get("ivf"), build.get("ivf-pgvector")
    isz, psz = sizes.get("ivf"), sizes.get("ivf-pgvector")
    if ib and pb:
        log(f"build: ivf CREATE INDEX {ib:.2f} s, ivf-pgvector {pb:.2f} s, ivf-pgvector/ivf {pb / ib:.2f}; "
            f"index size {isz / 1e6:.1f} MB vs {psz / 1e6:.1f} MB, ivf-pgvector/ivf {psz / isz:.3f}")
    if lists_cmp:
        log(f"lists: {lists_cmp['verdict']}")


def args_modes(batch):
    return {b.get("search_mode") for b in batch if b["engine"] == "ivf"}


def run_bench(conn, args, ds, res, stem):
    info, kmeans_iter, build_s, ivf_bytes = load_and_build(conn, ds, args, res)
    lists = int(info["lists"])
    index = None
    build = {"ivf": build_s}
    sizes = {"ivf": ivf_bytes}
    if not args.skip_faiss:
        niter = args.faiss_niter
        index, build["faiss"] = build_faiss(ds, lists, niter, info["trained_on"], res)

    points = build_points(args, conn, lists)
    if not points:
        sys.exit(f"nothing to sweep: every --nprobe is > lists {lists}")
    check_index_plan(conn, ds, args, "ivf", points[0].ivf_sql)
    session_settings(conn, res, "ivf")
    # ivf-pgvector: ivf's index on pgvector's vector, built and swept as ivf
    ipv = None
    lists_cmp = None
    if args.ivf_pgvector:
        ipv, ipv_info, build["ivf-pgvector"], sizes["ivf-pgvector"] = setup_ivf_pgvector(ds, args, res, points)
        lists_cmp = compare_ivf_lists(conn, ipv, info, ipv_info, res)
    # ivf-halfvec: ivf's index on a halfvec column, built and swept as ivf
    ihv = None
    if args.ivf_halfvec:
        ihv, build["ivf-halfvec"], sizes["ivf-halfvec"] = setup_ivf_halfvec(ds, args, res, points)
    # pgvector engines: same rows, table, storage and lists in their own databases
    peers = {}
    for eng in args.pgvector:
        pconn, ppoints, build[eng], sizes[eng], _ = setup_pgvector(eng, ds, args, res, lists)
        peers[eng] = (pconn, ppoints)
    if peers or ipv is not None or ihv is not None:
        # all engines' relations are measured in turn: they must fit together
        pw = [r for r in res.records if r["type"] == "prewarm"]
        total = sum(sum(r["blocks"].values()) for r in pw)
        sb = pw[0]["shared_buffers_blocks"]
        fits = total <= sb
        res.add({"type": "prewarm_all", "blocks": total, "shared_buffers_blocks": sb, "all_fit": fits})
        log(f"all engines' tables and indexes: {total} blocks of {sb} in shared_buffers"
            + ("" if fits else " -- WARNING: they do not fit together; queries will read from the OS cache"))

    # every round measures every point once (ivf and ivf-pgvector, then
    # Faiss, then pgvector IVFFlat at the same nprobe; then HNSW), so slow
    # drifts of the machine spread over all points and engines instead of
    # biasing some; ivf and ivf-pgvector swap places every other round
    meas = {pt.label: {"ivf": [], "faiss": [], "ivf-pgvector": [], "ivf-halfvec": []} for pt in points}
    pmeas = {eng: {pp.label: [] for pp in pts} for eng, (_, pts) in peers.items()}
    floors = {eng: [] for eng in ["ivf"] + (["ivf-pgvector"] if ipv is not None else [])
              + (["ivf-halfvec"] if ihv is not None else []) + list(peers)}

    def measure_peer(eng, pp):
        pconn = peers[eng][0]
        r = measure_sql(pconn, ds, pp.sql, args, eng, pp.label, fatal=True)
        pmeas[eng][pp.label].append(r)
        return r

    for rnd in range(args.rounds):
        log("")
        fl = measure_null(conn, ds, args)
        floors["ivf"].append(fl)
        msg = f"round {rnd + 1}/{args.rounds}; client floor {fl['sql']}: ivf db p50 {fl['p50_ms']:.3f} ms, " \
              f"{fmt_qps(fl['qps'])} QPS"
        if ipv is not None:
            pf = measure_null(ipv, ds, args)
            floors["ivf-pgvector"].append(pf)
            msg += f"; ivf-pgvector db p50 {pf['p50_ms']:.3f} ms, {fmt_qps(pf['qps'])} QPS"
        if ihv is not None:
            hf = measure_null(ihv, ds, args)
            floors["ivf-halfvec"].append(hf)
            msg += f"; ivf-halfvec db p50 {hf['p50_ms']:.3f} ms, {fmt_qps(hf['qps'])} QPS"
        for eng, (pconn, _) in peers.items():
            pf = measure_null(pconn, ds, args)
            floors[eng].append(pf)
            msg += f"; {eng} db p50 {pf['p50_ms']:.3f} ms, {fmt_qps(pf['qps'])} QPS"
        log(msg)
        done = {eng: set() for eng in peers}
        for pt in points:
            if ipv is not None and rnd % 2:
                ip = measure_sql(ipv, ds, pt.ivf_sql, args, "ivf-pgvector", pt.label, fatal=True)
            if ihv is not None and rnd % 2:
                ih = measure_sql(ihv, ds, pt.ivf_sql, args, "ivf-halfvec", pt.label, fatal=True)
            iv = measure_ivf(conn, ds, pt, args)
            if ipv is not None and not rnd % 2:
                ip = measure_sql(ipv, ds, pt.ivf_sql, args, "ivf-pgvector", pt.label, fatal=True)
            if ihv is not None and not rnd % 2:
                ih = measure_sql(ihv, ds, pt.ivf_sql, args, "ivf-halfvec", pt.label, fatal=True)
            meas[pt.label]["ivf"].append(iv)
            msg = (f"{pt.label:>12}: ivf recall {iv['recall']:.4f} {fmt_qps(iv['qps']):>8} QPS "
                   f"p50 {iv['p50_ms']:.3f} ms p99 {iv['p99_ms']:.3f} ms")
            if ipv is not None:
                meas[pt.label]["ivf-pgvector"].append(ip)
                msg += (f" | ivf-pgvector recall {ip['recall']:.4f} {fmt_qps(ip['qps']):>8} QPS "
                        f"p50 {ip['p50_ms']:.3f} ms | ivf-pgvector/ivf {ip['qps'] / iv['qps']:.2f}")
            if ihv is not None:
                meas[pt.label]["ivf-halfvec"].append(ih)
                msg += (f" | ivf-halfvec recall {ih['recall']:.4f} {fmt_qps(ih['qps']):>8} QPS "
                        f"p50 {ih['p50_ms']:.3f} ms | ivf-halfvec/ivf {ih['qps'] / iv['qps']:.2f}")
            if index is not None and pt.faiss is not None:
                fa = measure_faiss(index, ds, pt, args)
                meas[pt.label]["faiss"].append(fa)
                msg += (f" | faiss recall {fa['recall']:.4f} {fmt_qps(fa['qps']):>8} QPS "
                        f"p50 {fa['p50_ms']:.3f} ms | ivf/faiss {iv['qps'] / fa['qps']:.2f}")
            for eng in ("pgvector-ivfflat", "pgvector-ivfflat-halfvec"):
                pp = next((x for x in peers[eng][1] if x.label == pt.label), None) if eng in peers else None
                if pp is not None and not pt.variant and pp.label not in done[eng]:
                    pv = measure_peer(eng, pp)
                    done[eng].add(pp.label)
                    msg += (f" | {eng} recall {pv['recall']:.4f} {fmt_qps(pv['qps']):>8} QPS "
                            f"p50 {pv['p50_ms']:.3f} ms | ivf/{eng} {iv['qps'] / pv['qps']:.2f}")
            log(msg)
        for eng, (_, pts) in peers.items():
            for pp in pts:
                if pp.label in done[eng]:
                    continue
                pv = measure_peer(eng, pp)
                log(f"{pp.label:>12}: {eng} recall {pv['recall']:.4f} {fmt_qps(pv['qps']):>8} QPS "
                    f"p50 {pv['p50_ms']:.3f} ms p99 {pv['p99_ms']:.3f} ms")
    floor = res.add({"type": "client_floor", "engine": "ivf", **combine_rounds(floors["ivf"])})
    peer_floors = {eng: res.add({"type": "client_floor", "engine": eng, **combine_rounds(floors[eng])})
                   for eng in floors if eng != "ivf"}
    table = []
    for pt in points:
        row = {"point": pt.label, "nprobe": pt.nprobe, "variant": pt.variant}
        common = {"point": pt.label, "variant": pt.variant, "nprobe": pt.nprobe, "k": args.k,
                  "queries": ds.nq, **pt.extra}
        iv = combine_rounds(meas[pt.label]["ivf"])
        res.add({"type": "search", "engine": "ivf", **common, "settings": pt.ivf_sql, **iv})
        row["ivf"] = iv
        if meas[pt.label]["faiss"]:
            fa = combine_rounds(meas[pt.label]["faiss"])
            res.add({"type": "search", "engine": "faiss", **common,
                     "settings": [f"{a}={v}" for a, v in pt.faiss.items()], **fa})
            row["faiss"] = fa
        if meas[pt.label]["ivf-pgvector"]:
            ip = combine_rounds(meas[pt.label]["ivf-pgvector"])
            res.add({"type": "search", "engine": "ivf-pgvector", **common, "settings": pt.ivf_sql, **ip})
            row["ivf-pgvector"] = ip
        if meas[pt.label]["ivf-halfvec"]:
            ih = combine_rounds(meas[pt.label]["ivf-halfvec"])
            res.add({"type": "search", "engine": "ivf-halfvec", **common, "settings": pt.ivf_sql, **ih})
            row["ivf-halfvec"] = ih
        table.append(row)
    peer_rows = {}
    for eng, (_, pts) in peers.items():
        peer_rows[eng] = []
        for pp in pts:
            pv = combine_rounds(pmeas[eng][pp.label])
            res.add({"type": "search", "engine": eng, "point": pp.label, "variant": "",
                     "nprobe": pp.knob.get("nprobe"), **pp.knob, "k": args.k, "queries": ds.nq,
                     "settings": pp.sql, **pv})
            peer_rows[eng].append({"point": pp.label, **pp.knob, "m": pv})

    # batch search at one operating point
    bn = args.batch_nprobe
    if bn is None:
        plain = [r for r in table if not r["variant"]]
        key = "faiss" if any("faiss" in r for r in plain) else "ivf"
        cand = [r for r in plain if key in r and r[key]["recall"] >= 0.95]
        bn = cand[0]["nprobe"] if cand else max((r["nprobe"] for r in plain), default=1)
    log("")
    log(f"batch search at nprobe {bn}, nq in {args.batch_nq}:")
    batch = []
    if index is not None:
        for r in measure_faiss_batch(index, ds, bn, args):
            batch.append(res.add({"type": "batch", "engine": "faiss", "nprobe": bn, "k": args.k, **r}))
            log(f"  faiss search(nq={r['nq']}): {fmt_qps(r['qps'])} QPS ({r['ms_per_call']:.3f} ms per call), "
                f"recall {r['recall']:.4f}")
    sig = ivf_search_signature(conn)
    if not sig:
        why = "SQL function ivf_search does not exist in this build of ivf"
        log(f"  ivf batch search: skipped ({why})")
        batch.append(res.add({"type": "batch", "engine": "ivf", "nprobe": bn, "skipped": why}))
    else:
        log(f"  ivf batch search: {', '.join(sig)}")
        for r in measure_ivf_batch(conn, ds, bn, args):
            batch.append(res.add({"type": "batch", "engine": "ivf", "nprobe": bn, "k": args.k, **r}))
            if "qps" in r:
                rc = f"{r['recall']:.4f}" if r["recall"] is not None else "n/a"
                log(f"  ivf ivf_search {r['variant']}{' ' + r['search_mode'] if r['search_mode'] else ''} "
                    f"nq={r['nq']}: {fmt_qps(r['qps'])} QPS ({r['ms_per_call']:.3f} ms per call), recall {rc}")

    print_table(ds, lists, table, build, floor, batch, args.k)
    matched = matched_recall(table, peer_rows, args.matched_recall)
    env = next((r for r in res.records if r["type"] == "env"), {})
    print_peers(ds, lists, table, peer_rows, peer_floors, matched, build, sizes, args,
                env.get("pgvector_extversion"), lists_cmp, env.get("ivf_pgvector_extversion"))
    summary = {"type": "summary", "lists": lists, "peers": args.peers, "build_s": build,
               "index_bytes": sizes, "loadavg_end": os.getloadavg(),
               "cpu_busy_after": cpu_busy(),
               "build_ratio_ivf_over_faiss": build["ivf"] / build["faiss"] if "faiss" in build else None,
               "build_ratio_ivf_over": {e: build["ivf"] / t for e, t in build.items() if e != "ivf" and t > 0},
               "index_size_ratio_ivf_over": {e: sizes["ivf"] / b for e, b in sizes.items() if e != "ivf" and b},
               "matched_recall": matched,
               "ivf_pgvector": ivf_pgvector_summary(table, build, sizes, lists_cmp,
                                                    env.get("ivf_pgvector_extversion")) if ipv is not None else None,
               "halfvec": halfvec_summary(table, peer_rows, sizes)
               if ihv is not None or "pgvector-ivfflat-halfvec" in peer_rows else None,
               "peer_points": {eng: [{"point": r["point"], "recall": r["m"]["recall"], "qps": r["m"]["qps"],
                                      "p50_ms": r["m"]["p50_ms"], "p99_ms": r["m"]["p99_ms"]} for r in rows]
                               for eng, rows in peer_rows.items()},
               "points": [{"point": r["point"],
                           "ivf_recall": r["ivf"]["recall"], "ivf_qps": r["ivf"]["qps"],
                           "ivf_p50_ms": r["ivf"]["p50_ms"], "ivf_p99_ms": r["ivf"]["p99_ms"],
                           **({"faiss_recall": r["faiss"]["recall"], "faiss_qps": r["faiss"]["qps"],
                               "qps_ratio_ivf_over_faiss": r["ivf"]["qps"] / r["faiss"]["qps"]}
                              if "faiss" in r else {})} for r in table]}
    res.add(summary)
    files = plots(ds, res, stem, f"lists {lists}, k {args.k}", png=args.png)
    for f in files:
        # stable names for embedding (copy the one you want into the docs)
        latest = re.sub(r"-\d{8}T\d{6}Z-", "-latest-", os.path.basename(f))
        shutil.copyfile(f, os.path.join(os.path.dirname(f), latest))
    res.add({"type": "files", "jsonl": res.path, "svg": files})
    log("")
    log(f"results: {res.path}")
    for f in files:
        log(f"plot:    {f}")


# -------------------------------------------------------------------- profile


def explain_json(conn, q, k):
    with conn.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + knn_sql(k), (q,))
        return cur.fetchone()[0][0]


def find_node(plan, node_type):
    if plan.get("Node Type") == node_type:
        return plan
    for child in plan.get("Plans", []):
        r = find_node(child, node_type)
        if r:
            return r
    return None


@dataclass
class _ProfilePoint:
    """What setup_ivf_pgvector() checks the plan with (a sweep point's SQL)."""
    ivf_sql: list


def run_profile(conn, args, ds, res, stem):
    """Profile mode: ivf's breakdown and perf profile; with --peers
    ivf-pgvector the same for ivf_pgvector's index on pgvector's vector (same
    cluster, same rows, same build), then the two side by side."""
    info, _, _, _ = load_and_build(conn, ds, args, res)
    lists = int(info["lists"])
    nprobes = [p for p in args.nprobe if p <= lists]
    engines = [("ivf", conn)]
    if args.ivf_pgvector:
        session_settings(conn, res, "ivf")
        ipv, ipv_info, _, _ = setup_ivf_pgvector(ds, args, res, [_ProfilePoint([f"SET ivf.nprobe = {nprobes[0]}"])])
        compare_ivf_lists(conn, ipv, info, ipv_info, res)  # logs its verdict
        engines.append(("ivf-pgvector", ipv))
    out = {}
    for engine, c in engines:
        out[engine] = profile_engine(c, args, ds, res, stem, engine, lists, nprobes)
    if len(out) > 1:
        print_profile_comparison(out, nprobes, res)
        interleaved_ab(engines, ds, args, nprobes, res)


def profile_engine(conn, args, ds, res, stem, engine, lists, nprobes):
    k = args.k
    m = min(ds.nq, 300)
    log("")
    log(f"=== {engine}: time breakdown of one query ({m} queries, k = {k}; means in ms; client wall over >= 1 s "
        f"of repeated passes, server figures from {m} EXPLAIN ANALYZE runs) ===")
    floor1 = {}
    for name, sql, params in (("SELECT 1", "SELECT 1", None), ("SELECT vector_dims($1)", "SELECT vector_dims(%b)", "q")):
        cur = conn.cursor(binary=True)

        def q(i):
            cur.execute(sql, (ds.queries[i],) if params else None, prepare=True)
            cur.fetchall()
        timed_passes(q, m, 0.2)  # warm-up
        lat, _, _ = timed_passes(q, m, 1.0)
        floor1[name] = lat_stats(lat)
        cur.close()
        log(f"client round trip, prepared {name:<22}: {floor1[name]['mean_ms']:.4f}")
    res.add({"type": "profile_floor", "engine": engine, **floor1})

    rows = []
    for nprobe in nprobes:
        conn.execute(f"SET ivf.nprobe = {nprobe}")
        cur = conn.cursor(binary=True)
        sql = knn_sql(k)

        def q(i):
            cur.execute(sql, (ds.queries[i],), prepare=True)
            cur.fetchall()
        timed_passes(q, m, 0.2)  # warm-up
        lat, _, _ = timed_passes(q, m, 1.0)
        cur.close()
        acc = {"planning": [], "execution": [], "scan_startup": [], "scan_total": [], "hit": [], "read": []}
        for i in range(m):
            pj = explain_json(conn, ds.queries[i], k)
            node = find_node(pj["Plan"], "Index Scan")
            acc["planning"].append(pj["Planning Time"])
            acc["execution"].append(pj["Execution Time"])
            if node:
                acc["scan_startup"].append(node["Actual Startup Time"])
                acc["scan_total"].append(node["Actual Total Time"])
                acc["hit"].append(node.get("Shared Hit Blocks", 0))
                acc["read"].append(node.get("Shared Read Blocks", 0))
        mean = {a: float(np.mean(v)) if v else None for a, v in acc.items()}
        wall = float(np.mean(lat)) / 1e6
        row = {"nprobe": nprobe, "client_wall_ms": wall, **{f"{a}_mean": v for a, v in mean.items()}}
        rows.append(row)
        res.add({"type": "profile_breakdown", "engine": engine, **row})
    hdr = ("nprobe", "client wall", "server exec", "index scan", "  startup", "  fetch 10", "executor rest",
           "client+proto", "planning*", "buffers hit/read")
    log(" | ".join(hdr))
    for r in rows:
        st, tot = r["scan_startup_mean"] or 0, r["scan_total_mean"] or 0
        log(" | ".join([
            f"{r['nprobe']:>6}", f"{r['client_wall_ms']:11.4f}", f"{r['execution_mean']:11.4f}",
            f"{tot:10.4f}", f"{st:9.4f}", f"{tot - st:10.4f}", f"{r['execution_mean'] - tot:13.4f}",
            f"{r['client_wall_ms'] - r['execution_mean']:12.4f}", f"{r['planning_mean']:9.4f}",
            f"{r['hit_mean']:.0f}/{r['read_mean']:.0f}"]))
    log("(server exec, index scan: EXPLAIN ANALYZE means; startup = everything before the first row: "
        "centroid distances, list scans, top-k selection; fetch 10 = returning the rows (heap fetches); "
        "client+proto = client wall - server exec (driver, protocol, parameter input, parse/bind of "
        "the prepared statement); *planning: EXPLAIN plans every time, a prepared statement with a "
        "generic plan does not)")
    if len(rows) >= 2:
        x = np.array([r["nprobe"] for r in rows], dtype=float)
        y = np.array([r["scan_startup_mean"] or 0 for r in rows])
        slope, icpt = np.polyfit(x, y, 1)
        n_per_list = ds.n / lists
        log(f"linear fit of index-scan startup over nprobe: {icpt:.4f} ms fixed (centroid search over "
            f"{lists} lists, setup) + {slope:.4f} ms per probed list (~{n_per_list:.0f} vectors x {ds.d} dims "
            f"= {n_per_list * ds.d * 4 / 1e6:.2f} MB, {n_per_list * ds.d * 4 / 1e6 / slope if slope > 0 else 0:.1f} GB/s)")
        res.add({"type": "profile_fit", "engine": engine, "fixed_ms": icpt, "per_list_ms": slope,
                 "vectors_per_list": n_per_list})
    return {"rows": rows, "floor": floor1, "perf": profile_perf(conn, args, ds, res, stem, engine, nprobes[-1])}


def perf_symbols(lines):
    """perf report --sort dso,symbol lines -> {(dso, symbol): percent}."""
    out = {}
    for line in lines:
        mm = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[.\]\s+(\S+)", line)
        if mm:
            out[(mm.group(2), mm.group(3))] = float(mm.group(1))
    return out


def profile_perf(conn, args, ds, res, stem, engine, nprobe):
    """perf record of the backend while it runs prepared queries at nprobe;
    the backend's CPU time per query comes from /proc/PID/schedstat, so it
    does not depend on what else the machine runs (wall time does)."""
    k = args.k
    perf = shutil.which("perf")
    if not perf:
        log("perf not found (apt-get install linux-perf): skipping the symbol profile")
        return None
    conn.execute(f"SET ivf.nprobe = {nprobe}")
    pid = one(conn, "SELECT pg_backend_pid()")
    data = f"{stem}-perf.data" if engine == "ivf" else f"{stem}-{engine}-perf.data"
    cur = conn.cursor(binary=True)
    sql = knn_sql(k)
    for i in range(min(ds.nq, 200)):
        cur.execute(sql, (ds.queries[i],), prepare=True)
        cur.fetchall()
    pr = subprocess.Popen([perf, "record", "-F", str(args.perf_freq), "-p", str(pid), "-o", data],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    cpu0 = proc_cpu_ns(pid)
    t0 = now()
    nexec = 0
    while (nexec < args.profile_queries) if args.profile_queries else (now() - t0 < args.profile_seconds):
        cur.execute(sql, (ds.queries[nexec % ds.nq],), prepare=True)
        cur.fetchall()
        nexec += 1
    wall = now() - t0
    cpu1 = proc_cpu_ns(pid)
    pr.send_signal(signal.SIGINT)
    _, perr = pr.communicate(timeout=120)
    cur.close()
    cpu_s = (cpu1 - cpu0) / 1e9 if cpu0 is not None and cpu1 is not None else None
    busy = cpu_s / wall if cpu_s is not None else None
    cpu_us = cpu_s / nexec * 1e6 if cpu_s is not None and nexec else None
    log("")
    log(f"=== {engine} perf: backend {pid}, {nexec} prepared queries at nprobe {nprobe} in {wall:.2f} s "
        f"({nexec / wall:,.0f} QPS); backend on CPU {busy * 100 if busy else float('nan'):.0f}% "
        f"of the wall time (the rest: waiting for the client), "
        f"{cpu_us if cpu_us else float('nan'):.1f} us of backend CPU per query ===")
    if pr.returncode not in (0, -signal.SIGINT, 130) and not os.path.exists(data):
        log(f"perf record failed: {perr.strip()}")
        return None
    report = {}
    for sort, limit in (("dso", 0.5), ("dso,symbol", 0.3)):
        out = subprocess.run([perf, "report", "-i", data, "--stdio", "--no-children", "--sort", sort,
                              "--percent-limit", str(limit)], capture_output=True, text=True).stdout
        lines = [line for line in out.splitlines() if line.strip() and not line.startswith("#")]
        report[sort] = lines
        log(f"-- top by {sort} (>= {limit}%) --")
        for line in lines[:30]:
            log("  " + line.rstrip())
    txt = f"{data[: -len('.data')]}.txt"
    with open(txt, "w") as f:
        for sort, lines in report.items():
            f.write(f"# perf report --sort {sort}\n" + "\n".join(lines) + "\n")
    rec = res.add({"type": "profile_perf", "engine": engine, "nprobe": nprobe, "queries": nexec, "wall_s": wall,
                   "backend_cpu_fraction": busy, "backend_cpu_us_per_query": cpu_us, "perf_data": data,
                   "report": report})
    log(f"perf data: {data} (perf report -i {data}); summary: {txt}")
    return rec


def interleaved_ab(engines, ds, args, nprobes, res, rounds=10):
    """The engines in turn, a pass of prepared queries each, rounds times per
    nprobe (the order alternating): client wall and the backend's CPU time
    per query (/proc/PID/schedstat) and this client's (time.process_time: the
    driver, parameter dumping, result loading), the medians over rounds and
    the median of the per-round ratios.  Slow drifts of the machine's load hit both
    engines alike, so on a busy machine this is the comparison to read."""
    k = args.k
    m = min(ds.nq, 300)
    sql = knn_sql(k)
    pids = {eng: one(c, "SELECT pg_backend_pid()") for eng, c in engines}
    (ea, _), (eb, _) = engines[0], engines[1]
    log("")
    log(f"=== interleaved A/B: {rounds} rounds of {m} prepared queries per engine and nprobe, alternating order; "
        f"medians (us per query); ratio = median of per-round {eb} / {ea} ===")
    log(f"nprobe | {ea + ' wall':>17} | {eb + ' wall':>17} | ratio | {ea + ' backend':>17} | "
        f"{eb + ' backend':>17} | ratio | {ea + ' client':>17} | {eb + ' client':>17} | ratio")
    for nprobe in nprobes:
        curs = {}
        for eng, c in engines:
            c.execute(f"SET ivf.nprobe = {nprobe}")
            curs[eng] = c.cursor(binary=True)
            for i in range(m):  # warm-up
                curs[eng].execute(sql, (ds.queries[i],), prepare=True)
                curs[eng].fetchall()
        wall = {eng: [] for eng, _ in engines}
        cpu = {eng: [] for eng, _ in engines}
        ccpu = {eng: [] for eng, _ in engines}
        for r in range(rounds):
            order = [eng for eng, _ in engines]
            if r % 2:
                order.reverse()
            for eng in order:
                cur = curs[eng]
                c0 = proc_cpu_ns(pids[eng])
                p0 = time.process_time()
                t0 = now()
                for i in range(m):
                    cur.execute(sql, (ds.queries[i],), prepare=True)
                    cur.fetchall()
                wall[eng].append((now() - t0) / m * 1e6)
                ccpu[eng].append((time.process_time() - p0) / m * 1e6)
                c1 = proc_cpu_ns(pids[eng])
                cpu[eng].append((c1 - c0) / m / 1e3 if c0 is not None and c1 is not None else float("nan"))
        for cur in curs.values():
            cur.close()
        wr = float(np.median([y / x for x, y in zip(wall[ea], wall[eb])]))
        cr = float(np.median([y / x for x, y in zip(cpu[ea], cpu[eb])]))
        kr = float(np.median([y / x for x, y in zip(ccpu[ea], ccpu[eb])]))
        log(f"{nprobe:>6} | {np.median(wall[ea]):17.1f} | {np.median(wall[eb]):17.1f} | {wr:5.3f} | "
            f"{np.median(cpu[ea]):17.1f} | {np.median(cpu[eb]):17.1f} | {cr:5.3f} | "
            f"{np.median(ccpu[ea]):17.1f} | {np.median(ccpu[eb]):17.1f} | {kr:5.3f}")
        res.add({"type": "profile_ab", "nprobe": nprobe, "rounds": rounds, "queries_per_round": m,
                 "wall_us": wall, "backend_cpu_us": cpu, "client_cpu_us": ccpu, "wall_ratio_median": wr,
                 "backend_cpu_ratio_median": cr, "client_cpu_ratio_median": kr})


def print_profile_comparison(out, nprobes, res):
    """ivf and ivf-pgvector side by side: the breakdown per nprobe (ms), then
    backend CPU per query and the symbols whose share of it differs."""
    a, b = out["ivf"], out["ivf-pgvector"]
    log("")
    log("=== ivf vs ivf-pgvector (ms per query; ratio = ivf-pgvector / ivf) ===")
    fa, fb = a["floor"]["SELECT vector_dims($1)"]["mean_ms"], b["floor"]["SELECT vector_dims($1)"]["mean_ms"]
    log(f"client round trip SELECT vector_dims($1): ivf {fa:.4f}, ivf-pgvector {fb:.4f}, ratio {fb / fa:.2f}")
    log("nprobe | part          |      ivf | ivf-pgv | ratio")
    for ra, rb in zip(a["rows"], b["rows"]):
        parts = {
            "client wall": (ra["client_wall_ms"], rb["client_wall_ms"]),
            "server exec": (ra["execution_mean"], rb["execution_mean"]),
            "scan startup": (ra["scan_startup_mean"] or 0, rb["scan_startup_mean"] or 0),
            "fetch 10": ((ra["scan_total_mean"] or 0) - (ra["scan_startup_mean"] or 0),
                         (rb["scan_total_mean"] or 0) - (rb["scan_startup_mean"] or 0)),
            "executor rest": (ra["execution_mean"] - (ra["scan_total_mean"] or 0),
                              rb["execution_mean"] - (rb["scan_total_mean"] or 0)),
            "client+proto": (ra["client_wall_ms"] - ra["execution_mean"],
                             rb["client_wall_ms"] - rb["execution_mean"]),
        }
        for name, (x, y) in parts.items():
            log(f"{ra['nprobe']:>6} | {name:<13} | {x:8.4f} | {y:7.4f} | {y / x if x > 0 else float('nan'):5.2f}")
    pa, pb = a["perf"], b["perf"]
    if not pa or not pb or not pa["backend_cpu_us_per_query"] or not pb["backend_cpu_us_per_query"]:
        return
    ca, cb = pa["backend_cpu_us_per_query"], pb["backend_cpu_us_per_query"]
    log(f"backend CPU per query at nprobe {pa['nprobe']} (/proc/PID/schedstat over the perf run): "
        f"ivf {ca:.1f} us, ivf-pgvector {cb:.1f} us, ratio {cb / ca:.3f}")
    sa = perf_symbols(pa["report"]["dso,symbol"])
    sb = perf_symbols(pb["report"]["dso,symbol"])
    diffs = []
    for key in set(sa) | set(sb):
        ua, ub = sa.get(key, 0.0) * ca / 100, sb.get(key, 0.0) * cb / 100
        diffs.append((ub - ua, key, ua, ub))
    diffs.sort(key=lambda d: -abs(d[0]))
    log("symbols by difference (us of backend CPU per query, from each profile's share; >= 0.3% listed by perf):")
    log(f"{'dso':<18} {'symbol':<40} {'ivf':>7} {'ivf-pgv':>8} {'diff':>7}")
    for d, (dso, sym), ua, ub in diffs[:15]:
        log(f"{dso[:18]:<18} {sym[:40]:<40} {ua:7.2f} {ub:8.2f} {d:+7.2f}")
    res.add({"type": "profile_compare", "nprobe": pa["nprobe"], "backend_cpu_us_per_query":
             {"ivf": ca, "ivf-pgvector": cb},
             "symbol_diffs_us": [{"dso": dso, "symbol": sym, "ivf": ua, "ivf-pgvector": ub}
                                 for _, (dso, sym), ua, ub in diffs[:30]]})


def replot(args):
    """Redraw the SVGs (and PNGs with --png) of an earlier run from its JSONL."""
    with open(args.replot, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    meta = next(r for r in records if r["type"] == "dataset")
    lists = next((r["lists"] for r in records if r["type"] == "summary"), meta["lists"])

    class _R:  # what plots() reads
        pass
    res = _R()
    res.records = records
    ds = _R()
    ds.name, ds.n, ds.d = meta["dataset"], meta["rows"], meta["dims"]
    stem = args.replot[: -len(".jsonl")] if args.replot.endswith(".jsonl") else args.replot
    for f in plots(ds, res, stem, f"lists {lists}, k {meta['k']}", png=args.png):
        log(f"plot: {f}")


def main(argv=None):
    args = parse_args(argv)
    if args.replot:
        return replot(args)
    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    suffix = "-profile" if args.mode == "profile" else ""
    stem = os.path.join(os.path.abspath(args.out), f"{args.dataset}{suffix}-{stamp}")
    res = Results(stem + ".jsonl")

    data_dir = args.data_dir if os.path.isdir(args.data_dir) else None
    t0 = now()
    ds = datasets.load(args.dataset, data_dir, args.cache_dir, k=args.k, rows=args.rows,
                       queries=args.queries, log=log)
    log(f"data set {ds.name}: {ds.n:,} x {ds.d}, {ds.nq:,} queries ({now() - t0:.1f} s); {ds.source}")
    log(f"ground truth: {ds.gt_source}")
    if args.k > ds.gt.shape[1]:
        sys.exit(f"k = {args.k} > ground truth depth {ds.gt.shape[1]}")

    if args.mode == "profile":
        args.pgvector = []  # the profile is ivf's (and ivf-pgvector's with --peers ivf-pgvector)
        args.ivf_halfvec = False
    if args.scenario:
        args.ivf_pgvector = False  # scenarios: ivf and pgvector's engines only
        args.ivf_halfvec = False
    create_database()
    conn = connect(BENCH_DB)
    conn.execute("CREATE EXTENSION ivf")
    conn.execute("CREATE EXTENSION pg_prewarm")
    pgv = None
    ivf_pgv = None
    if args.pgvector or args.ivf_pgvector:
        if not one(conn, "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"):
            sys.exit(f"--peers {','.join(args.pgvector + (['ivf-pgvector'] if args.ivf_pgvector else []))}: "
                     f"pgvector (extension vector) is not installed in this PostgreSQL (bench/run.sh installs it "
                     f"with test/lib/install-pgvector.sh)")
    if args.ivf_pgvector:
        if not one(conn, "SELECT count(*) FROM pg_available_extensions WHERE name = 'ivf_pgvector'"):
            sys.exit("--peers ivf-pgvector: the companion extension ivf_pgvector is not installed in this "
                     "PostgreSQL (make install installs it with ivf; IVF_BUILD=1 bench/run.sh does that)")
        create_database(IVF_PGVECTOR_DB)
        with connect(IVF_PGVECTOR_DB) as c:
            c.execute("CREATE EXTENSION ivf_pgvector CASCADE")
            c.execute("CREATE EXTENSION pg_prewarm")
            ivf_pgv = one(c, "SELECT extversion FROM pg_extension WHERE extname = 'ivf_pgvector'")
            pgv = pgvector_info(c)
    if args.ivf_halfvec:
        create_database(IVF_HALFVEC_DB)
        with connect(IVF_HALFVEC_DB) as c:
            c.execute("CREATE EXTENSION ivf")
            c.execute("CREATE EXTENSION pg_prewarm")
    if args.pgvector:
        for eng in args.pgvector:
            create_database(PGVECTOR_DB[eng])
            with connect(PGVECTOR_DB[eng]) as c:
                c.execute("CREATE EXTENSION vector")
                c.execute("CREATE EXTENSION pg_prewarm")
                pgv = pgvector_info(c)
    env = env_record(conn, args, pgv)
    env["ivf_pgvector_extversion"] = ivf_pgv
    res.add(env)
    if env["cpu_busy_before"] is not None and env["cpu_busy_before"] > 0.15:
        log(f"WARNING: the CPUs were {env['cpu_busy_before'] * 100:.0f}% busy before the run: something else "
            f"is running; timings will be noisy")
    log(f"env: {env['cpu_model']}, {env['cores']} cores, {env['memory_kb'] // 1024} MiB, kernel {env['kernel']}; "
        f"{env['pg_version'].split(',')[0]}; ivf {env['ivf_commit'][:12]}{' (dirty)' if env['ivf_dirty'] else ''} "
        f"simd {env['ivf_simd_level']}; faiss {env['faiss_version']} simd {env['faiss_simd_level']}, "
        f"{env['faiss_omp_threads']} thread; numpy {env['numpy_version']}"
        + (f"; pgvector {pgv['extversion']}" if pgv else "")
        + (f"; ivf_pgvector {ivf_pgv}" if ivf_pgv else ""))
    res.add({"type": "dataset", **ds.describe(), "lists": args.lists, "k": args.k})

    try:
        if args.mode == "profile":
            run_profile(conn, args, ds, res, stem)
        elif args.scenario:
            scenarios.run(sys.modules[__name__], conn, ds, args, res)
        else:
            run_bench(conn, args, ds, res, stem)
    finally:
        res.close()
        conn.close()
        for c in PEER_CONNS:
            c.close()
        if not args.keep_db:
            for db in [BENCH_DB] + [PGVECTOR_DB[e] for e in args.pgvector] + \
                    ([IVF_PGVECTOR_DB] if args.ivf_pgvector else []) + \
                    ([IVF_HALFVEC_DB] if args.ivf_halfvec else []):
                try:
                    drop_database(db)
                except psycopg.Error:
                    pass


if __name__ == "__main__":
    main()
