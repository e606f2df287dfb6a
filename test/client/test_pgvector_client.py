#!/usr/bin/env python3
"""Client compatibility: the pgvector Python client (psycopg 3) against ivf.

Connects with libpq's environment (PGHOST, PGPORT, PGUSER, PGDATABASE), runs
`CREATE EXTENSION IF NOT EXISTS ivf`, then checks that numpy vectors written and
read through `pgvector.psycopg.register_vector` -- text and binary parameters,
text and binary results, binary COPY in both directions -- come back bit for
bit, that the distance operators agree with numpy, and that server errors
(dimension mismatch, NaN) reach the client as psycopg errors.

Run by test/run_all.sh in a venv with test/client/requirements.txt.
Prints one line per check and `N passed, M failed`; exit status 1 on failure.
"""
import math

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from clientlib import assert_bits_match, check, connect, finish, print_versions
from clientlib import expect_error as expect_error_on
from clientlib import read_back as read_back_from


def assert_bits_equal(got, want, what=""):
    assert isinstance(got, np.ndarray), f"{what}: expected numpy array, got {type(got)}"
    assert got.dtype == np.float32, f"{what}: dtype {got.dtype}"
    assert_bits_match(got, want, np.float32, what)


rng = np.random.default_rng(20240611)

# Awkward values: signed zeros, denormals, extremes, values that need all 9 digits.
SPECIAL = np.array(
    [
        -0.0,
        0.0,
        1.4e-45,
        -1.4e-45,
        1e-40,
        3.4028235e38,
        -3.4028235e38,
        1.17549435e-38,
        -1.17549435e-38,
        0.1,
        1.0 / 3.0,
        16777217.0,
        -123456.789,
        2.5e-10,
    ],
    dtype=np.float32,
)
DIM = 64
VECS = [SPECIAL] + [
    rng.standard_normal(DIM).astype(np.float32) * np.float32(10.0 ** rng.integers(-6, 6))
    for _ in range(30)
]
VECS.append(np.array([42.0], dtype=np.float32))
VECS.append((rng.standard_normal(16000) * 1e3).astype(np.float32))


conn = connect()
conn.execute("CREATE EXTENSION IF NOT EXISTS ivf")
register_vector(conn)
print_versions(conn)
conn.execute("DROP TABLE IF EXISTS client_items")
conn.execute("CREATE TABLE client_items (id int PRIMARY KEY, fmt text, v vector)")


def read_back(ids, binary):
    return read_back_from(conn, "client_items", ids, binary)


@check("insert with text parameters (%t), read back text and binary")
def _():
    with conn.cursor() as cur:
        for i, v in enumerate(VECS):
            cur.execute("INSERT INTO client_items VALUES (%t, 'text', %t)", (i, v))
    ids = range(len(VECS))
    for binary in (False, True):
        got = read_back(ids, binary)
        for i, v in enumerate(VECS):
            assert_bits_equal(got[i], v, f"row {i} ({'binary' if binary else 'text'} result)")


@check("insert with binary parameters (%b), read back text and binary")
def _():
    base = 1000
    with conn.cursor() as cur:
        for i, v in enumerate(VECS):
            cur.execute("INSERT INTO client_items VALUES (%b, 'binary', %b)", (base + i, v))
    ids = [base + i for i in range(len(VECS))]
    for binary in (False, True):
        got = read_back(ids, binary)
        for i, v in enumerate(VECS):
            assert_bits_equal(got[base + i], v, f"row {base + i}")


@check("text and binary inserts store identical bytes (vector_send)")
def _():
    cur = conn.execute(
        """SELECT count(*) FROM client_items a JOIN client_items b ON b.id = a.id + 1000
           WHERE a.fmt = 'text' AND vector_send(a.v) = vector_send(b.v)"""
    )
    assert cur.fetchone()[0] == len(VECS)


@check("binary parameter bytes are pgvector's wire format")
def _():
    v = np.array([1, 2, 3], dtype=np.float32)
    cur = conn.execute("SELECT vector_send(%b::vector)", (v,))
    assert bytes(cur.fetchone()[0]) == bytes.fromhex("000300003f8000004000000040400000")
    cur = conn.execute("SELECT %b::vector::text", (SPECIAL,))
    text = cur.fetchone()[0]
    back = np.array([float(x) for x in text[1:-1].split(",")], dtype=np.float32)
    assert_bits_equal(back, SPECIAL, "vector_out text parsed by Python")


