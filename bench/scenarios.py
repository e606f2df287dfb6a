"""--scenario: how an index holds up when it is not built after the load.

Issue #17's measurements (bench/README.md, "Scenarios"): for each scenario
and each PostgreSQL engine (ivf, and pgvector's IVFFlat / HNSW when in
--peers), a fresh table is loaded in --order and the index is

    fresh     built after every row is loaded (the reference)
    empty     built on the empty table, then every row inserted
    first10   built on the first 10% of the rows, then the rest inserted

Rows after the build go in with one COPY per --insert-batch rows (timed one
by one: throughput and the worst batch), with VACUUM every --vacuum-every
rows and once at the end (timed as maintenance), and ivf_rebalance(index)
when the server has it.  Then the same sweep as the main benchmark (same
prepared statement, client and pinning, measure_sql()), the index's size,
ivf_index_info (lists, largest list) and ivf_check.  The summary compares
every scenario with the same engine's fresh build: best single-client QPS
at recall@k >= --target-recall, recall at equal nprobe, index size.

Drift: --order cluster sorts the rows by the nearest of --drift-clusters
k-means centroids computed here (Faiss, seeded), label by Fashion-MNIST's
class, random shuffles them (seeded), natural keeps the data set's order.
The ids stay the data set's row numbers, so the ground truth is unchanged.

The functions of ivfbench.py are passed in as `ib` (this module is imported
by it), so both share one copy of its state.
"""
import os

import numpy as np

import datasets

SCENARIOS = ("fresh", "empty", "first10")
ORDERS = ("natural", "random", "cluster", "label")
ENGINES = ("ivf", "pgvector-ivfflat", "pgvector-hnsw")


def add_arguments(p):
    p.add_argument("--scenario", type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                   help="run the index-lifecycle scenarios instead of the sweep against Faiss, comma-separated "
                        "from " + ",".join(SCENARIOS) + " (fresh: built after loading; empty: built on the "
                        "empty table, then every row inserted; first10: built on the first 10%%, then the rest "
                        "inserted); engines: ivf and the pgvector-* of --peers")
    p.add_argument("--order", choices=ORDERS, default="natural",
                   help="scenarios: the order rows are loaded in (cluster: sorted by the nearest of "
                        "--drift-clusters k-means centroids; label: by Fashion-MNIST class; random: shuffled)")
    p.add_argument("--drift-clusters", type=int, default=10,
                   help="scenarios, --order cluster: k-means centroids the rows are sorted by")
    p.add_argument("--insert-batch", type=int, default=100,
                   help="scenarios: rows per COPY when inserting after the build (1: per-row latency)")
    p.add_argument("--vacuum-every", type=int, default=0,
                   help="scenarios: VACUUM the table every N inserted rows (0: only once at the end)")
    p.add_argument("--target-recall", type=float, default=0.95,
                   help="scenarios: best QPS among the points with recall@k at least this")


def check_arguments(p, a):
    if not a.scenario:
        return
    bad = [s for s in a.scenario if s not in SCENARIOS]
    if bad:
        p.error(f"--scenario {','.join(bad)}: unknown (choose from {','.join(SCENARIOS)})")
    if a.order == "label" and a.dataset != "fashion-mnist":
        p.error("--order label: only fashion-mnist has labels (use --order cluster)")
    if a.insert_batch < 1:
        p.error("--insert-batch must be at least 1")


# ------------------------------------------------------------------ row order


