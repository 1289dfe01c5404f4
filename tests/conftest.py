"""Fixtures shared by every test folder.

``tiny_collection``: a synthetic iMet-format collection (generated once per
test session). ``tiny_run``: a ``cnn`` trained on it for 2 epochs through the
``imet train`` command, complete with scores, thresholds, metrics and
embeddings. ``real_format_folder``: an iMet 2020-style folder built by hand
(JPEG files, hexadecimal ids, the full 2020 label list), data the project's own
generator did not make.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

# The tiny models gain nothing from intra-op threads, and one thread per
# process avoids oversubscribing the cores when DataLoader workers, torchrun
# processes or other test processes run at the same time.
torch.set_num_threads(1)

TINY_IMAGES = 160  # enough for every split to hold positives of most labels
TINY_SOURCE_SIZE = 64  # side of the generated images, pixels
TINY_RUN_SIZE = 32  # model input side of tiny_run, pixels
TINY_CNN = {"widths": [16, 32, 64]}  # a smaller cnn keeps tiny_run at seconds

# The hand-built folder's labels and the drawn cue that makes each learnable.
REAL_FORMAT_CUES = {
    "tags::boats": "blue triangle",
    "tags::flowers": "red disc",
    "tags::landscapes": "green lower half",
    "medium::oil on canvas": "yellow frame",
}


def tiny_train_args(data_dir: Path, run: Path, *extra: str) -> list[str]:
    """``imet train`` arguments of a seconds-long cnn run on CPU."""
    return [
        "train",
        "--data-dir",
        str(data_dir),
        "--run",
        str(run),
        "--model",
        "cnn",
        "--arch",
        json.dumps(TINY_CNN),
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--image-size",
        str(TINY_RUN_SIZE),
        "--lr",
        "3e-3",
        "--device",
        "cpu",
        "--num-workers",
        "0",
        *extra,
    ]


@pytest.fixture(scope="session")
def tiny_collection(tmp_path_factory) -> Path:
    from imet.data.synthetic import generate_synthetic

    out = tmp_path_factory.mktemp("tiny-collection") / "synthetic"
    return generate_synthetic(
        out, n_images=TINY_IMAGES, size=TINY_SOURCE_SIZE, seed=0, progress=False
    )


@pytest.fixture(scope="session")
def tiny_run(tiny_collection, tmp_path_factory) -> Path:
    from imet.cli import main

    run = tmp_path_factory.mktemp("tiny-run") / "cnn"
    assert main(tiny_train_args(tiny_collection, run)) == 0
    return run


def write_real_format_folder(root: Path, *, n_images: int = 72, seed: int = 0) -> Path:
    """An iMet 2020-format folder: the published labels.csv (3,474 labels),
    train.csv with 16-hex-digit ids, and JPEG images (a few grayscale or CMYK,
    as real collections have) whose drawn cues carry four of the labels."""
    from imet.data.reader import __file__ as reader_file

    source = Path(reader_file).with_name("imet2020_labels.csv")
    root.mkdir(parents=True)
    (root / "labels.csv").write_bytes(source.read_bytes())
    with open(source, newline="", encoding="utf-8") as handle:
        id_of = {
            row["attribute_name"]: row["attribute_id"] for row in csv.DictReader(handle)
        }
    rng = np.random.default_rng(seed)
    (root / "train").mkdir()
    rows = []
    for i in range(n_images):
        image_id = f"{rng.integers(0, 2**63):016x}"
        names = [n for n in REAL_FORMAT_CUES if rng.random() < 0.4]
        image = _draw_cues(names, rng)
        mode = ("L", "CMYK", "RGB")[min(i, 2)]  # one grayscale, one CMYK file
        image.convert(mode).save(root / "train" / f"{image_id}.jpg", quality=90)
        rows.append((image_id, " ".join(id_of[n] for n in names)))
    with open(root / "train.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "attribute_ids"])
        writer.writerows(rows)
    return root


def _draw_cues(names: list[str], rng: np.random.Generator) -> Image.Image:
    width, height = int(rng.integers(56, 80)), int(rng.integers(48, 72))
    noise = rng.integers(90, 160, size=(height, width, 3), dtype=np.uint8)
    image = Image.fromarray(noise)
    draw = ImageDraw.Draw(image)
    if "tags::landscapes" in names:
        draw.rectangle([0, height // 2, width, height], fill=(40, 160, 60))
    if "tags::boats" in names:
        x = int(rng.integers(0, width // 2))
        draw.polygon([(x, height - 8), (x + 24, height - 8), (x + 12, 8)], fill="blue")
    if "tags::flowers" in names:
        x, y = int(rng.integers(8, width - 24)), int(rng.integers(4, height - 24))
        draw.ellipse([x, y, x + 18, y + 18], fill=(220, 30, 30))
    if "medium::oil on canvas" in names:
        draw.rectangle([0, 0, width - 1, height - 1], outline=(230, 210, 40), width=5)
    return image


@pytest.fixture(scope="session")
def real_format_folder(tmp_path_factory) -> Path:
    return write_real_format_folder(tmp_path_factory.mktemp("real-format") / "imet")
