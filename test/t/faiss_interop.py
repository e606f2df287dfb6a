#!/usr/bin/env python3
# The Faiss side of test/t/016_faiss_interop.pl (run with a python3 that
# has faiss and numpy, e.g. Debian's python3-faiss).  Each subcommand
# prints result lines the .pl turns into tests:
#
#   ok NAME # detail        or        fail NAME # detail
#
#   probe                                   faiss's version (or fails)
#   centroids FILE                          the file's centroids, one vector
#                                           literal per line, list order
#   train METRIC BASE NLIST OUT             a Faiss IndexIVFFlat trained and
#                                           filled with BASE (ids = row
#                                           numbers), written to OUT
#   check-export METRIC FILE BASE QUERIES IDMAP SQLLISTS TOPK NPROBES [LABEL]
#   check-import METRIC FAISSFILE OURFILE BASE QUERIES IDMAP TOPK NPROBES
#
# METRIC is l2, ip or cos (cos: vectors normalised as ivf does).  IDMAP
# holds "row|faiss id" lines (ivf_faiss_id of the row's ctid), SQLLISTS
# "list|id,id,..." (the rows ivf_search returns for each centroid at
# nprobe 1, i.e. that list), TOPK a printf pattern of files
# "query|rank|faiss id" from ivf_search at each nprobe.
import sys

import faiss
import numpy as np

K = 10


def read_fvecs(path):
    a = np.fromfile(path, dtype='int32')
    d = a[0]
    return a.reshape(-1, d + 1)[:, 1:].copy().view('float32')


def normalise(x):
    """As ivf_prepare_vector: the norm in double, each element divided in
    double and rounded to float."""
    x64 = x.astype('float64')
    n = np.sqrt((x64 * x64).sum(axis=1, keepdims=True))
    n[n == 0] = 1
    return (x64 / n).astype('float32')


def prepared(metric, x):
    return normalise(x) if metric == 'cos' else x


def faiss_metric(metric):
    return faiss.METRIC_L2 if metric == 'l2' else faiss.METRIC_INNER_PRODUCT


def dist(metric, q, x):
    """Distances of q to the rows of x in float64, smaller is nearer."""
    q = q.astype('float64')
    x = x.astype('float64')
    if metric == 'l2':
        return ((x - q) ** 2).sum(axis=1)
    return -(x @ q)


def close(a, b, rel=1e-5):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-3)


def read_idmap(path):
    row_of, id_of = {}, {}
    with open(path) as f:
        for line in f:
            row, fid = line.strip().split('|')
            row_of[int(fid)] = int(row)
            id_of[int(row)] = int(fid)
    return row_of, id_of


def read_topk(path):
    """query (0-based) -> [faiss id, ...] in rank order"""
    res = {}
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            q, r, fid = line.strip().split('|')
            res.setdefault(int(q) - 1, []).append((int(r), int(fid)))
    return {q: [fid for _, fid in sorted(v)] for q, v in res.items()}


def lists_of(index):
    """[(ids, vectors)] of every list of an IndexIVFFlat"""
    il = index.invlists
    d = index.d
    out = []
    for lst in range(index.nlist):
        n = il.list_size(lst)
        if n == 0:
            out.append((np.zeros(0, dtype='int64'), np.zeros((0, d), dtype='float32')))
            continue
        ids = faiss.rev_swig_ptr(il.get_ids(lst), n).copy()
        codes = faiss.rev_swig_ptr(il.get_codes(lst), n * d * 4).copy()
        out.append((ids, codes.view('float32').reshape(n, d)))
    return out


def centroids_of(index):
    return index.quantizer.reconstruct_n(0, index.nlist)


def result(ok, name, detail=''):
    print(('ok ' if ok else 'fail ') + name + (' # ' + detail if detail else ''))


def exact_faiss():
    # Faiss ranks by GEMM (|x|^2 + |c|^2 - 2 x.c) from 20 queries on, which
    # rounds differently from a direct sum; ivf's answers are direct sums
    faiss.cvar.distance_compute_blas_threshold = 1 << 30


