"""Read an iMet-format folder: ``labels.csv``, ``train.csv`` and an image folder.

The format, exactly as published for the FGVC 2019-2021 competitions:

- ``labels.csv``: ``attribute_id,attribute_name``; names are ``category::value``
  (2019: ``culture`` and ``tag``; 2020/2021: ``country``, ``culture``,
  ``dimension``, ``medium``, ``tags``). Names may hold quotes, commas,
  semicolons and parentheses, quoted the CSV way.
- ``train.csv``: ``id,attribute_ids`` with the label ids space-separated.
- ``train/{id}.png`` or ``train/{id}.jpg`` (``.jpeg`` too).

Real folders are damaged in many small ways. The reader never fails on one bad
item and never changes a label silently: each problem is counted in a
:class:`~imet.data.check.ProblemReport` with examples, and the item is skipped
or kept as :data:`~imet.data.check.PROBLEM_KINDS` says. It raises
:class:`DataError` only when the folder cannot be used at all.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import logging
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import scipy.sparse
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm.auto import tqdm

from imet.data.check import ProblemReport

_logger = logging.getLogger(__name__)

# Refuse images above this many pixels: a 90-megapixel RGB image already takes
# 270 MB decoded, and a crafted file can claim far more (decompression bomb).
DEFAULT_MAX_PIXELS = 90_000_000
# Image file suffixes in order of preference when an id has several files.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
LABELS_HEADER = ["attribute_id", "attribute_name"]
TRAIN_HEADER = ["id", "attribute_ids"]
# Below this many images a thread pool costs more than it saves.
MIN_PARALLEL_ITEMS = 200

T = TypeVar("T")
R = TypeVar("R")


class DataError(ValueError):
    """The folder cannot be used; ``problems`` holds everything found so far."""

    def __init__(self, message: str, problems: ProblemReport | None = None):
        super().__init__(message)
        self.problems = problems if problems is not None else ProblemReport()


class ImageError(Exception):
    """One image cannot be used. ``kind`` is a problem kind of the report."""

    def __init__(self, message: str, kind: str = "unreadable_image"):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class LabelVocabulary:
    """The label columns, in ``labels.csv`` order."""

    ids: np.ndarray  # (L,) int64 attribute ids
    names: list[str]  # full names, "category::value"
    categories: list[str]  # per label: the text before "::"
    column_of: dict[int, int] = field(repr=False)  # attribute id -> column

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[int, str]]) -> LabelVocabulary:
        pairs = list(pairs)
        ids = np.array([attribute_id for attribute_id, _ in pairs], dtype=np.int64)
        names = [name for _, name in pairs]
        return cls(
            ids=ids,
            names=names,
            categories=[label_category(name) for name in names],
            column_of={int(a): column for column, a in enumerate(ids)},
        )

    def category_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for category in self.categories:
            counts[category] = counts.get(category, 0) + 1
        return counts


def label_category(name: str) -> str:
    """``culture::french`` -> ``culture``; names without ``::`` are ``other``."""
    category, sep, _ = name.partition("::")
    return category.strip() if sep else "other"


@dataclass
class Collection:
    """The usable images of a folder and their labels, row-aligned."""

    data_dir: Path
    labels: LabelVocabulary
    ids: list[str]  # (n,) image ids, row order
    paths: list[Path]  # (n,) image file of each row
    targets: scipy.sparse.csr_matrix  # (n, L) uint8 0/1
    problems: ProblemReport
    max_pixels: int = DEFAULT_MAX_PIXELS  # the guard the images were checked with

    def __len__(self) -> int:
        return len(self.ids)


def read_labels(path: Path, problems: ProblemReport) -> LabelVocabulary:
    """Parse ``labels.csv``; a malformed file raises :class:`DataError` naming
    the line."""
    pairs: list[tuple[int, str]] = []
    line_of: dict[int, int] = {}
    first_id_of_name: dict[str, int] = {}
    for line, row in _csv_rows(path, LABELS_HEADER):
        if len(row) != 2:
            raise DataError(f"{path}: line {line}: expected 2 fields, found {row}")
        attribute_id = _parse_int(row[0], path, line, "attribute_id")
        name = row[1].strip()
        if attribute_id in line_of:
            raise DataError(
                f"{path}: line {line}: attribute_id {attribute_id} already "
                f"defined on line {line_of[attribute_id]}"
            )
        line_of[attribute_id] = line
        if "::" not in name:
            problems.add("labels_no_category", f"{attribute_id}: {name!r}")
        if name in first_id_of_name:
            problems.add(
                "duplicate_label_name",
                f"{name!r}: ids {first_id_of_name[name]} and {attribute_id}",
            )
        first_id_of_name.setdefault(name, attribute_id)
        pairs.append((attribute_id, name))
    if not pairs:
        raise DataError(f"{path}: no labels defined")
    return LabelVocabulary.from_pairs(pairs)


def read_train_rows(
    path: Path, labels: LabelVocabulary, problems: ProblemReport
) -> dict[str, list[int]]:
    """Parse ``train.csv`` into id -> sorted label columns, in file order.

    Unknown label ids are dropped from their row (the image keeps its other
    labels); conflicting duplicate rows drop the image."""
    rows: dict[str, list[int]] = {}
    conflicting: set[str] = set()
    for line, row in _csv_rows(path, TRAIN_HEADER):
        if len(row) != 2:
            raise DataError(f"{path}: line {line}: expected 2 fields, found {row}")
        image_id = row[0].strip()
        if not image_id:
            problems.add("empty_row", f"line {line}")
            continue
        columns = _row_columns(row[1], image_id, path, line, labels, problems)
        if image_id in rows:
            if rows[image_id] == columns:
                problems.add("duplicate_id", f"{image_id} (line {line})")
            else:
                problems.add("conflicting_duplicate", f"{image_id} (line {line})")
                conflicting.add(image_id)
            continue
        rows[image_id] = columns
    for image_id in conflicting:
        del rows[image_id]
    return rows


def _row_columns(
    field_text: str,
    image_id: str,
    path: Path,
    line: int,
    labels: LabelVocabulary,
    problems: ProblemReport,
) -> list[int]:
    columns: set[int] = set()
    for token in field_text.split():
        attribute_id = _parse_int(token, path, line, "attribute id")
        column = labels.column_of.get(attribute_id)
        if column is None:
            problems.add(
                "unknown_label", f"label id {attribute_id} on image {image_id}"
            )
        elif column in columns:
            problems.add("repeated_label", f"label id {attribute_id} on {image_id}")
        else:
            columns.add(column)
    return sorted(columns)


def _csv_rows(path: Path, header: list[str]) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, fields) after checking the header; skip blank lines."""
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark.
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            found = next(reader, None)
            if found is None or [f.strip().lower() for f in found] != header:
                raise DataError(
                    f"{path}: line 1: expected the header {','.join(header)!r}, "
                    f"found {','.join(found or [])!r}"
                )
            for row in reader:
                if row and any(f.strip() for f in row):
                    yield reader.line_num, row
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err})") from err
    except csv.Error as err:
        raise DataError(f"{path}: malformed CSV: {err}") from err


