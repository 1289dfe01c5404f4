"""Decode and resize every image once, so that an epoch never re-decodes a
full-size file.

The cache of one collection at one size lives in a folder (by default
``DATA_DIR/.imet-cache/s{short_side}/``) holding two files:

- ``pixels-{token}.u8``: every image's RGB pixels, (H, W, 3) uint8, one after
  the other; read through a memory map, so workers share the page cache.
- ``index.npz``: per image its id, source file name, size and mtime_ns (the
  fingerprint), byte offset, height and width, and the error message for an
  image that could not be decoded; plus the format version and settings.

A build reuses every entry whose source fingerprint is unchanged and decodes
only new or changed files, in a process pool when there are many. The pixel
file is complete before the index that points to it replaces the old one, so a
build interrupted at any point leaves the previous cache readable.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from imet.atomic import atomic_path
from imet.data.reader import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    decode_image,
    map_images,
    open_image,
    quiet_bomb_warnings,
)

if TYPE_CHECKING:
    from imet.data.reader import Collection

_logger = logging.getLogger(__name__)

# Bump when decoding or resizing changes: older caches are then rebuilt.
CACHE_VERSION = 1
INDEX = "index.npz"


def is_writable(directory: Path) -> bool:
    """Whether files can be created in ``directory`` (made if missing). Tries
    it, since permission bits say nothing for root or read-only mounts."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError:
        return False
    return True


def user_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "imet"


def fallback_dir(data_dir: Path) -> Path:
    """A per-folder place in the user cache for what a read-only data folder
    cannot hold (cache, split)."""
    resolved = Path(data_dir).resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    return user_cache_root() / f"{resolved.name}-{digest}"


def resolve_cache_dir(
    data_dir: Path, short_side: int, cache_dir: str | os.PathLike | None
) -> Path:
    """``cache_dir/s{short_side}`` when given (must be writable), else inside
    the data folder, else in the user cache."""
    leaf = f"s{short_side}"
    if cache_dir is not None:
        directory = Path(cache_dir) / leaf
        if not is_writable(directory):
            raise OSError(f"cache folder {directory} is not writable")
        return directory
    directory = Path(data_dir) / ".imet-cache" / leaf
    if is_writable(directory):
        return directory
    fallback = fallback_dir(data_dir) / leaf
    fallback.mkdir(parents=True, exist_ok=True)
    _logger.warning("%s is not writable; caching images in %s", directory, fallback)
    return fallback


def _decode(
    path: Path, short_side: int, max_pixels: int
) -> tuple[bytes, int, int, str]:
    """Worker: (pixels, height, width, error) of one resized image."""
    try:
        image = decode_image(path, max_pixels, short_side)
    except ImageError as err:
        return b"", 0, 0, str(err)
    return image.tobytes(), image.height, image.width, ""