def row_order(ds, args, log):
    """The permutation of base row ids to load in, and what it is."""
    n = ds.n
    if args.order == "natural":
        return np.arange(n, dtype=np.int64), "the data set's order"
    if args.order == "random":
        return np.random.default_rng(20261207).permutation(n).astype(np.int64), "shuffled (seed 20261207)"
    if args.order == "label":
        lab = datasets.load_labels(ds.name, n)
        return np.argsort(lab, kind="stable").astype(np.int64), "sorted by class label (stable)"
    import faiss
    k = min(args.drift_clusters, n)
    km = faiss.Kmeans(ds.d, k, niter=20, seed=1234, verbose=False)
    sample = ds.base if n <= 100_000 else ds.base[np.random.default_rng(1234).choice(n, 100_000, replace=False)]
    km.train(np.ascontiguousarray(sample))
    _, lab = km.index.search(ds.base, 1)
    lab = lab[:, 0]
    sizes = np.bincount(lab, minlength=k)
    log(f"--order cluster: {k} k-means clusters of sizes {sorted(sizes.tolist(), reverse=True)}")
    return np.argsort(lab, kind="stable").astype(np.int64), f"sorted by the nearest of {k} k-means centroids"


# ------------------------------------------------------------------ one run


def create_table(ib, conn, ds, args):
    conn.execute("DROP TABLE IF EXISTS items")
    # maintenance only when the scenario runs it, at the same points every run
    conn.execute(f"CREATE TABLE items (id int4 NOT NULL, embedding vector({ds.d}) NOT NULL) "
                 f"WITH (autovacuum_enabled = off)")
    storage = args.storage if args.storage != "auto" else ("plain" if ds.d <= 2000 else "external")
    conn.execute(f"ALTER TABLE items ALTER COLUMN embedding SET STORAGE {storage}")
    return storage


def build_index(ib, conn, ds, args, res, engine):
    """CREATE INDEX of the engine (lists = --lists for both IVF engines)."""
    if engine == "ivf":
        info, _, build_s, _ = ib.build_ivf(conn, args, res, engine="ivf")
        return build_s
    build_s, _ = ib.build_pgvector(conn, ds, args, res, engine, args.lists)
    return build_s


def insert_rows(ib, conn, ds, ids, args, res, engine, has_rebalance):
    """Insert ds.base[ids] in COPY batches; VACUUM every --vacuum-every rows
    and at the end; ivf_rebalance(index) at the end when it exists."""
    lat = []
    maint = []
    t_ins = 0.0
    since_vacuum = 0
    for s in range(0, len(ids), args.insert_batch):
        part = ids[s:s + args.insert_batch]
        t0 = ib.now()
        ib.copy_rows_binary(conn, ds.base[part], ids=part)
        dt = ib.now() - t0
        lat.append(dt)
        t_ins += dt
        since_vacuum += len(part)
        if args.vacuum_every and since_vacuum >= args.vacuum_every and s + len(part) < len(ids):
            t0 = ib.now()
            conn.execute("VACUUM items")
            maint.append(("vacuum", ib.now() - t0))
            since_vacuum = 0
    t0 = ib.now()
    conn.execute("VACUUM (ANALYZE) items")
    maint.append(("vacuum", ib.now() - t0))
    if has_rebalance:
        t0 = ib.now()
        conn.execute("SELECT ivf_rebalance(%s)", (ib.INDEX,))
        maint.append(("ivf_rebalance", ib.now() - t0))
        # the lists the splits replaced go once a later transaction id
        # exists (no snapshot can read them then), as on any busy server;
        # one is taken here so that the index size measured is the
        # steady state's, and a second run recycles them
        conn.execute("SELECT txid_current()")
        t0 = ib.now()
        conn.execute("SELECT ivf_rebalance(%s)", (ib.INDEX,))
        maint.append(("ivf_rebalance (recycle)", ib.now() - t0))
    a = np.asarray(lat) * 1e3
    rec = {"rows": int(len(ids)), "batch": args.insert_batch, "batches": len(lat), "insert_s": t_ins,
           "rows_per_s": len(ids) / t_ins if t_ins > 0 else None,
           "batch_p50_ms": float(np.percentile(a, 50)) if len(a) else None,
           "batch_p99_ms": float(np.percentile(a, 99)) if len(a) else None,
           "batch_max_ms": float(a.max()) if len(a) else None,
           "maintenance": [{"what": w, "seconds": t} for w, t in maint],
           "maintenance_s": sum(t for _, t in maint)}
    return rec