def _parse_int(text: str, path: Path, line: int, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise DataError(
            f"{path}: line {line}: {what} {text.strip()!r} is not an integer"
        ) from None


# ---------------------------------------------------------------- images


def _open_guarded(path: Path, max_pixels: int) -> Image.Image:
    """Open (header only) and refuse images above ``max_pixels``. Call inside
    :func:`quiet_bomb_warnings`."""
    try:
        image = Image.open(path)
    except Image.DecompressionBombError as err:
        raise ImageError(f"{path.name}: {err}", kind="too_large") from err
    except UnidentifiedImageError as err:
        kind = "empty_file" if _is_empty(path) else "unreadable_image"
        raise ImageError(f"{path.name}: not an image PIL can read", kind) from err
    except FileNotFoundError as err:
        raise ImageError(f"{path.name}: file not found", "missing_image") from err
    except OSError as err:
        raise ImageError(f"{path.name}: {err}") from err
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageError(
            f"{path.name}: {width}x{height} = {width * height:,} pixels, above "
            f"the limit of {max_pixels:,} (max_pixels)",
            kind="too_large",
        )
    return image


def _is_empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


@contextlib.contextmanager
def quiet_bomb_warnings() -> Iterator[None]:
    """Silence PIL's decompression-bomb warning: ``max_pixels`` decides here.
    Warning filters are process-wide and not thread-safe, so a pool's caller
    enters this once around the whole pool, never the worker threads."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def check_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Raise :class:`ImageError` unless ``path`` decodes; cheaply: JPEGs decode
    at 1/8 scale, PNGs have every chunk's checksum verified."""
    with quiet_bomb_warnings():
        _check_image(Path(path), max_pixels)


def _check_image(path: Path, max_pixels: int) -> None:
    if _is_empty(path):
        raise ImageError(f"{path.name}: 0 bytes", kind="empty_file")
    image = _open_guarded(path, max_pixels)
    try:
        with image:
            if image.format == "JPEG":
                # A reduced DCT decode still reads every byte, so truncation
                # is found at a fraction of the cost.
                eighth = (max(1, image.width // 8), max(1, image.height // 8))
                image.draft(None, eighth)
                image.load()
            elif image.format == "PNG":
                image.verify()
            else:
                image.load()
    except Exception as err:  # PIL raises many types for corrupt data
        raise ImageError(f"{path.name}: {err}") from err


def open_image(
    path: str | os.PathLike,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    short_side: int | None = None,
) -> Image.Image:
    """Decode one file into an RGB image, optionally resized so that its
    shorter side is ``short_side``. Raises :class:`ImageError` with a clear
    message for anything unusable (empty, corrupt, too many pixels)."""
    with quiet_bomb_warnings():
        return decode_image(Path(path), max_pixels, short_side)


def decode_image(path: Path, max_pixels: int, short_side: int | None) -> Image.Image:
    """:func:`open_image` for pool workers (see :func:`quiet_bomb_warnings`)."""
    if _is_empty(path):
        raise ImageError(f"{path.name}: 0 bytes", kind="empty_file")
    image = _open_guarded(path, max_pixels)
    try:
        with image:
            if short_side and image.format == "JPEG":
                # Let libjpeg downscale by 2/4/8 while decoding; the result
                # stays at least as large as the target.
                image.draft(None, short_side_size(image.size, short_side))
            image.load()
            rgb = to_rgb(ImageOps.exif_transpose(image))
    except ImageError:
        raise
    except Exception as err:  # PIL raises many types for corrupt data
        raise ImageError(f"{path.name}: {err}") from err
    return resize_short_side(rgb, short_side) if short_side else rgb


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB: 16-bit and 32-bit gray are scaled
    (not clipped), transparency is composited over white."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I") or mode == "F":
        return _gray_to_rgb(image)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        # Transparent areas become white paper, not the arbitrary colour
        # stored under alpha 0.
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    try:
        return image.convert("RGB")
    except ValueError as err:
        raise ImageError(f"cannot convert mode {mode} to RGB: {err}") from err


def _gray_to_rgb(image: Image.Image) -> Image.Image:
    values = np.asarray(image).astype(np.float64)  # (H, W)
    if image.mode.startswith("I;16") or (
        image.mode == "I" and values.min() >= 0 and values.max() <= 65535
    ):
        # 16-bit range: 65535 -> 255, rounding to nearest.
        gray = np.floor(values * (255 / 65535) + 0.5)
    else:
        # Floats or out-of-range ints have no fixed range: stretch min..max.
        low, high = float(values.min()), float(values.max())
        scale = 255 / (high - low) if high > low else 0.0
        gray = np.floor((values - low) * scale + 0.5)
    return Image.fromarray(gray.clip(0, 255).astype(np.uint8)).convert("RGB")


def short_side_size(size: tuple[int, int], short_side: int) -> tuple[int, int]:
    """(width, height) scaled so that the shorter side is ``short_side``."""
    width, height = size
    if width <= height:
        return short_side, max(1, round(height * short_side / width))
    return max(1, round(width * short_side / height)), short_side


def resize_short_side(image: Image.Image, short_side: int) -> Image.Image:
    target = short_side_size(image.size, short_side)
    if target == image.size:
        return image
    # reducing_gap: box-reduce by an integer factor first, then Lanczos; same
    # look as plain Lanczos on large downscales at a fraction of the time.
    return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


# ---------------------------------------------------------------- many images


def default_workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0))))