class ImageCache:
    """Resized RGB images of a collection, row-aligned with it."""

    def __init__(self, directory: Path, index: dict[str, Any], rows: np.ndarray):
        self.directory = directory
        self.short_side = int(index["short_side"])
        self._pixels_path = directory / str(index["pixels"])
        entries = rows  # (n,) entry of the index for each collection row
        self.offsets = index["offsets"][entries]  # (n,) int64 byte offsets
        self.heights = index["heights"][entries]  # (n,) int32, 0 when failed
        self.widths = index["widths"][entries]  # (n,) int32
        self.errors = index["errors"][entries]  # (n,) str, "" when decoded
        self._pixels: np.ndarray | None = None

    @classmethod
    def build(
        cls,
        col: Collection,
        *,
        short_side: int = 192,
        cache_dir: str | os.PathLike | None = None,
        progress: bool = True,
        workers: int | None = None,
    ) -> ImageCache:
        """Open the cache of ``col`` at ``short_side``, decoding only the
        images that are new or changed since it was written."""
        if short_side < 1:
            raise ValueError(f"short_side must be positive, got {short_side}")
        directory = resolve_cache_dir(col.data_dir, short_side, cache_dir)
        settings = {
            "version": CACHE_VERSION,
            "short_side": short_side,
            "max_pixels": getattr(col, "max_pixels", DEFAULT_MAX_PIXELS),
        }
        names, sizes, mtimes = _fingerprints(col.paths)
        old = _read_index(directory, settings)
        reuse = _match_entries(old, names, sizes, mtimes)  # (n,) entry or -1
        if old is not None and (reuse >= 0).all():
            return cls(directory, old, reuse)
        _warn_if_short_of_disk(directory, int((reuse < 0).sum()), short_side)
        index = _write_cache(
            directory, col, old, reuse, settings, progress=progress, workers=workers
        )
        index.update(names=names, sizes=sizes, mtimes=mtimes)
        _save_index(directory, index)
        _remove_stale_pixels(directory, keep=str(index["pixels"]))
        cache = cls(directory, index, np.arange(len(col)))
        failed = int((cache.heights == 0).sum())
        if failed:
            _logger.warning(
                "%d images could not be decoded, e.g. %s",
                failed,
                cache.errors[cache.heights == 0][0],
            )
        return cache

    def __len__(self) -> int:
        return len(self.offsets)

    def get(self, row: int) -> Image.Image:
        """The cached RGB image of collection row ``row``."""
        height, width = int(self.heights[row]), int(self.widths[row])
        if height == 0:
            raise ImageError(str(self.errors[row]))
        if self._pixels is None:
            self._pixels = _open_pixels(self._pixels_path)
        start = int(self.offsets[row])
        flat = self._pixels[start : start + height * width * 3]
        # Copy out of the memory map: the image must outlive the mapping.
        return Image.fromarray(np.array(flat).reshape(height, width, 3))

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers reopen the memory map instead of pickling it.
        state = self.__dict__.copy()
        state["_pixels"] = None
        return state


def _warn_if_short_of_disk(directory: Path, n_new: int, short_side: int) -> None:
    # Raw pixels are large: 145,000 images at 192 px take about 21 GB.
    needed = n_new * short_side * short_side * 4  # 3 bytes at a 4:3 aspect
    free = shutil.disk_usage(directory).free
    _logger.info(
        "caching %d images in %s (about %.1f GB)", n_new, directory, needed / 1e9
    )
    if needed > free:
        _logger.warning(
            "the image cache needs about %.1f GB but %s has %.1f GB free; pass "
            "another cache_dir or a smaller short_side",
            needed / 1e9,
            directory,
            free / 1e9,
        )


