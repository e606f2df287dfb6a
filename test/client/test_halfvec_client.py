#!/usr/bin/env python3
"""Client compatibility on halfvec: pgvector's Python client (psycopg 3) with ivf.

Connects with libpq's environment (PGHOST, PGPORT, PGUSER, PGDATABASE) and
creates two scratch databases beside PGDATABASE:

  ivf_client_half  CREATE EXTENSION ivf           (ivf's own halfvec)
  ivf_client_pgv   CREATE EXTENSION ivf_pgvector  (pgvector's halfvec; skipped,
                   with the reason printed, when pgvector is not installed)

In each, through `pgvector.psycopg.register_vector`: HalfVector values written
with text (%t) and binary (%b) parameters and binary COPY read back bit for bit
as text and binary results; then `ORDER BY v <-> q LIMIT 10` (and <#>) through
an ivf halfvec index with nprobe = lists returns the exact rows (numpy over the
same half values, and the server's sequential scan).

Run by test/run_all.sh (client step) in the venv of test/client/requirements.txt.
Prints one line per check and `N passed, M failed`; exit status 1 on failure.
"""
import numpy as np
import psycopg
from pgvector import HalfVector
from pgvector.psycopg import register_vector

from clientlib import assert_bits_match, check, connect, expect_error, finish, print_versions
from clientlib import read_back as read_back_from


def assert_half_equal(got, want, what):
    """got is a HalfVector of want's half values (a float16 array or HalfVector), to the bit."""
    assert isinstance(got, HalfVector), f"{what}: expected HalfVector, got {type(got)}"
    if isinstance(want, HalfVector):
        want = want.to_numpy()
    assert_bits_match(got.to_numpy(), want, np.float16, what)


rng = np.random.default_rng(20261207)

# half's edges: signed zeros, the largest finite, the smallest normal and
# subnormal, values that round (0.1, 1/3)
SPECIAL = np.array(
    [-0.0, 0.0, 65504.0, -65504.0, 6.1035156e-05, 5.9604645e-08, -5.9604645e-08,
     0.1, 1.0 / 3.0, 1.0, -2.5, 1000.0],
    dtype=np.float16,
)
VALUES = [SPECIAL] + [rng.standard_normal(24).astype(np.float16) for _ in range(20)]
VALUES.append(np.array([42.0], dtype=np.float16))
VALUES.append((rng.standard_normal(4000) * 100).astype(np.float16))

# the indexed data: random values rounded to half, so numpy and the server
# compute distances over the same numbers
N, D, LISTS = 3000, 32, 8
DATA = rng.standard_normal((N, D)).astype(np.float16)
QUERIES = rng.standard_normal((4, D)).astype(np.float16)

admin = connect()
have_pgvector = admin.execute(
    "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"
).fetchone()[0] > 0
print_versions(admin)

SETUPS = [("ivf", "ivf_client_half", "CREATE EXTENSION ivf")]
if have_pgvector:
    SETUPS.append(("ivf_pgvector", "ivf_client_pgv", "CREATE EXTENSION ivf_pgvector CASCADE"))
else:
    print("skip ivf_pgvector: pgvector (extension vector) is not installed in this PostgreSQL")


