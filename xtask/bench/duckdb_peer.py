"""The benchmark's peer: DuckDB answering the same questions as a_tabulate.mds,
b_regress.mds and c_collapse_merge.mds on the same Parquet files, in one process per run. Prints one JSON object of
seconds per script. The regression is DuckDB's one aggregation pass for X'X and X'y, a NumPy
solve, and a second pass for the residual sum of squares, as the engine does."""

import json
import sys
import time

import duckdb
import numpy as np

data = sys.argv[1]
day = 18992  # 2021-12-31

def source(variable, name, dated=False, on=day):
    where = f" WHERE start_epoch_days <= {on} AND (stop_epoch_days IS NULL OR stop_epoch_days >= {on})" if dated else ""
    return f"(SELECT unit_id, value AS {name} FROM read_parquet('{data}/{variable}/*.parquet'){where})"

BASE = f"""
p AS (
  SELECT s.unit_id, sex, birth, wage, 2021 - trunc(birth / 100) AS age
  FROM {source('BEFOLKNING_KJOENN', 'sex')} s
  LEFT JOIN {source('BEFOLKNING_FOEDSELS_AAR_MND', 'birth')} USING (unit_id)
  LEFT JOIN {source('INNTEKT_WLONN', 'wage', True)} USING (unit_id)
)"""

def clamp(x, lo="lo", hi="hi"):
    # DuckDB's greatest/least skip NULLs: keep a missing value missing, as the engine does.
    return f"CASE WHEN {x} IS NULL THEN NULL ELSE least(greatest({x}, {lo}), {hi}) END"

TABULATE = """, b AS (SELECT quantile_cont(wage, 0.01) AS lo, quantile_cont(wage, 0.99) AS hi FROM p)
SELECT sex, count(*) AS n, avg(""" + clamp("wage") + """) AS mean_wage FROM p, b GROUP BY sex ORDER BY sex"""

def a(con):
    return con.execute("WITH " + BASE + TABULATE).fetchall()

def b(con):
    con.execute(f"""CREATE OR REPLACE TEMP TABLE q AS
      WITH {BASE}
      SELECT p.*, age * age AS age2, CASE WHEN sex = '2' THEN 1.0 ELSE 0.0 END AS woman, capital, wealth
      FROM p
      LEFT JOIN {source('INNTEKT_WKAPINNT', 'capital', True)} USING (unit_id)
      LEFT JOIN {source('INNTEKT_BRUTTOFORMUE', 'wealth', True)} USING (unit_id)""")
    table = con.execute("WITH p AS (SELECT * FROM q)" + TABULATE).fetchall()
    xs = ["age", "age2", "woman", "capital", "wealth", "1.0"]
    complete = "wage IS NOT NULL AND age IS NOT NULL AND capital IS NOT NULL AND wealth IS NOT NULL"
    sums = [f"sum(({x}) * ({y}))" for i, x in enumerate(xs) for y in xs[: i + 1]]
    sums += [f"sum(({x}) * wage)" for x in xs]
    row = con.execute(f"SELECT {', '.join(sums)}, count(*) FROM q WHERE {complete}").fetchone()
    k = len(xs)
    xtx = np.zeros((k, k))
    at = 0
    for i in range(k):
        for j in range(i + 1):
            xtx[i, j] = xtx[j, i] = float(row[at])
            at += 1
    xty = np.array([float(v) for v in row[at : at + k]])
    n = row[-1]
    beta = np.linalg.solve(xtx, xty)
    fitted = " + ".join(f"({float(b)!r}) * ({x})" for b, x in zip(beta, xs))
    rss = con.execute(f"SELECT sum(power(wage - ({fitted}), 2)) FROM q WHERE {complete}").fetchone()[0]
    se = np.sqrt(np.diag(np.linalg.inv(xtx)) * rss / (n - k))
    return table, beta, se

def c(con):
    # collapse (sum) wage (count) wage by famnr, merge back on famnr, tabulate sex with the
    # family wage coded at its own P1/P99 among persons.
    return con.execute(f"""
      WITH p AS (
        SELECT s.unit_id, sex, famnr, wage
        FROM {source('BEFOLKNING_KJOENN', 'sex')} s
        LEFT JOIN {source('BEFOLKNING_REGSTAT_FAMNR', 'famnr', True, 18628)} USING (unit_id)
        LEFT JOIN {source('INNTEKT_WLONN', 'wage', True)} USING (unit_id)
      ),
      b AS (SELECT quantile_cont(wage, 0.01) AS lo, quantile_cont(wage, 0.99) AS hi FROM p),
      f AS (
        SELECT famnr, coalesce(sum({clamp('wage')}), 0) AS family_wage, count(wage) AS earners
        FROM p, b WHERE famnr IS NOT NULL GROUP BY famnr
      ),
      m AS (SELECT p.sex, f.family_wage, f.earners FROM p LEFT JOIN f USING (famnr)),
      b2 AS (SELECT quantile_cont(family_wage, 0.01) AS lo, quantile_cont(family_wage, 0.99) AS hi FROM m)
      SELECT sex, count(*), avg({clamp('family_wage')}) FROM m, b2
      GROUP BY sex ORDER BY sex""").fetchall()

out = {}
for name, query in [("a_tabulate", a), ("b_regress", b), ("c_collapse_merge", c)]:
    con = duckdb.connect()
    started = time.perf_counter()
    query(con)
    out[name] = time.perf_counter() - started
    con.close()
print(json.dumps(out))
