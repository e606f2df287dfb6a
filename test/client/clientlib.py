"""What the client tests share: the check registry, bit-exact comparison of
float arrays, the connection, reading rows back, expected errors, the summary.

Imported by test_pgvector_client.py and test_halfvec_client.py, which
test/run_all.sh runs as scripts from this folder (so it is on sys.path).
"""
import sys
import traceback

import numpy as np
import psycopg

RESULTS = []


def check(name):
    """Run the decorated function now as one check; record and print its result."""
    def deco(fn):
        try:
            fn()
        except Exception:  # noqa: BLE001 - report every failure and go on
            RESULTS.append((name, False))
            print(f"FAIL {name}")
            traceback.print_exc(file=sys.stdout)
        else:
            RESULTS.append((name, True))
            print(f"ok   {name}")
        return fn

    return deco


def bits(a, dtype):
    """Values as dtype's (float32 or float16) bit patterns, so -0.0 != 0.0."""
    a = np.ascontiguousarray(np.asarray(a, dtype=dtype))
    return a.view(np.uint16 if a.itemsize == 2 else np.uint32)


def assert_bits_match(got, want, dtype, what):
    """got and want hold the same dtype values to the bit; names the first that differs."""
    g, w = bits(got, dtype), bits(want, dtype)
    assert g.shape == w.shape, f"{what}: shape {g.shape} != {w.shape}"
    if not np.array_equal(g, w):
        i = int(np.nonzero(g != w)[0][0])
        hexw = 2 * g.itemsize
        raise AssertionError(
            f"{what}: element {i}: got {np.asarray(got)[i]!r} ({g[i]:0{hexw}x}), "
            f"want {np.asarray(want)[i]!r} ({w[i]:0{hexw}x})"
        )


def connect(dbname=None):
    """An autocommit connection (libpq's environment; dbname overrides PGDATABASE), warnings only."""
    conn = psycopg.connect("", autocommit=True, **({"dbname": dbname} if dbname else {}))
    conn.execute("SET client_min_messages = warning")
    return conn


def print_versions(conn):
    print(f"connected: {conn.info.parameter_status('server_version')}, "
          f"psycopg {psycopg.__version__}, numpy {np.__version__}")


def read_back(conn, table, ids, binary):
    """{id: v} of table's rows with these ids, as text or binary results."""
    cur = conn.cursor(binary=binary)
    cur.execute(f"SELECT id, v FROM {table} WHERE id = ANY(%s) ORDER BY id", (list(ids),))
    rows = cur.fetchall()
    assert cur.pgresult.fformat(1) == (1 if binary else 0), "result format not as requested"
    return dict(rows)


def expect_error(conn, sql, params, text, cls=psycopg.Error):
    """sql fails with a cls error whose message contains text; returns the error."""
    try:
        conn.execute(sql, params)
    except psycopg.Error as e:
        assert isinstance(e, cls), f"{sql}: {type(e).__name__}, not {cls.__name__}: {e}"
        assert text in str(e), f"{sql}: error {str(e)!r} lacks {text!r}"
        return e
    raise AssertionError(f"no error for {sql}")


def finish():
    """Print `N passed, M failed` and exit, 1 if any check failed."""
    n_pass = sum(1 for _, ok in RESULTS if ok)
    n_fail = len(RESULTS) - n_pass
    print(f"{n_pass} passed, {n_fail} failed")
    sys.exit(1 if n_fail else 0)