def rows_home(ib, conn, engine, sample=300):
    """How many of about `sample` rows (every n-th id) an index scan at one
    probe finds when searching for the row itself: those in the list whose
    centroid is nearest them, as every row is after a fresh build.  The
    rest are misplaced (drift, lists that changed since)."""
    n = ib.one(conn, "SELECT count(*) FROM items")
    step = max(1, n // sample)
    probes = "ivf.nprobe" if engine == "ivf" else "ivfflat.probes"
    found = total = 0
    with conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute("SET LOCAL enable_bitmapscan = off")
        conn.execute(f"SET LOCAL {probes} = 1")
        for (i,) in conn.execute("SELECT id FROM items WHERE id %% %s = 0 ORDER BY id", (step,)).fetchall():
            got = ib.one(conn, "SELECT id FROM items ORDER BY embedding <-> "
                               "(SELECT embedding FROM items WHERE id = %s) LIMIT 1", (i,))
            found += got == i
            total += 1
    return found, total


def index_state(ib, conn, engine):
    """Size, rows in their nearest list (IVF engines), and for ivf what
    ivf_index_info and ivf_check say."""
    out = {"index_bytes": ib.one(conn, "SELECT pg_relation_size(%s)", (ib.INDEX,))}
    if engine in ("ivf", "pgvector-ivfflat"):
        out["rows_home"], out["rows_home_sample"] = rows_home(ib, conn, engine)
    if engine == "ivf":
        with conn.cursor(row_factory=ib.pgrows.dict_row) as cur:
            cur.execute("SELECT * FROM ivf_index_info(%s)", (ib.INDEX,))
            info = cur.fetchone()
        out["lists"] = info["lists"]
        out["largest_list"] = info["largest_list"]
        out["vectors"] = info["vectors"]
        out["index_info"] = info
        out["ivf_check_problems"] = ib.one(conn, "SELECT count(*) FROM ivf_check(%s)", (ib.INDEX,))
    return out


def sweep_points(ib, conn, args, engine):
    if engine == "ivf":
        # every --nprobe, even above the lists an index has now (ivf clamps
        # nprobe to its lists), so that scenarios compare at equal nprobe
        return [(pt.label, pt.nprobe, pt.ivf_sql) for pt in ib.build_points(args, conn, max(args.nprobe))]
    if engine == "pgvector-ivfflat":
        return [(f"nprobe={n}", n, [f"SET ivfflat.probes = {n}"]) for n in args.nprobe]
    return [(pp.label, None, pp.sql) for pp in ib.pgvector_points(engine, args, args.lists)]


def run_one(ib, conn, ds, order, scenario, engine, args, res, has_rebalance):
    n0 = {"fresh": ds.n, "empty": 0, "first10": ds.n // 10}[scenario]
    storage = create_table(ib, conn, ds, args)
    t0 = ib.now()
    if n0:
        ib.copy_rows_binary(conn, ds.base[order[:n0]], ids=order[:n0])
    load_s = ib.now() - t0
    conn.execute("VACUUM (FREEZE, ANALYZE) items")
    conn.execute("CHECKPOINT")
    os.sync()
    build_s = build_index(ib, conn, ds, args, res, engine)
    ins = None
    if n0 < ds.n:
        ins = insert_rows(ib, conn, ds, order[n0:], args, res, engine, has_rebalance and engine == "ivf")
        ib.log(f"{engine} {scenario}: inserted {ins['rows']:,} rows in {ins['insert_s']:.2f} s "
               f"({ins['rows_per_s']:,.0f} rows/s, {ins['batch']} per COPY: p50 {ins['batch_p50_ms']:.2f} ms, "
               f"p99 {ins['batch_p99_ms']:.2f} ms, worst {ins['batch_max_ms']:.2f} ms); maintenance "
               + ", ".join(f"{m['what']} {m['seconds']:.2f} s" for m in ins["maintenance"]))
        conn.execute("CHECKPOINT")
        os.sync()
    state = index_state(ib, conn, engine)
    ib.log(f"{engine} {scenario}: index {state['index_bytes'] / 1e6:.1f} MB"
           + (f", {state['rows_home']} of {state['rows_home_sample']} sampled rows in their nearest list"
              if "rows_home" in state else "")
           + (f", {state['lists']} lists, largest {state['largest_list']:,} vectors, "
              f"ivf_check problems {state['ivf_check_problems']}" if engine == "ivf" else ""))
    ib.prewarm(conn, res, engine)
    points = sweep_points(ib, conn, args, engine)
    ib.check_index_plan(conn, ds, args, engine, points[0][2])
    ib.session_settings(conn, res, engine)
    meas = {label: [] for label, _, _ in points}
    for _ in range(args.rounds):
        for label, _, sql in points:
            meas[label].append(ib.measure_sql(conn, ds, sql, args, engine, label, fatal=engine != "ivf"))
    rows = []
    for label, nprobe, sql in points:
        m = ib.combine_rounds(meas[label])
        res.add({"type": "search", "engine": engine, "scenario": scenario, "order": args.order, "point": label,
                 "nprobe": nprobe, "settings": sql, "k": args.k, "queries": ds.nq, **m})
        rows.append({"point": label, "nprobe": nprobe, "recall": m["recall"], "qps": m["qps"],
                     "p50_ms": m["p50_ms"], "p99_ms": m["p99_ms"]})
        ib.log(f"{engine} {scenario} {label:>14}: recall {m['recall']:.4f} {ib.fmt_qps(m['qps']):>8} QPS "
               f"p50 {m['p50_ms']:.3f} ms p99 {m['p99_ms']:.3f} ms")
    rec = {"type": "scenario", "engine": engine, "scenario": scenario, "order": args.order,
           "rows_at_build": n0, "load_s": load_s, "build_s": build_s, "storage": storage,
           "insert": ins, **{k: v for k, v in state.items() if k != "index_info"},
           "index_info": state.get("index_info"), "points": rows}
    res.add(rec)
    conn.execute("DROP TABLE items")
    return rec


# ------------------------------------------------------------------ summary


def best_at(points, target):
    ok = [p for p in points if p["recall"] >= target]
    return max(ok, key=lambda p: p["qps"]) if ok else None


def summarize(ib, recs, args):
    target = args.target_recall
    ib.log("")
    ib.log(f"=== scenarios (order: {args.order}; best single-client QPS at recall@{args.k} >= {target}; "
           f"ratios against the same engine's fresh build) ===")
    hdr = ["engine", "scenario", "best QPS", "at", "recall", "p50 ms", "QPS/fresh", "max |recall - fresh|",
           "size MB", "size/fresh", "lists", "largest list", "home", "insert rows/s", "worst batch ms", "maint s"]
    lines = []
    out = []
    for eng in ENGINES:
        fresh = recs.get((eng, "fresh"))
        for sc in args.scenario:
            r = recs.get((eng, sc))
            if r is None:
                continue
            b = best_at(r["points"], target)
            fb = best_at(fresh["points"], target) if fresh else None
            diffs = []
            if fresh:
                fp = {p["point"]: p["recall"] for p in fresh["points"]}
                diffs = [abs(p["recall"] - fp[p["point"]]) for p in r["points"] if p["point"] in fp]
            s = {"engine": eng, "scenario": sc, "best_qps": b["qps"] if b else None,
                 "best_point": b["point"] if b else None, "best_recall": b["recall"] if b else None,
                 "best_p50_ms": b["p50_ms"] if b else None,
                 "qps_ratio_over_fresh": (b["qps"] / fb["qps"]) if (b and fb) else None,
                 "max_recall_diff_vs_fresh": max(diffs) if diffs else None,
                 "index_bytes": r["index_bytes"],
                 "size_ratio_over_fresh": r["index_bytes"] / fresh["index_bytes"] if fresh else None,
                 "lists": r.get("lists"), "largest_list": r.get("largest_list"),
                 "rows_home": (r["rows_home"] / r["rows_home_sample"]) if r.get("rows_home_sample") else None,
                 "insert_rows_per_s": r["insert"]["rows_per_s"] if r["insert"] else None,
                 "insert_worst_batch_ms": r["insert"]["batch_max_ms"] if r["insert"] else None,
                 "maintenance_s": r["insert"]["maintenance_s"] if r["insert"] else None}
            out.append(s)

            def f(x, fmt):
                return "-" if x is None else fmt.format(x)
            lines.append([eng, sc, f(s["best_qps"], "{:,.0f}") if b else f"none (max recall "
                          f"{max(p['recall'] for p in r['points']):.3f})",
                          f(s["best_point"], "{}"), f(s["best_recall"], "{:.4f}"), f(s["best_p50_ms"], "{:.3f}"),
                          f(s["qps_ratio_over_fresh"], "{:.2f}"), f(s["max_recall_diff_vs_fresh"], "{:.4f}"),
                          f"{r['index_bytes'] / 1e6:.1f}", f(s["size_ratio_over_fresh"], "{:.2f}"),
                          f(s["lists"], "{}"), f(s["largest_list"], "{:,}"), f(s["rows_home"], "{:.3f}"),
                          f(s["insert_rows_per_s"], "{:,.0f}"),
                          f(s["insert_worst_batch_ms"], "{:.1f}"), f(s["maintenance_s"], "{:.2f}")])
    ib.print_rows(hdr, lines)
    return out


def run(ib, conn, ds, args, res):
    """All scenarios for ivf and the pgvector engines of --peers (main() has
    created their databases)."""
    engines = ["ivf"] + [e for e in args.pgvector]
    ignored = [p for p in args.peers if p not in ENGINES]
    if ignored:
        ib.log(f"--scenario: {','.join(ignored)} not measured (scenarios compare PostgreSQL indexes)")
    order, how = row_order(ds, args, ib.log)
    res.add({"type": "scenario_setup", "scenarios": args.scenario, "order": args.order, "order_desc": how,
             "engines": engines, "insert_batch": args.insert_batch, "vacuum_every": args.vacuum_every,
             "target_recall": args.target_recall, "lists": args.lists})
    ib.log(f"scenarios {args.scenario} for {engines}; rows loaded {how}; lists = {args.lists}")
    conns = {"ivf": conn}
    ib.register_vector(conn)
    ib.pin_cpus(conn, args, res)
    for eng in args.pgvector:
        c = ib.connect(ib.PGVECTOR_DB[eng])
        ib.PEER_CONNS.append(c)
        ib.register_vector(c)
        ib.pin_cpus(c, args, res, eng)
        conns[eng] = c
    has_rebalance = bool(ib.one(conn, "SELECT count(*) FROM pg_proc WHERE proname = 'ivf_rebalance'"))
    if not has_rebalance:
        ib.log("ivf: no ivf_rebalance() in this build: the scenarios' maintenance is VACUUM alone")
    recs = {}
    for sc in args.scenario:
        for eng in engines:
            ib.log("")
            ib.log(f"--- {eng}: {sc} ---")
            recs[(eng, sc)] = run_one(ib, conns[eng], ds, order, sc, eng, args, res, has_rebalance)
    summary = summarize(ib, recs, args)
    res.add({"type": "scenario_summary", "order": args.order, "target_recall": args.target_recall,
             "rows": summary, "loadavg_end": os.getloadavg(), "cpu_busy_after": ib.cpu_busy()})
    ib.log("")
    ib.log(f"results: {res.path}")
