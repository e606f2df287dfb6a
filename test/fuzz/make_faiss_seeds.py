#!/usr/bin/env python3
# Writes the Faiss-made seeds of test/fuzz/corpus-faiss (run from the repo
# root with a python3 that has faiss and numpy, e.g. Debian's
# python3-faiss):
#
#   /usr/bin/python3 test/fuzz/make_faiss_seeds.py test/fuzz/corpus-faiss
#
# Every file is tiny and made from fixed numbers, so test/kernels/
# test_faissio.c checks what the reader returns for each of them (d,
# metric, nlist, ntotal, centroids c[i][j] = i + j / 4, list sizes).  The
# seeds written by ivf's own writer come from `test_faissio --seeds DIR`;
# the broken ones are made here by editing bytes of the good ones.
# Faiss 1.7.3 (Debian bookworm) and 1.15.1 (PyPI faiss-cpu) write these
# files byte for byte the same.
import os
import struct
import sys

import faiss
import numpy as np

out = sys.argv[1]


def centroids(nlist, d):
    return np.array([[i + j / 4 for j in range(d)] for i in range(nlist)],
                    dtype='float32')


def ivf(d, nlist, metric, members, id0=100):
    """An IndexIVFFlat around the fixed centroids, with members[l] vectors
    in list l (each a centroid plus a small offset), ids id0, id0 + 1, ..."""
    c = centroids(nlist, d)
    q = faiss.IndexFlatL2(d) if metric == faiss.METRIC_L2 else faiss.IndexFlatIP(d)
    q.add(c)
    index = faiss.IndexIVFFlat(q, d, nlist, metric)
    index.is_trained = True
    rows, lists = [], []
    for lst, n in enumerate(members):
        for k in range(n):
            rows.append(c[lst] + 0.01 * (k + 1))
            lists.append(lst)
    if rows:
        x = np.array(rows, dtype='float32')
        ids = np.arange(id0, id0 + len(rows), dtype='int64')
        # place every vector in the list named, whatever the metric says
        index.add_core(len(rows), faiss.swig_ptr(x), faiss.swig_ptr(ids),
                       faiss.swig_ptr(np.array(lists, dtype='int64')))
    index.own_fields = True
    q.this.disown()
    return index


def write(name, index):
    faiss.write_index(index, os.path.join(out, name))


write('faiss-ivf-l2-full.faiss', ivf(4, 3, faiss.METRIC_L2, [2, 0, 3]))
write('faiss-ivf-ip-sprs.faiss', ivf(3, 6, faiss.METRIC_INNER_PRODUCT, [0, 2, 0, 0, 1, 0]))
write('faiss-ivf-empty.faiss', ivf(2, 2, faiss.METRIC_L2, [0, 0]))
# an array direct map needs the ids 0 .. ntotal - 1
index = ivf(2, 3, faiss.METRIC_L2, [1, 1, 1], id0=0)
index.make_direct_map()
write('faiss-ivf-dmap-array.faiss', index)
index = ivf(2, 3, faiss.METRIC_L2, [1, 1, 1])
index.set_direct_map_type(faiss.DirectMap.Hashtable)
write('faiss-ivf-dmap-hash.faiss', index)

flat = faiss.IndexFlatL2(5)
flat.add(centroids(4, 5))
write('faiss-flat-l2.faiss', flat)
flat = faiss.IndexFlatIP(2)
flat.add(centroids(3, 2))
write('faiss-flat-ip.faiss', flat)

# broken: edited copies of faiss-ivf-l2-full.faiss
with open(os.path.join(out, 'faiss-ivf-l2-full.faiss'), 'rb') as f:
    good = f.read()


def broken(name, data):
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)


broken('bad-truncated.faiss', good[:len(good) - 9])
broken('bad-nlist0.faiss', good[:37] + struct.pack('<Q', 0) + good[45:])
broken('bad-legacy.faiss', b'IvFl' + good[4:])
broken('bad-trailing.faiss', good + b'\0')
broken('bad-notfaiss.faiss', b'id\tv\n1\t[1,2,3]\n')