def map_images(
    func: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int | None = None,
    progress: bool = True,
    desc: str = "images",
) -> Iterator[R]:
    """``func`` over ``items`` in order, with a progress bar, on ``workers``
    threads (default: one per core when there are enough items).

    Threads, not processes: PIL releases the GIL while it decodes and resizes,
    so threads scale with cores without pickling images or re-importing the
    caller's main module. At most a few results per worker wait in memory."""
    items = list(items)
    if workers is None:
        workers = default_workers() if len(items) >= MIN_PARALLEL_ITEMS else 1
    with tqdm(total=len(items), desc=desc, unit="img", disable=not progress) as bar:
        if workers <= 1:
            for item in items:
                yield func(item)
                bar.update()
            return
        with ThreadPoolExecutor(workers) as pool:
            pending: deque[Future[R]] = deque()
            for item in items:
                pending.append(pool.submit(func, item))
                if len(pending) >= 4 * workers:
                    yield pending.popleft().result()
                    bar.update()
            while pending:
                yield pending.popleft().result()
                bar.update()


def _check_one(path: Path, max_pixels: int) -> tuple[str, str] | None:
    try:
        _check_image(path, max_pixels)
    except ImageError as err:
        return err.kind, str(err)
    return None


# ---------------------------------------------------------------- the folder


