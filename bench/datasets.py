"""Data sets for bench/ivfbench.py: loaders, a seeded synthetic generator and
exact ground truth.

Every loader returns a Dataset: float32 base (n x d, row i has id i),
float32 queries (nq x d), int32 ground truth (nq x depth, ids of the exact L2
nearest neighbours in order, ties to the smaller id) and where it came from.

    siftsmall        TEXMEX ANN_SIFT10K: 10,000 x 128, 100 queries, official ground truth
    bigann10k        10,000 BIGANN (SIFT1B) vectors: 9,000 base, 1,000 held-out queries
    fashion-mnist    Debian package dataset-fashion-mnist: 60,000 train images as base,
                     10,000 test images as queries, 784 dims (pixel values 0..255)
    synth-1m-128     seeded Gaussian-cluster mixture, 1,000,000 x 128, 1,000 queries
    synth-100k-1536  the same generator, 100,000 x 1536, 1,000 queries

File formats: fvecs/ivecs (per record a little-endian int32 d, then d
float32/int32), IDX (big-endian header, ubyte pixels).

Ground truth that ships with a data set is used when it matches the base and
query files (checked on a sample of queries by brute force); otherwise, and
for Fashion-MNIST and the synthetic sets, it is computed here: Faiss
IndexFlatL2 (one thread, float32) proposes the nearest `depth + 100`
candidates, which are re-ranked with exact float64 distances (differences
squared and summed, no |x|^2 - 2xy + |y|^2 cancellation), ties broken by the
smaller id.  Computed ground truth is cached in <cache>/gt-<hash>.ivecs keyed
by a SHA-1 of the base and query bytes.
"""
import gzip
import hashlib
import os
import time
from dataclasses import dataclass, field

# Single-threaded Faiss / OpenBLAS unless the caller decided otherwise; must
# happen before numpy or faiss is imported anywhere.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

GT_DEPTH = 100


@dataclass
class Dataset:
    name: str
    base: np.ndarray  # float32, C-contiguous, n x d
    queries: np.ndarray  # float32, nq x d
    gt: np.ndarray  # int32, nq x depth
    source: str
    gt_source: str
    params: dict = field(default_factory=dict)

    @property
    def n(self):
        return self.base.shape[0]

    @property
    def d(self):
        return self.base.shape[1]

    @property
    def nq(self):
        return self.queries.shape[0]

    def describe(self):
        return {
            "dataset": self.name,
            "rows": int(self.n),
            "dims": int(self.d),
            "queries": int(self.nq),
            "source": self.source,
            "ground_truth": self.gt_source,
            **self.params,
        }


# --------------------------------------------------------------------- files


def read_vecs(path, dtype, limit=None):
    """fvecs (dtype float32) or ivecs (int32): returns an n x d array (a copy)."""
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        raise ValueError(f"{path}: empty")
    d = int(raw[0])
    if d <= 0 or raw.size % (d + 1) != 0:
        raise ValueError(f"{path}: not an fvecs/ivecs file (d = {d}, {raw.size} words)")
    rows = raw.reshape(-1, d + 1)
    if not np.all(rows[:, 0] == d):
        raise ValueError(f"{path}: records of different dimension")
    if limit is not None:
        rows = rows[:limit]
    return np.ascontiguousarray(rows[:, 1:]).view(dtype)


def read_fvecs(path, limit=None):
    return read_vecs(path, np.float32, limit)


def read_ivecs(path, limit=None):
    return read_vecs(path, np.int32, limit)


def write_ivecs(path, a):
    a = np.ascontiguousarray(a, dtype=np.int32)
    out = np.empty((a.shape[0], a.shape[1] + 1), dtype=np.int32)
    out[:, 0] = a.shape[1]
    out[:, 1:] = a
    tmp = f"{path}.tmp{os.getpid()}"
    out.tofile(tmp)
    os.replace(tmp, path)


