"""Saliency latency per method and model on CPU, at the demo input size.

For every model of the demo (cnn, efficientnet-lite0, vit) and every
saliency method, the median wall time of one map for one image, and the
SmoothGrad speed-up from sending the noisy copies through the model in one
batch instead of one at a time, measured in the same run. Models are freshly
initialised (latency does not depend on the weights).

    python benchmarks/explain.py [--image-size 64] [--repeats 3] [--samples 16]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import torch

from imet.explain.methods import (
    METHODS,
    MethodUnsupported,
    SmoothGradConfig,
    run_method,
    smoothgrad,
)
from imet.models import build_model

MODELS = {"cnn": None, "efficientnet-lite0": None, "vit": {"size": "small"}}


def _median_seconds(fn, repeats: int) -> float:
    fn()  # first call pays for lazy imports and allocator warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _bench_model(name: str, arch, args) -> tuple[list[str], tuple[float, float]]:
    torch.manual_seed(0)
    model = build_model(name, args.labels, image_size=args.image_size, arch=arch)
    model.eval()
    x = torch.randn(1, 3, args.image_size, args.image_size)
    cells = []
    for method in METHODS:
        try:
            seconds = _median_seconds(
                functools.partial(run_method, method, model, x, 0), args.repeats
            )
            cells.append(f"{seconds * 1000:>13.0f}")
        except MethodUnsupported:
            cells.append(f"{'n/a':>13}")
    xg = x.clone().requires_grad_(True)
    batched, looped = (
        _median_seconds(
            functools.partial(
                smoothgrad,
                model,
                xg,
                0,
                SmoothGradConfig(samples=args.samples, batch_size=batch),
            ),
            args.repeats,
        )
        for batch in (args.samples, 1)
    )
    return cells, (batched, looped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=16, help="SmoothGrad copies")
    parser.add_argument("--labels", type=int, default=100)
    args = parser.parse_args()
    print(
        f"CPU, {torch.get_num_threads()} threads, input {args.image_size} px, "
        f"{args.labels} labels, median of {args.repeats}; ms per map"
    )
    print(f"{'model':<20}" + "".join(f"{m[:12]:>13}" for m in METHODS))
    speedups = {}
    for name, arch in MODELS.items():
        cells, speedups[name] = _bench_model(name, arch, args)
        print(f"{name:<20}" + "".join(cells))
    print(f"\nSmoothGrad, {args.samples} noisy copies: batched vs one at a time")
    for name, (batched, looped) in speedups.items():
        print(
            f"{name:<20} batched {batched * 1000:7.0f} ms  one-at-a-time "
            f"{looped * 1000:7.0f} ms  speed-up {looped / batched:4.1f}x"
        )


if __name__ == "__main__":
    main()
