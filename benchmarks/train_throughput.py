"""Training images per second of each model: image cache against decoding.

For every model, the same training steps (forward, loss, backward, AdamW) are
timed twice in one process: reading images from the decoded-image cache
(``imet.data.ImageCache``) and decoding the source files on every access
(``imet.data.SourceImages``), the way a loader without a cache works. The
ratio is the point: both sides run on the same machine in the same run.

    python benchmarks/train_throughput.py --data-dir artifacts/data/synthetic
    python benchmarks/train_throughput.py --make-synthetic 600 --image-size 64

Without ``--data-dir`` a synthetic collection is generated in a temporary
folder (``--make-synthetic`` images at ``--source-size`` pixels).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from imet.data import ImageCache, ImageDataset, SourceImages, load_collection
from imet.engine import label_pos_weight, make_optimizer, seed_everything
from imet.models import MODELS, build_model
from imet.transforms import train_transform


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, help="iMet-format folder")
    p.add_argument("--make-synthetic", type=int, default=600, help="images to make")
    p.add_argument("--source-size", type=int, default=256, help="made images, px")
    p.add_argument("--image-size", type=int, default=64, help="model input, px")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--batches", type=int, default=10, help="timed batches per side")
    p.add_argument("--num-workers", type=int, default=1)
    p.add_argument(
        "--models",
        nargs="+",
        default=["cnn", "efficientnet-lite0", "vit"],
        choices=sorted(MODELS),
    )
    return p.parse_args()


def images_per_second(model, dataset, args) -> float:
    """Training steps over ``args.batches`` batches after one warm-up batch."""
    loader = DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.num_workers,
        generator=torch.Generator().manual_seed(0),
    )
    optimizer = make_optimizer(model, 1e-3, 0.01)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=args.pos_weight)
    model.train()
    seen, start = 0, None
    batches = iter(loader)
    for step in range(args.batches + 1):
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(loader)
            x, y = next(batches)
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step == 0:  # the first batch pays for worker start-up and allocation
            start = time.perf_counter()
        else:
            seen += len(x)
    return seen / (time.perf_counter() - start)


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or make_collection(Path(tmp), args)
        col = load_collection(data_dir, progress=False)
        cache_side = round(args.image_size * 8 / 7)
        cache = ImageCache.build(col, short_side=cache_side, progress=False)
        source = SourceImages(col)  # full-size decode, resized by the transform
        rows = list(range(len(col)))
        args.pos_weight = label_pos_weight(col.targets.toarray(), 30.0)
        transform = train_transform(args.image_size)
        print(
            f"{len(col)} images in {data_dir}, input {args.image_size} px, batch "
            f"{args.batch_size}, {args.batches} batches, {args.num_workers} workers, "
            f"{torch.get_num_threads()} threads"
        )
        print(f"{'model':<20}{'cached img/s':>14}{'decoded img/s':>15}{'ratio':>8}")
        for name in args.models:
            rates = []
            for images in (cache, source):
                seed_everything(0)
                model = build_model(
                    name, len(col.labels.ids), image_size=args.image_size
                )
                dataset = ImageDataset(images, rows, col.targets, transform)
                rates.append(images_per_second(model, dataset, args))
            ratio = rates[0] / rates[1]
            print(f"{name:<20}{rates[0]:>14.1f}{rates[1]:>15.1f}{ratio:>7.2f}x")


def make_collection(root: Path, args: argparse.Namespace) -> Path:
    from imet.data.synthetic import generate_synthetic

    return generate_synthetic(
        root / "synthetic",
        n_images=args.make_synthetic,
        size=args.source_size,
        progress=False,
    )


if __name__ == "__main__":
    main()