def compare_topk(name, metric, faiss_rows, our_rows, xq, xb, cent, nprobe):
    """Same top-k, but for ties in distance and for queries whose
    nprobe-th and next nearest centroids tie within rounding (the two
    sides may then probe different lists)."""
    ties = excused = 0
    bad = []
    for qi in range(len(xq)):
        f = [r for r in faiss_rows[qi] if r >= 0]
        o = our_rows.get(qi, [])
        if f == o:
            continue
        df = np.sort(dist(metric, xq[qi], xb[f]))
        do = np.sort(dist(metric, xq[qi], xb[o]))
        if len(f) == len(o) and all(close(a, b, 1e-6) for a, b in zip(df, do)):
            kth = df[-1]
            diff = set(f) ^ set(o)
            if all(close(dist(metric, xq[qi], xb[[r]])[0], kth, 1e-6) for r in diff):
                ties += 1
                continue
        cd = np.sort(dist(metric, xq[qi], cent))
        if nprobe < len(cd) and close(cd[nprobe - 1], cd[nprobe]):
            excused += 1
            continue
        bad.append(qi)
    detail = '%d queries, %d equal up to ties in distance, %d with tied lists at the nprobe boundary' % (
        len(xq), ties, excused)
    if bad:
        qi = bad[0]
        detail += '; %d differ, first query %d: faiss %s, ivf %s' % (
            len(bad), qi, faiss_rows[qi][:K], our_rows.get(qi, [])[:K])
    result(not bad and excused <= len(xq) // 20, name, detail)


def topk_checks(metric, index, xq, xb, row_of_faiss_id, topk_pattern, nprobes,
                faiss_ids_are_rows, label):
    cent = centroids_of(index)
    for p in nprobes:
        index.nprobe = p
        _, ids = index.search(xq, K)
        if faiss_ids_are_rows:
            frows = [list(r) for r in ids]
        else:
            frows = [[row_of_faiss_id.get(int(i), -1) if i >= 0 else -1 for i in r] for r in ids]
        ours = {q: [row_of_faiss_id.get(i, -2) for i in v]
                for q, v in read_topk(topk_pattern % p).items()}
        compare_topk('%s: top-%d at nprobe %d' % (label, K, p), metric, frows,
                     ours, xq, xb, cent, p)


def nearest_two(metric, x, cent):
    """per row: nearest centroid, and whether the second nearest ties"""
    best = np.empty(len(x), dtype='int64')
    tie = np.empty(len(x), dtype=bool)
    for i in range(len(x)):
        d = dist(metric, x[i], cent)
        order = np.argsort(d, kind='stable')
        best[i] = order[0]
        tie[i] = close(d[order[0]], d[order[1]]) if len(d) > 1 else False
    return best, tie


def check_export(metric, path, base, queries, idmap, sqllists, topk, nprobes, label):
    xb = prepared(metric, read_fvecs(base))
    xq = prepared(metric, read_fvecs(queries))
    row_of, id_of = read_idmap(idmap)
    index = faiss.read_index(path)
    result(isinstance(index, faiss.IndexIVFFlat), '%s: faiss.read_index gives an IndexIVFFlat' % label,
           type(index).__name__)
    result(index.metric_type == faiss_metric(metric) and index.d == xb.shape[1] and
           index.ntotal == len(xb) and index.is_trained,
           '%s: metric, d, ntotal' % label,
           'metric %d d %d ntotal %d' % (index.metric_type, index.d, index.ntotal))

    lists = lists_of(index)
    seen = np.concatenate([ids for ids, _ in lists])
    result(len(seen) == len(xb) and set(seen.tolist()) == set(row_of),
           '%s: every row once, ids ivf_faiss_id(ctid)' % label,
           '%d ids, %d distinct, %d rows' % (len(seen), len(set(seen.tolist())), len(row_of)))
    if metric == 'cos':
        # unit vectors: numpy's sum of squares may round a norm differently
        same = all(np.allclose(vecs, xb[[row_of[int(i)] for i in ids]], rtol=0, atol=2e-7)
                   for ids, vecs in lists)
    else:
        same = all(np.array_equal(vecs, xb[[row_of[int(i)] for i in ids]]) for ids, vecs in lists)
    result(same, '%s: every vector as the table holds it' % label)

    sql = {}
    with open(sqllists) as f:
        for line in f:
            lst, ids = line.strip().split('|')
            sql[int(lst)] = set(int(i) for i in ids.split(',') if i)
    differ = [lst for lst in range(index.nlist)
              if set(lists[lst][0].tolist()) != sql.get(lst, set())]
    result(not differ, '%s: the same ids in every list as the index' % label,
           '%d lists, sizes %d..%d%s' % (index.nlist, min(len(i) for i, _ in lists),
                                       max(len(i) for i, _ in lists),
                                       '; differ: %s' % differ[:10] if differ else ''))

    # each vector is in its nearest list (ties within rounding aside)
    cent = centroids_of(index)
    best, tie = nearest_two(metric, np.concatenate([v for _, v in lists]), cent)
    where = np.concatenate([np.full(len(ids), lst) for lst, (ids, _) in enumerate(lists)])
    wrong = np.sum((best != where) & ~tie)
    result(wrong == 0, '%s: every vector in its nearest list' % label,
           '%d elsewhere, %d of them at tied centroids' % (np.sum(best != where), np.sum((best != where) & tie)))

    exact_faiss()
    topk_checks(metric, index, xq, xb, row_of, topk, nprobes, False, label)


def train(metric, base, nlist, out):
    xb = prepared(metric, read_fvecs(base))
    d = xb.shape[1]
    quantizer = faiss.IndexFlatL2(d) if metric == 'l2' else faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss_metric(metric))
    index.cp.seed = 1234
    index.train(xb)
    exact_faiss()
    index.add_with_ids(xb, np.arange(len(xb), dtype='int64'))
    faiss.write_index(index, out)
    result(True, '%s: Faiss trained %d lists on %d vectors' % (metric, nlist, len(xb)), out)