def _open_pixels(path: Path) -> np.ndarray:
    if path.stat().st_size == 0:  # every image failed; mmap refuses 0 bytes
        return np.zeros(0, dtype=np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r")


def _fingerprints(paths: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    names, sizes, mtimes = [], [], []
    for path in paths:
        try:
            stat = path.stat()
            size, mtime = stat.st_size, stat.st_mtime_ns
        except OSError:  # decoded as a failure, re-tried on the next build
            size, mtime = -1, -1
        names.append(path.name)
        sizes.append(size)
        mtimes.append(mtime)
    return (
        np.array(names, dtype=str),
        np.array(sizes, dtype=np.int64),
        np.array(mtimes, dtype=np.int64),
    )


def _read_index(directory: Path, settings: dict[str, int]) -> dict[str, Any] | None:
    """The saved index if it matches ``settings`` and its pixel file is whole."""
    path = directory / INDEX
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            index = {key: saved[key] for key in saved.files}
        for key, value in settings.items():
            if int(index[key]) != value:
                _logger.info("cache %s was made with %s=%s", directory, key, index[key])
                return None
        pixels = directory / str(index["pixels"])
        needed = int((index["heights"].astype(np.int64) * index["widths"] * 3).sum())
        if not pixels.is_file() or pixels.stat().st_size != needed:
            _logger.warning("cache %s is incomplete; rebuilding", directory)
            return None
    except (OSError, ValueError, KeyError) as err:
        _logger.warning("cache index %s is unreadable (%s); rebuilding", path, err)
        return None
    return index


def _match_entries(
    old: dict[str, Any] | None,
    names: np.ndarray,
    sizes: np.ndarray,
    mtimes: np.ndarray,
) -> np.ndarray:
    """For each source, the old entry with the same fingerprint, else -1."""
    reuse = np.full(len(names), -1, dtype=np.int64)
    if old is None:
        return reuse
    entry_of = {
        (name, int(size), int(mtime)): i
        for i, (name, size, mtime) in enumerate(
            zip(old["names"], old["sizes"], old["mtimes"], strict=True)
        )
        if size >= 0
    }
    keys = zip(names, sizes.tolist(), mtimes.tolist(), strict=True)
    for row, key in enumerate(keys):
        reuse[row] = entry_of.get(key, -1)
    return reuse


def _write_cache(
    directory: Path,
    col: Collection,
    old: dict[str, Any] | None,
    reuse: np.ndarray,
    settings: dict[str, int],
    *,
    progress: bool,
    workers: int | None,
) -> dict[str, Any]:
    """Write a new pixel file in row order: copied entries from the old file,
    decoded ones for the rest. Returns the new index (without fingerprints)."""
    n = len(col)
    offsets = np.zeros(n, dtype=np.int64)
    heights = np.zeros(n, dtype=np.int32)
    widths = np.zeros(n, dtype=np.int32)
    errors = [""] * n
    todo = [col.paths[row] for row in np.flatnonzero(reuse < 0)]
    decode = functools.partial(
        _decode, short_side=settings["short_side"], max_pixels=settings["max_pixels"]
    )
    decoded = map_images(
        decode, todo, workers=workers, progress=progress, desc="caching images"
    )
    old_pixels = _open_pixels(directory / str(old["pixels"])) if old else None
    pixels_name = f"pixels-{uuid.uuid4().hex[:12]}.u8"
    with (
        quiet_bomb_warnings(),
        atomic_path(directory / pixels_name) as tmp,
        open(tmp, "wb") as out,
    ):
        position = 0
        for row in range(n):
            entry = reuse[row]
            if entry >= 0:
                height, width = int(old["heights"][entry]), int(old["widths"][entry])
                start = int(old["offsets"][entry])
                data = old_pixels[start : start + height * width * 3].tobytes()
                error = str(old["errors"][entry])
            else:
                data, height, width, error = next(decoded)
            offsets[row], heights[row], widths[row] = position, height, width
            errors[row] = error
            out.write(data)
            position += len(data)
    return {
        **settings,
        "pixels": pixels_name,
        "ids": np.array(col.ids, dtype=str),
        "offsets": offsets,
        "heights": heights,
        "widths": widths,
        "errors": np.array(errors, dtype=str),
    }


def _save_index(directory: Path, index: dict[str, Any]) -> None:
    with atomic_path(directory / INDEX) as tmp:
        np.savez(tmp, **{key: np.asarray(value) for key, value in index.items()})


def _remove_stale_pixels(directory: Path, keep: str) -> None:
    for path in directory.glob("pixels-*.u8"):
        if path.name != keep:
            path.unlink(missing_ok=True)


class SourceImages:
    """Decode the source file on every access: the uncached baseline, and the
    way to read a collection at full resolution (``short_side=None``)."""

    def __init__(self, col: Collection, short_side: int | None = None):
        self.paths = list(col.paths)
        self.short_side = short_side
        self.max_pixels = getattr(col, "max_pixels", DEFAULT_MAX_PIXELS)

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, row: int) -> Image.Image:
        return open_image(
            self.paths[row], max_pixels=self.max_pixels, short_side=self.short_side
        )
