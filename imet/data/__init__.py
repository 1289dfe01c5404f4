"""Reading, checking, splitting and caching iMet-format collections.

Importing this package does not import torch: :class:`ImageDataset` is loaded
from :mod:`imet.data.dataset` on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imet.data.cache import ImageCache, SourceImages
from imet.data.check import ProblemReport, collection_stats
from imet.data.reader import (
    DEFAULT_MAX_PIXELS,
    Collection,
    DataError,
    ImageError,
    LabelVocabulary,
    load_collection,
    open_image,
)
from imet.data.splits import load_or_make_splits, make_splits

if TYPE_CHECKING:
    from imet.data.dataset import ImageDataset

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "Collection",
    "DataError",
    "ImageCache",
    "ImageDataset",
    "ImageError",
    "LabelVocabulary",
    "ProblemReport",
    "SourceImages",
    "collection_stats",
    "load_collection",
    "load_or_make_splits",
    "make_splits",
    "open_image",
]


def __getattr__(name: str):
    # torch takes seconds to import; only the training path needs the dataset.
    if name == "ImageDataset":
        from imet.data.dataset import ImageDataset

        return ImageDataset
    raise AttributeError(f"module 'imet.data' has no attribute {name!r}")