def load_collection(
    data_dir: str | os.PathLike,
    *,
    image_dir: str = "train",
    csv_name: str = "train.csv",
    check_images: bool = True,
    progress: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
) -> Collection:
    """Read an iMet-format folder; see the module docstring.

    ``check_images`` decodes every image cheaply (:func:`check_image`) so that
    unusable files are reported and excluded now rather than mid-training.
    Raises :class:`DataError` (with the report) when the folder is unusable.
    """
    data_dir = Path(data_dir)
    problems = ProblemReport()
    labels_csv, train_csv, images = (
        data_dir / "labels.csv",
        data_dir / csv_name,
        data_dir / image_dir,
    )
    if not data_dir.is_dir():
        _fail(problems, f"{data_dir} is not a folder")
    for needed in (labels_csv, train_csv):
        if not needed.is_file():
            problems.fatal.append(f"{needed.name} not found in {data_dir}")
    if not images.is_dir():
        problems.fatal.append(f"image folder {image_dir}/ not found in {data_dir}")
    if problems.fatal:
        raise DataError("; ".join(problems.fatal), problems)
    try:
        labels = read_labels(labels_csv, problems)
        rows = read_train_rows(train_csv, labels, problems)
    except DataError as err:
        _fail(problems, str(err))
    ids, paths = _match_images(rows, images, problems)
    if check_images and ids:
        ids, paths = _check_images(ids, paths, max_pixels, workers, progress, problems)
    for image_id in ids:
        if not rows[image_id]:
            problems.add("no_labels", image_id)
    if not ids:
        _fail(problems, f"no usable images in {images}")
    targets = _targets(ids, rows, len(labels))
    _logger.info(
        "%s: %d usable images, %d labels, %d problem kinds",
        data_dir,
        len(ids),
        len(labels),
        len(problems.counts),
    )
    return Collection(data_dir, labels, ids, paths, targets, problems, max_pixels)


def _fail(problems: ProblemReport, reason: str):
    problems.fatal.append(reason)
    raise DataError(reason, problems)


def _match_images(
    rows: dict[str, list[int]], image_dir: Path, problems: ProblemReport
) -> tuple[list[str], list[Path]]:
    """Pair rows with files from one listing of the folder (no stat per id)."""
    files: dict[str, list[str]] = {}
    with os.scandir(image_dir) as entries:
        for entry in entries:
            stem, suffix = os.path.splitext(entry.name)
            if suffix.lower() in IMAGE_SUFFIXES:
                files.setdefault(stem, []).append(entry.name)
    rank = {suffix: i for i, suffix in enumerate(IMAGE_SUFFIXES)}
    ids, paths = [], []
    for image_id in rows:
        names = files.get(image_id)
        if not names:
            problems.add("missing_image", f"{image_id} (no {image_id}.png/.jpg)")
            continue
        names.sort(key=lambda n: (rank[os.path.splitext(n)[1].lower()], n))
        if len(names) > 1:
            problems.add("ambiguous_image", f"{', '.join(names)}: using {names[0]}")
        ids.append(image_id)
        paths.append(image_dir / names[0])
    for stem in sorted(files.keys() - rows.keys()):
        problems.add("unlisted_image", files[stem][0])
    return ids, paths


def _check_images(
    ids: list[str],
    paths: list[Path],
    max_pixels: int,
    workers: int | None,
    progress: bool,
    problems: ProblemReport,
) -> tuple[list[str], list[Path]]:
    check = functools.partial(_check_one, max_pixels=max_pixels)
    kept_ids, kept_paths = [], []
    results = map_images(
        check, paths, workers=workers, progress=progress, desc="checking images"
    )
    with quiet_bomb_warnings():
        for image_id, path, failure in zip(ids, paths, results, strict=True):
            if failure is None:
                kept_ids.append(image_id)
                kept_paths.append(path)
            else:
                kind, message = failure
                problems.add(kind, message)
    return kept_ids, kept_paths


def _targets(
    ids: list[str], rows: dict[str, list[int]], n_labels: int
) -> scipy.sparse.csr_matrix:
    lengths = np.fromiter((len(rows[i]) for i in ids), dtype=np.int64, count=len(ids))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.fromiter(
        (c for i in ids for c in rows[i]), dtype=np.int32, count=int(indptr[-1])
    )
    data = np.ones(len(indices), dtype=np.uint8)
    return scipy.sparse.csr_matrix(
        (data, indices, indptr), shape=(len(ids), n_labels), dtype=np.uint8
    )