def check_import(metric, faiss_path, our_path, base, queries, idmap, topk, nprobes):
    xb = prepared(metric, read_fvecs(base))
    xq = prepared(metric, read_fvecs(queries))
    row_of, _ = read_idmap(idmap)
    theirs = faiss.read_index(faiss_path)
    ours = faiss.read_index(our_path)
    ct = centroids_of(theirs)
    co = centroids_of(ours)
    if metric == 'cos':
        same = np.allclose(co, ct, rtol=0, atol=1e-6)
    else:
        same = np.array_equal(co, ct)
    result(ours.nlist == theirs.nlist and same,
           '%s: the imported index has Faiss\'s centroids' % metric,
           '%d lists' % ours.nlist)

    list_theirs = np.full(len(xb), -1)
    for lst, (ids, _) in enumerate(lists_of(theirs)):
        list_theirs[ids] = lst
    list_ours = np.full(len(xb), -1)
    for lst, (ids, _) in enumerate(lists_of(ours)):
        list_ours[[row_of[int(i)] for i in ids]] = lst
    _, tie = nearest_two(metric, xb, ct)
    moved = list_theirs != list_ours
    result((list_ours >= 0).all() and not (moved & ~tie).any(),
           '%s: the same list for every row, but where two centroids tie' % metric,
           '%d rows in another list, all with two nearest centroids equal within rounding '
           '(%d such rows in all)' % (moved.sum(), tie.sum())
           if not (moved & ~tie).any() else
           '%d rows in another list without a tie, e.g. row %d: faiss %d, ivf %d' % (
               (moved & ~tie).sum(), np.argmax(moved & ~tie),
               list_theirs[np.argmax(moved & ~tie)], list_ours[np.argmax(moved & ~tie)]))

    exact_faiss()
    topk_checks(metric, theirs, xq, xb, row_of, topk, nprobes, True, metric)


def main(argv):
    cmd = argv[1]
    if cmd == 'probe':
        print(faiss.__version__, np.__version__)
    elif cmd == 'centroids':
        index = faiss.read_index(argv[2])
        for c in centroids_of(index):
            print('[' + ','.join('%.9g' % v for v in c) + ']')
    elif cmd == 'train':
        train(argv[2], argv[3], int(argv[4]), argv[5])
    elif cmd == 'check-export':
        check_export(argv[2], argv[3], argv[4], argv[5], argv[6], argv[7], argv[8],
                     [int(p) for p in argv[9].split(',')],
                     argv[10] if len(argv) > 10 else argv[2])
    elif cmd == 'check-import':
        check_import(argv[2], argv[3], argv[4], argv[5], argv[6], argv[7], argv[8],
                     [int(p) for p in argv[9].split(',')])
    else:
        sys.exit('unknown command ' + cmd)


if __name__ == '__main__':
    main(sys.argv)
