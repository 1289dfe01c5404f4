"""Build small iMet-format folders in tmp_path for the data tests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

LABELS = [
    (0, "country::france"),
    (1, "culture::french"),
    (2, "medium::oil on canvas"),
    (3, 'medium::porcelain with "powder-blue" glaze'),
    (4, "tags::men, women; (and) children"),
    (5, "dimension::large"),
]


def gradient_image(width: int, height: int, seed: int = 0) -> Image.Image:
    """An RGB image with structure in both directions, so resizing matters."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack(
        [x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x ^ y) % 256],
        axis=-1,
    ).astype(np.uint8)
    noise = rng.integers(0, 20, size=pixels.shape, dtype=np.uint8)
    return Image.fromarray(pixels + noise)


def write_folder(
    root: Path,
    rows: list[tuple[str, str]],
    images: dict[str, Image.Image | bytes],
    *,
    labels: list[tuple[int, str]] = LABELS,
    suffix: str = ".png",
) -> Path:
    """labels.csv, train.csv with ``rows`` (id, attribute_ids) and train/
    holding ``images`` (id or file name -> PIL image or raw bytes)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["attribute_id", "attribute_name"])
        writer.writerows(labels)
    with open(root / "train.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "attribute_ids"])
        writer.writerows(rows)
    image_dir = root / "train"
    image_dir.mkdir(exist_ok=True)
    for name, content in images.items():
        file_name = name if "." in name else name + suffix
        if isinstance(content, bytes):
            (image_dir / file_name).write_bytes(content)
        else:
            content.save(image_dir / file_name)
    return root


@pytest.fixture
def good_folder(tmp_path: Path) -> Path:
    """Eight usable images, each label on at least one image."""
    rows = [
        ("a0", "0 1 2"),
        ("a1", "0 1"),
        ("a2", "2 3"),
        ("a3", "4"),
        ("a4", "0 4 5"),
        ("a5", "1 2"),
        ("a6", "3 5"),
        ("a7", "0 2"),
    ]
    sizes = [
        (40, 30),
        (30, 40),
        (50, 50),
        (64, 20),
        (20, 64),
        (33, 47),
        (47, 33),
        (8, 9),
    ]
    images = {
        image_id: gradient_image(w, h, seed=i)
        for i, ((image_id, _), (w, h)) in enumerate(zip(rows, sizes, strict=True))
    }
    return write_folder(tmp_path / "good", rows, images)
