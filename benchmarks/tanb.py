"""Speed of the label tree: learning against pgmpy, learning at iMet size,
exact inference throughput.

    .venv/bin/python benchmarks/tanb.py [--labels 3474 --images 142000 ...]

(a) learning the Chow-Liu tree with ``imet.tanb`` and with pgmpy's
    ``TreeSearch(...).estimate("chow-liu")`` on the same label matrix, at a size
    pgmpy finishes in seconds, as a ratio (and the two trees' total MI);
(b) reading a ``train.csv`` of iMet size and learning the full tree from it;
(c) exact inference on the full tree (sum-product marginals, max-product
    assignment), in images per second.

The label matrices are synthesised with iMet-like sparsity: a long-tailed
(Zipf) label popularity, about 6 labels per image, and groups of labels that
co-occur, so the mutual information has structure to find.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp


def synthetic_labels(n_images: int, n_labels: int, *, per_image: float, seed: int):
    """(n_images, n_labels) CSR 0/1 with Zipf popularity and co-occurring groups."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / (np.arange(n_labels) + 5.0) ** 1.1
    popularity /= popularity.sum()
    # Half of each image's labels come from its group of 40 related labels.
    n_groups = max(1, n_labels // 40)
    group = rng.integers(0, n_groups, size=n_images)
    members = rng.permutation(n_labels)[: n_groups * 40].reshape(n_groups, -1)
    counts = 1 + rng.poisson(per_image - 1, size=n_images)
    from_group = rng.binomial(counts, 0.5)
    rows_free = np.repeat(np.arange(n_images), counts - from_group)
    cols_free = rng.choice(n_labels, size=rows_free.size, p=popularity)
    rows_group = np.repeat(np.arange(n_images), from_group)
    slot = (rng.random(rows_group.size) ** 2 * members.shape[1]).astype(np.int64)
    cols_group = members[group[rows_group], slot]
    rows = np.concatenate([rows_free, rows_group])
    cols = np.concatenate([cols_free, cols_group])
    matrix = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.uint8), (rows, cols)),
        shape=(n_images, n_labels),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1
    return matrix


def timed(fn, *args, repeat: int = 1, **kwargs):
    best, out = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, out


def bench_pgmpy(n_labels: int, n_images: int, seed: int) -> None:
    from pgmpy.estimators import TreeSearch

    from imet.tanb import learn_network, pairwise_mutual_information

    matrix = synthetic_labels(n_images, n_labels, per_image=6, seed=seed)
    dense = matrix.toarray()
    frame = pd.DataFrame(dense, columns=[f"l{i}" for i in range(n_labels)])
    ours_s, network = timed(learn_network, matrix, repeat=5)
    pgmpy_s, dag = timed(
        lambda: TreeSearch(frame).estimate("chow-liu", show_progress=False)
    )
    mi = pairwise_mutual_information(matrix)
    column = {name: i for i, name in enumerate(frame.columns)}
    pgmpy_mi = sum(mi[column[u], column[v]] for u, v in dag.edges())
    ours_mi = sum(mi[network.parent[c], c] for c in network.order[1:])
    print(f"(a) Chow-Liu on {n_labels} labels x {n_images} images")
    print(f"    pgmpy TreeSearch (n_jobs=-1): {pgmpy_s * 1e3:10.1f} ms")
    print(f"    imet.tanb (tree + tables):    {ours_s * 1e3:10.3f} ms")
    print(f"    speed-up:                     {pgmpy_s / ours_s:10.0f}x")
    print(f"    total MI: imet {ours_mi:.9f}  pgmpy {pgmpy_mi:.9f} nats")


def bench_full(n_labels: int, n_images: int, seed: int):
    from imet.tanb import learn_network, read_train_csv

    matrix = synthetic_labels(n_images, n_labels, per_image=6, seed=seed)
    print(
        f"(b) {n_images} images x {n_labels} labels, "
        f"{matrix.nnz / n_images:.2f} labels per image, "
        f"{int((matrix.getnnz(axis=0) == 0).sum())} labels never used"
    )
    learn_s, network = timed(learn_network, matrix)
    print(f"    learn from the sparse matrix: {learn_s:8.2f} s (target < 10 s)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.csv"
        rows = np.split(matrix.indices, matrix.indptr[1:-1])
        pd.DataFrame(
            {
                "id": [f"{i:016x}" for i in range(n_images)],
                "attribute_ids": [" ".join(map(str, r)) for r in rows],
            }
        ).to_csv(path, index=False)
        read_s, labels = timed(read_train_csv, path)
    print(f"    read train.csv into CSR:      {read_s:8.2f} s")
    print(f"    read + learn:                 {read_s + learn_s:8.2f} s")
    print(
        f"    tree depth {int(network.depth().max())}, total MI {network.mi.sum():.3f}"
    )
    return network


def bench_inference(network, n_images: int, seed: int) -> None:
    from imet.tanb import TreeInference, tanb_screen, top_n

    rng = np.random.default_rng(seed)
    inference = TreeInference(network)
    log_lr = rng.normal(-2.0, 2.0, size=(n_images, network.n_labels))
    marg_s, _ = timed(inference.marginals, log_lr, repeat=2)
    map_s, _ = timed(inference.map_assignment, log_lr, repeat=2)
    print(f"(c) exact inference on the full tree ({network.n_labels} labels)")
    print(f"    sum-product marginals: {n_images / marg_s:10.0f} images/s")
    print(f"    max-product MAP:       {n_images / map_s:10.0f} images/s")
    print("    target >= 1,000 images/s")
    # The TANB step: the top 5 of scores that favour each image's true labels.
    truth = synthetic_labels(n_images, network.n_labels, per_image=6, seed=seed + 1)
    scores = np.clip(0.5 * truth.toarray() + 0.5 * rng.random(log_lr.shape), 0, 1)
    selected = top_n(scores, 5)
    screen_s, result = timed(
        tanb_screen, inference, log_lr, selected, keep_probability=0.3
    )
    print(
        f"    TANB step, top 5, one at a time: {n_images / screen_s:8.0f} images/s "
        f"({result.sweeps.mean():.2f} sweeps on average)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=int, default=3474)
    parser.add_argument("--images", type=int, default=142_000)
    parser.add_argument("--pgmpy-labels", type=int, default=40)
    parser.add_argument("--pgmpy-images", type=int, default=2000)
    parser.add_argument("--infer-images", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    bench_pgmpy(args.pgmpy_labels, args.pgmpy_images, args.seed)
    network = bench_full(args.labels, args.images, args.seed)
    bench_inference(network, args.infer_images, args.seed)


if __name__ == "__main__":
    main()