def read_idx_images(path, limit=None):
    """IDX3 ubyte images (optionally .gz) -> float32 n x (rows*cols)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        hdr = np.frombuffer(f.read(16), dtype=">u4")
        if hdr[0] != 0x00000803:
            raise ValueError(f"{path}: not an IDX3 ubyte file")
        count, rows, cols = (int(x) for x in hdr[1:])
        n = count if limit is None else min(limit, count)
        data = np.frombuffer(f.read(n * rows * cols), dtype=np.uint8)
    if data.size != n * rows * cols:
        raise ValueError(f"{path}: truncated")
    return data.reshape(n, rows * cols).astype(np.float32)


def read_idx_labels(path, limit=None):
    """IDX1 ubyte labels (optionally .gz) -> int64 n."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        hdr = np.frombuffer(f.read(8), dtype=">u4")
        if hdr[0] != 0x00000801:
            raise ValueError(f"{path}: not an IDX1 ubyte file")
        n = int(hdr[1]) if limit is None else min(limit, int(hdr[1]))
        data = np.frombuffer(f.read(n), dtype=np.uint8)
    if data.size != n:
        raise ValueError(f"{path}: truncated")
    return data.astype(np.int64)


# --------------------------------------------------------------- ground truth


def _exact_rerank(base, queries, cand, depth):
    """Exact float64 L2 over candidate ids, sorted by (distance, id)."""
    out = np.empty((queries.shape[0], depth), dtype=np.int32)
    for i in range(queries.shape[0]):
        c = cand[i][cand[i] >= 0]
        diff = base[c].astype(np.float64) - queries[i].astype(np.float64)
        dist = np.einsum("ij,ij->i", diff, diff)
        order = np.lexsort((c, dist))[:depth]
        out[i, : len(order)] = c[order]
        out[i, len(order):] = -1
    return out


def exact_gt(base, queries, depth=GT_DEPTH, log=print):
    """Exact top-`depth` ids (L2, ties to the smaller id); see module doc."""
    import faiss

    faiss.omp_set_num_threads(1)
    depth = min(depth, base.shape[0])
    t0 = time.perf_counter()
    index = faiss.IndexFlatL2(base.shape[1])
    index.add(base)
    kc = min(base.shape[0], depth + 100)
    cand = np.empty((queries.shape[0], kc), dtype=np.int64)
    step = 256
    for s in range(0, queries.shape[0], step):
        _, cand[s : s + step] = index.search(queries[s : s + step], kc)
    gt = _exact_rerank(base, queries, cand, depth)
    log(f"exact ground truth: {queries.shape[0]} queries x {base.shape[0]} rows x "
        f"{base.shape[1]} dims, top {depth}, in {time.perf_counter() - t0:.1f} s "
        f"(faiss IndexFlatL2 1 thread + float64 re-rank)")
    return gt


def cached_gt(base, queries, cache_dir, log=print):
    h = hashlib.sha1()
    h.update(np.int64(base.shape).tobytes())
    h.update(memoryview(np.ascontiguousarray(base)).cast("B"))
    h.update(memoryview(np.ascontiguousarray(queries)).cast("B"))
    key = h.hexdigest()[:20]
    path = os.path.join(cache_dir, f"gt-{key}.ivecs") if cache_dir else None
    if path and os.path.exists(path):
        gt = read_ivecs(path)
        if gt.shape[0] == queries.shape[0]:
            log(f"ground truth from cache {path}")
            return gt, f"computed exactly (cached {os.path.basename(path)})"
    gt = exact_gt(base, queries, log=log)
    if path:
        os.makedirs(cache_dir, exist_ok=True)
        write_ivecs(path, gt)
    return gt, "computed exactly (faiss IndexFlatL2 candidates, float64 re-rank, ties to smaller id)"