@check("COPY FROM STDIN (FORMAT BINARY) with write_row, COPY TO STDOUT binary")
def _():
    conn.execute("CREATE TEMP TABLE copy_in (id int, v vector)")
    with conn.cursor() as cur:
        with cur.copy("COPY copy_in (id, v) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "vector"])
            for i, v in enumerate(VECS):
                copy.write_row((i, v))
            copy.write_row((len(VECS), None))
        got = {}
        with cur.copy("COPY (SELECT id, v FROM copy_in ORDER BY id) TO STDOUT (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "vector"])
            for row in copy.rows():
                got[row[0]] = row[1]
    assert len(got) == len(VECS) + 1, len(got)
    assert got[len(VECS)] is None
    for i, v in enumerate(VECS):
        assert_bits_equal(got[i], v, f"binary COPY row {i}")
    cur = conn.execute(
        """SELECT count(*) FROM copy_in c JOIN client_items t ON t.id = c.id
           WHERE vector_send(c.v) = vector_send(t.v)"""
    )
    assert cur.fetchone()[0] == len(VECS)


@check("COPY FROM STDIN text format with write_row")
def _():
    conn.execute("CREATE TEMP TABLE copy_txt (id int, v vector)")
    with conn.cursor() as cur:
        with cur.copy("COPY copy_txt (id, v) FROM STDIN") as copy:
            for i, v in enumerate(VECS):
                copy.write_row((i, v))
        cur.execute("SELECT id, v FROM copy_txt ORDER BY id", binary=True)
        for i, v in cur.fetchall():
            assert_bits_equal(v, VECS[i], f"text COPY row {i}")


# ---- distances ----
N, D = 500, 48
DATA = rng.standard_normal((N, D)).astype(np.float32)
Q = rng.standard_normal(D).astype(np.float32)
conn.execute("CREATE TEMP TABLE dist (id int, v vector(48))")
with conn.cursor() as _cur:
    with _cur.copy("COPY dist (id, v) FROM STDIN (FORMAT BINARY)") as _copy:
        _copy.set_types(["int4", "vector"])
        for _i in range(N):
            _copy.write_row((_i, DATA[_i]))

X = DATA.astype(np.float64)
q = Q.astype(np.float64)
EXPECT = {
    "<->": np.sqrt(((X - q) ** 2).sum(axis=1)),
    "<#>": -(X @ q),
    "<=>": 1.0 - (X @ q) / (np.linalg.norm(X, axis=1) * np.linalg.norm(q)),
}


def check_operator(op):
    @check(f"operator {op} matches numpy on {N} x {D} (binary and text query vector)")
    def _():
        for ph in ("%b", "%t"):
            cur = conn.execute(f"SELECT id, v {op} {ph} FROM dist ORDER BY id", (Q,))
            got = np.array([r[1] for r in cur.fetchall()], dtype=np.float64)
            np.testing.assert_allclose(got, EXPECT[op], rtol=1e-5, atol=1e-5)

    @check(f"ORDER BY v {op} q LIMIT 10 matches numpy's top 10")
    def _():
        cur = conn.execute(f"SELECT id FROM dist ORDER BY v {op} %b LIMIT 10", (Q,))
        got = [r[0] for r in cur.fetchall()]
        want = [int(i) for i in np.argsort(EXPECT[op], kind="stable")[:10]]
        assert got == want, f"{got} != {want}"


for _op in ("<->", "<#>", "<=>"):
    check_operator(_op)


@check("l2_distance / inner_product / cosine_distance functions agree with operators")
def _():
    cur = conn.execute(
        """SELECT count(*) FROM dist WHERE l2_distance(v, %b) <> (v <-> %b)
              OR -inner_product(v, %b) <> (v <#> %b) OR cosine_distance(v, %b) <> (v <=> %b)""",
        (Q,) * 6,
    )
    assert cur.fetchone()[0] == 0


# ---- errors reach the client ----
def expect_error(sql, params, pattern):
    return expect_error_on(conn, sql, params, pattern)


@check("typmod: 2-d vector into vector(3) raises psycopg error (text param)")
def _():
    conn.execute("CREATE TEMP TABLE typed (v vector(3))")
    e = expect_error("INSERT INTO typed VALUES (%t)", (np.array([1, 2], dtype=np.float32),),
                     "expected 3 dimensions, not 2")
    assert isinstance(e, psycopg.errors.DataException), type(e)


@check("typmod: 4-d vector into vector(3) raises psycopg error (binary param)")
def _():
    expect_error("INSERT INTO typed VALUES (%b)", (np.array([1, 2, 3, 4], dtype=np.float32),),
                 "expected 3 dimensions, not 4")


@check("typmod: binary COPY of a wrong-dimension vector raises psycopg error")
def _():
    try:
        with conn.cursor() as cur:
            with cur.copy("COPY typed (v) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["vector"])
                copy.write_row((np.array([1, 2], dtype=np.float32),))
    except psycopg.Error as e:
        assert "expected 3 dimensions, not 2" in str(e), str(e)
    else:
        raise AssertionError("no error")


@check("NaN and infinity are rejected (text and binary)")
def _():
    for ph in ("%t", "%b"):
        expect_error(f"SELECT {ph}::vector", (np.array([1, math.nan], dtype=np.float32),),
                     "NaN not allowed in vector")
        expect_error(f"SELECT {ph}::vector", (np.array([math.inf], dtype=np.float32),),
                     "infinite value not allowed in vector")


@check("different dimensions in a distance raise psycopg error")
def _():
    expect_error("SELECT %b::vector <-> %b::vector",
                 (np.zeros(2, dtype=np.float32), np.zeros(3, dtype=np.float32)),
                 "different vector dimensions 2 and 3")


@check("connection still usable after errors; pgvector Vector objects work too")
def _():
    from pgvector import Vector

    cur = conn.execute("SELECT %b::vector, %t::vector", (Vector([1.5, -0.0]), Vector([2.5])))
    a, b = cur.fetchone()
    assert_bits_equal(a, np.array([1.5, -0.0], dtype=np.float32), "Vector binary")
    assert_bits_equal(b, np.array([2.5], dtype=np.float32), "Vector text")


conn.execute("DROP TABLE IF EXISTS client_items")
conn.close()
finish()
