"""Top-10 similar-image search among 150,000 stored embeddings.

Prints milliseconds per query for the index (float16 scan with an exact
float32 re-score of a shortlist), for a plain float32 matrix-vector product
with ``np.argpartition``, and for the naive baseline (full ``np.argsort``),
all measured in this run, with the ratios against the baseline.

    python benchmarks/similarity.py [--rows 150000] [--queries 30]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from imet.similarity import SimilarityIndex


def _time_ms(fn, queries) -> float:
    fn(queries[0])  # warm caches and thread pools
    start = time.perf_counter()
    for q in queries:
        fn(q)
    return (time.perf_counter() - start) / len(queries) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=150_000)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{args.rows} embeddings, top-{args.k}, {args.queries} queries each")
    print(
        f"{'D':>5} {'index ms':>9} {'argpartition ms':>16} {'argsort ms':>11} "
        f"{'index speed-up':>15} {'argpartition speed-up':>22}"
    )
    for dim in (256, 1280):
        e = rng.standard_normal((args.rows, dim), dtype=np.float32)
        e /= np.linalg.norm(e, axis=1, keepdims=True)
        index = SimilarityIndex(np.arange(args.rows).astype(str), e)
        queries = [
            e[i] + 0.2 * rng.standard_normal(dim, dtype=np.float32)
            for i in rng.integers(args.rows, size=args.queries)
        ]
        k = args.k

        def partial(q, e=e, k=k):
            s = e @ q
            top = np.argpartition(-s, k - 1)[:k]
            return top[np.argsort(-s[top])]

        def naive(q, e=e, k=k):
            return np.argsort(-(e @ q))[:k]

        for q in queries[:5]:  # the three agree on the neighbours
            assert [n.row for n in index.query(q, k)] == list(
                naive(q / np.linalg.norm(q))
            )
        t_index = _time_ms(lambda q, index=index, k=k: index.query(q, k), queries)
        t_part = _time_ms(partial, queries)
        t_naive = _time_ms(naive, queries)
        print(
            f"{dim:>5} {t_index:>9.1f} {t_part:>16.1f} {t_naive:>11.1f} "
            f"{t_naive / t_index:>14.1f}x {t_naive / t_part:>21.1f}x"
        )


if __name__ == "__main__":
    main()