def run_checks(label, dbname, create):
    admin.execute(f"DROP DATABASE IF EXISTS {dbname}")
    admin.execute(f"CREATE DATABASE {dbname}")
    conn = connect(dbname)
    conn.execute(create)
    register_vector(conn)
    owner = conn.execute(
        """SELECT e.extname FROM pg_type t JOIN pg_depend d ON d.objid = t.oid AND d.deptype = 'e'
           JOIN pg_extension e ON e.oid = d.refobjid WHERE t.typname = 'halfvec'"""
    ).fetchone()[0]
    print(f"{label}: halfvec belongs to extension {owner}")

    conn.execute("CREATE TABLE rt (id int PRIMARY KEY, fmt text, v halfvec)")
    conn.execute(f"CREATE TABLE items (id int PRIMARY KEY, v halfvec({D}))")

    def read_back(ids, binary):
        return read_back_from(conn, "rt", ids, binary)

    @check(f"{label}: HalfVector halfvec type is {'pgvector' if label == 'ivf_pgvector' else 'ivf'}'s")
    def _():
        assert owner == ("vector" if label == "ivf_pgvector" else "ivf"), owner

    for ph, base in (("%t", 0), ("%b", 1000)):
        @check(f"{label}: insert HalfVector with {ph} parameters, read back text and binary")
        def _():
            with conn.cursor() as cur:
                for i, v in enumerate(VALUES):
                    cur.execute(f"INSERT INTO rt VALUES (%s, %s, {ph})", (base + i, ph, HalfVector(v)))
            ids = [base + i for i in range(len(VALUES))]
            for binary in (False, True):
                got = read_back(ids, binary)
                for i, v in enumerate(VALUES):
                    assert_half_equal(got[base + i], v,
                                      f"row {base + i} ({'binary' if binary else 'text'} result)")

    @check(f"{label}: text and binary parameters store the same bytes (halfvec_send)")
    def _():
        n = conn.execute(
            """SELECT count(*) FROM rt a JOIN rt b ON b.id = a.id + 1000
               WHERE a.fmt = '%t' AND halfvec_send(a.v) = halfvec_send(b.v)"""
        ).fetchone()[0]
        assert n == len(VALUES), n

    @check(f"{label}: binary parameter bytes are pgvector's halfvec wire format")
    def _():
        got = conn.execute("SELECT halfvec_send(%b::halfvec)", (HalfVector([1, 2, 3]),)).fetchone()[0]
        assert bytes(got) == bytes.fromhex("000300003c0040004200"), bytes(got).hex()

    @check(f"{label}: binary COPY of HalfVector in and out")
    def _():
        conn.execute("CREATE TEMP TABLE cp (id int, v halfvec)")
        with conn.cursor() as cur:
            with cur.copy("COPY cp (id, v) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int4", "halfvec"])
                for i, v in enumerate(VALUES):
                    copy.write_row((i, HalfVector(v)))
            got = {}
            with cur.copy("COPY (SELECT id, v FROM cp ORDER BY id) TO STDOUT (FORMAT BINARY)") as copy:
                copy.set_types(["int4", "halfvec"])
                for row in copy.rows():
                    got[row[0]] = row[1]
        assert len(got) == len(VALUES), len(got)
        for i, v in enumerate(VALUES):
            assert_half_equal(got[i], v, f"binary COPY row {i}")

    @check(f"{label}: bad values reach the client as psycopg errors naming them")
    def _():
        bad = [
            ("SELECT %t::halfvec", ("[1,70000]",), psycopg.errors.NumericValueOutOfRange,
             '"70000" is out of range for type halfvec'),
            ("SELECT %b", (HalfVector([1.0, float("nan")]),), psycopg.errors.DataException,
             "NaN not allowed in halfvec"),
            ("SELECT %t", (HalfVector([float("inf")]),), psycopg.errors.DataException,
             "infinite value not allowed in halfvec"),
            ("INSERT INTO items VALUES (-1, %b)", (HalfVector([1, 2]),), psycopg.errors.DataException,
             f"expected {D} dimensions, not 2"),
        ]
        for sql, params, cls, text in bad:
            expect_error(conn, sql, params, text, cls)

    # ---- the index
    with conn.cursor() as cur:
        with cur.copy("COPY items (id, v) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "halfvec"])
            for i in range(N):
                copy.write_row((i, HalfVector(DATA[i])))
    conn.execute(f"CREATE INDEX items_l2 ON items USING ivf (v halfvec_l2_ops) WITH (lists = {LISTS})")
    conn.execute(f"CREATE INDEX items_ip ON items USING ivf (v halfvec_ip_ops) WITH (lists = {LISTS})")
    conn.execute("ANALYZE items")

    X = DATA.astype(np.float64)
    exact = {
        "<->": lambda q: np.sqrt(((X - q) ** 2).sum(axis=1)),
        "<#>": lambda q: -(X @ q),
    }
    index = {"<->": "items_l2", "<#>": "items_ip"}

    for op in ("<->", "<#>"):
        @check(f"{label}: ORDER BY v {op} q LIMIT 10 through {index[op]} at nprobe = lists: the exact rows")
        def _():
            conn.execute("SET enable_seqscan = off")
            conn.execute(f"SET ivf.nprobe = {LISTS}")
            plan = "\n".join(r[0] for r in conn.execute(
                f"EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY v {op} %b LIMIT 10",
                (HalfVector(QUERIES[0]),)).fetchall())
            assert f"Index Scan using {index[op]}" in plan, plan
            for qi, q in enumerate(QUERIES):
                for ph in ("%b", "%t"):
                    rows = conn.execute(
                        f"SELECT id, v {op} {ph} FROM items ORDER BY v {op} {ph} LIMIT 10",
                        (HalfVector(q), HalfVector(q)),
                    ).fetchall()
                    got = [r[0] for r in rows]
                    d = exact[op](q.astype(np.float64))
                    want = [int(i) for i in np.argsort(d, kind="stable")[:10]]
                    assert got == want, f"query {qi} ({ph}): {got} != numpy's {want}"
                    np.testing.assert_allclose([r[1] for r in rows], d[want], rtol=1e-5, atol=1e-4)
            conn.execute("RESET enable_seqscan")
            conn.execute("SET enable_indexscan = off")
            conn.execute("SET enable_bitmapscan = off")
            for q in QUERIES:
                seq = [r[0] for r in conn.execute(
                    f"SELECT id FROM items ORDER BY v {op} %b, id LIMIT 10", (HalfVector(q),)).fetchall()]
                d = exact[op](q.astype(np.float64))
                assert seq == [int(i) for i in np.argsort(d, kind="stable")[:10]], "sequential scan"
            conn.execute("RESET ALL")

    conn.close()
    admin.execute(f"DROP DATABASE {dbname}")


for _label, _db, _create in SETUPS:
    run_checks(_label, _db, _create)
admin.close()
finish()