def gt_matches(base, queries, gt, k, sample=100, seed=0):
    """Does the file's ground truth agree with brute force on a sample of
    queries?  Agreement means the same k-th distance and, position by position,
    the same distances (ids may differ only among exact ties)."""
    if gt.shape[0] < queries.shape[0] or gt.shape[1] < k:
        return False, f"shape {gt.shape} too small for {queries.shape[0]} queries, k = {k}"
    if gt[:, :k].max() >= base.shape[0] or gt[:, :k].min() < 0:
        return False, "ids out of range"
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(queries.shape[0], min(sample, queries.shape[0]), replace=False))
    mine = exact_gt(base, queries[idx], depth=k, log=lambda *_: None)
    for j, qi in enumerate(idx):
        q = queries[qi].astype(np.float64)
        df = ((base[gt[qi, :k]].astype(np.float64) - q) ** 2).sum(1)
        dm = ((base[mine[j]].astype(np.float64) - q) ** 2).sum(1)
        if not np.allclose(df, dm, rtol=1e-9, atol=0):
            return False, f"query {qi}: distances differ from brute force"
    return True, f"verified against brute force on {len(idx)} queries"


# ------------------------------------------------------------------ synthetic

SYNTH = {
    # name: (rows, dims, queries, default lists)
    "synth-1m-128": (1_000_000, 128, 1000, 1000),
    "synth-100k-1536": (100_000, 1536, 1000, 100),
}
SYNTH_PARAMS = dict(clusters=1000, latent=48, sigma=1.0, noise=0.3, seed=20261122)
SYNTH_CHUNK = 4096


def synth_clustered(rows, d, nq, clusters=1000, latent=48, sigma=1.0, noise=0.3, seed=20261122):
    """Seeded Gaussian-cluster mixture with a low intrinsic dimension.

    `clusters` centres ~ N(0, I) in a `latent`-dimensional space, mixture
    weights ~ Dirichlet(2), per-cluster spread sigma * U(0.5, 1.5); each point
    is centre + spread * N(0, I) in the latent space, mapped to `d` dimensions
    by a fixed random Gaussian matrix (scaled by 1/sqrt(latent)), plus
    isotropic noise * N(0, I) in `d` dimensions.  Queries are drawn from the
    same mixture with their own stream.  Rows are generated in chunks of
    4,096, each from its own seed, so the first N rows of a bigger set are
    the N-row set (--rows gives prefixes).  Tuned so that an IVF with ~1,000
    vectors per list has SIFT-like recall (Faiss IVFFlat, 100k x 128, 100
    lists: recall@10 0.42 at nprobe 1, 0.67 at 4, 0.91 at 16, 0.98 at 32).
    """
    root = np.random.SeedSequence(seed)
    model_ss, base_ss, query_ss = root.spawn(3)
    rng = np.random.default_rng(model_ss)
    centres = rng.standard_normal((clusters, latent)).astype(np.float32)
    proj = rng.standard_normal((latent, d)) / np.sqrt(latent)  # float64
    weights = rng.dirichlet(np.full(clusters, 2.0))
    spread = (rng.uniform(0.5, 1.5, clusters) * sigma).astype(np.float32)

    # spawn() on a SeedSequence is stateful: spawn every child once, up front
    nb_chunks = (rows + SYNTH_CHUNK - 1) // SYNTH_CHUNK
    nq_chunks = (nq + SYNTH_CHUNK - 1) // SYNTH_CHUNK
    base_children = base_ss.spawn(nb_chunks)
    query_children = query_ss.spawn(nq_chunks)

    def make(children, n):
        out = np.empty((n, d), dtype=np.float32)
        for c, child in enumerate(children):
            s = c * SYNTH_CHUNK
            e = min(n, s + SYNTH_CHUNK)
            r = np.random.default_rng(child)
            lab = r.choice(clusters, SYNTH_CHUNK, p=weights)
            z = centres[lab] + spread[lab, None] * r.standard_normal((SYNTH_CHUNK, latent), dtype=np.float32)
            # float64 product rounded to float32: the same bits whichever BLAS kernel runs
            x = z.astype(np.float64) @ proj
            x += noise * r.standard_normal((SYNTH_CHUNK, d), dtype=np.float32)
            out[s:e] = x[: e - s]
        return out

    return make(base_children, rows), make(query_children, nq)


# ------------------------------------------------------------------- registry

DEFAULT_LISTS = {
    "siftsmall": 100,
    "bigann10k": 100,
    "fashion-mnist": 250,
    **{k: v[3] for k, v in SYNTH.items()},
}
NAMES = list(DEFAULT_LISTS)
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


def load_labels(name, rows):
    """Class labels of the first `rows` base vectors (Fashion-MNIST only)."""
    if name != "fashion-mnist":
        raise ValueError(f"{name} has no labels")
    return read_idx_labels(os.path.join(FASHION_MNIST_DIR, "train-labels-idx1-ubyte.gz"), rows)


def load(name, data_dir, cache_dir, k=10, rows=None, queries=None, log=print):
    """Load data set `name`.  rows: keep only the first `rows` base vectors
    (ground truth is then recomputed); queries: only the first `queries`."""
    if name not in DEFAULT_LISTS:
        raise ValueError(f"unknown data set {name!r} (one of {', '.join(NAMES)})")
    gt = None
    gt_source = None
    params = {}
    if name in ("siftsmall", "bigann10k"):
        if not data_dir:
            raise FileNotFoundError("no data directory (../shared/data or IVF_DATA_DIR)")
        if name == "siftsmall":
            folder = os.path.join(data_dir, "siftsmall-128")
            bpath, qpath = "siftsmall_base.fvecs", "siftsmall_query.fvecs"
            gpath, gdesc = "siftsmall_groundtruth.ivecs", "official TEXMEX ground truth"
        else:
            folder = os.path.join(data_dir, "bigann-10k-128")
            bpath, qpath = "base.fvecs", "query.fvecs"
            gpath, gdesc = "groundtruth_l2_top100.ivecs", "shipped exact L2 ground truth"
        base = read_fvecs(os.path.join(folder, bpath))
        xq = read_fvecs(os.path.join(folder, qpath))
        source = f"{folder}/{bpath} + {qpath}"
        if rows is None or rows >= base.shape[0]:
            gt = read_ivecs(os.path.join(folder, gpath))
            gt_source = f"{folder}/{gpath} ({gdesc})"
    elif name == "fashion-mnist":
        tr = os.path.join(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz")
        te = os.path.join(FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz")
        if not os.path.exists(tr):
            raise FileNotFoundError(f"{tr} (apt-get install dataset-fashion-mnist)")
        base = read_idx_images(tr, rows)
        xq = read_idx_images(te, queries)
        source = f"{tr} (base) + {te} (queries), pixels as float32 0..255"
    else:
        n, d, nq, _ = SYNTH[name]
        n = rows if rows is not None else n
        nq = queries if queries is not None else nq
        t0 = time.perf_counter()
        base, xq = synth_clustered(n, d, nq, **SYNTH_PARAMS)
        params = {"synth": dict(SYNTH_PARAMS)}
        source = ("synthetic Gaussian-cluster mixture (bench/datasets.py synth_clustered, "
                  + ", ".join(f"{k}={v}" for k, v in SYNTH_PARAMS.items()) + ")")
        log(f"generated {n} x {d} + {nq} queries in {time.perf_counter() - t0:.1f} s")

    if rows is not None:
        base = np.ascontiguousarray(base[:rows])
    if queries is not None:
        xq = np.ascontiguousarray(xq[:queries])
        if gt is not None:
            gt = gt[:queries]
    if gt is not None:
        ok, why = gt_matches(base, xq, gt, k)
        if ok:
            gt_source += f"; {why}"
        else:
            log(f"WARNING: shipped ground truth rejected ({why}); computing it")
            gt = None
    if gt is None:
        gt, gt_source = cached_gt(base, xq, cache_dir, log=log)
    if rows is not None:
        params["rows_override"] = int(rows)
    return Dataset(name, np.ascontiguousarray(base), np.ascontiguousarray(xq),
                   np.ascontiguousarray(gt), source, gt_source, params)
