"""What is wrong with a collection, and what it contains.

:class:`ProblemReport` collects every problem the reader meets (a count and a
few examples per kind) so that nothing is skipped silently.
:func:`collection_stats` computes the figures ``imet data check`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from imet.data.reader import Collection

# Every kind of problem the reader reports, with what it did about it. The
# order is the order of the printed report.
PROBLEM_KINDS: dict[str, str] = {
    "labels_no_category": "label names without a 'category::' prefix "
    "(category 'other')",
    "duplicate_label_name": "label names defined under more than one id (kept)",
    "empty_row": "rows with an empty id (skipped)",
    "unknown_label": "label ids in the CSV that labels.csv does not define "
    "(that label dropped from the row, the image kept)",
    "repeated_label": "label ids repeated within one row (counted once)",
    "duplicate_id": "image ids listed again with the same labels (first row kept)",
    "conflicting_duplicate": "image ids listed again with different labels "
    "(image skipped: which row is right cannot be known)",
    "no_labels": "images without any known label (kept as all-zero rows)",
    "missing_image": "rows whose image file is missing (skipped)",
    "ambiguous_image": "ids with more than one image file, e.g. .png and .jpg "
    "(the first of .png, .jpg, .jpeg used)",
    "empty_file": "image files of 0 bytes (skipped)",
    "too_large": "images above the pixel limit, a decompression-bomb guard (skipped)",
    "unreadable_image": "files that are not readable images: truncated, "
    "corrupt or another format (skipped)",
    "unlisted_image": "image files that no CSV row names (ignored)",
}

# How many examples to keep per kind: enough to find the files, short to print.
MAX_EXAMPLES = 5


@dataclass
class ProblemReport:
    """Counts and examples per problem kind, plus the reasons a folder is
    unusable (``fatal``; empty when it can be used)."""

    counts: dict[str, int] = field(default_factory=dict)  # kind -> occurrences
    examples: dict[str, list[str]] = field(default_factory=dict)  # kind -> few
    fatal: list[str] = field(default_factory=list)  # why nothing can be used

    def add(self, kind: str, example: str | None = None, count: int = 1) -> None:
        if kind not in PROBLEM_KINDS:
            raise KeyError(f"unknown problem kind {kind!r}")
        self.counts[kind] = self.counts.get(kind, 0) + count
        shown = self.examples.setdefault(kind, [])
        if example is not None and len(shown) < MAX_EXAMPLES:
            shown.append(example)

    def count(self, kind: str) -> int:
        return self.counts.get(kind, 0)

    def merge(self, other: ProblemReport) -> None:
        for kind, n in other.counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + n
            shown = self.examples.setdefault(kind, [])
            room = MAX_EXAMPLES - len(shown)
            shown.extend(other.examples.get(kind, [])[:room])
        self.fatal.extend(other.fatal)

    def __bool__(self) -> bool:
        return bool(self.counts or self.fatal)

    def summary_lines(self) -> list[str]:
        """One line per problem kind (count, meaning, examples), fatal first."""
        lines = [f"FATAL: {reason}" for reason in self.fatal]
        for kind in PROBLEM_KINDS:
            n = self.counts.get(kind, 0)
            if not n:
                continue
            lines.append(f"{n:>8,}  {kind}: {PROBLEM_KINDS[kind]}")
            for example in self.examples.get(kind, []):
                lines.append(f"{'':>10}e.g. {example}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "fatal": list(self.fatal),
            "problems": {
                kind: {"count": n, "examples": self.examples.get(kind, [])}
                for kind, n in self.counts.items()
            },
        }


# Upper edges of the labels-per-image histogram; the last bin is open.
LABELS_PER_IMAGE_BINS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)


def collection_stats(col: Collection) -> dict[str, Any]:
    """The figures of ``imet data check``: label usage per category, labels
    per image and positives per label. Pure numbers, no printing."""
    targets = col.targets.tocsr()
    per_image = np.diff(targets.indptr)  # (n_images,) labels of each image
    per_label = np.asarray(targets.sum(axis=0)).ravel()  # (L,) positives
    categories = np.asarray(col.labels.categories)
    by_category = {}
    for category in dict.fromkeys(col.labels.categories):
        in_category = categories == category
        by_category[category] = {
            "labels": int(in_category.sum()),
            "labels_used": int((per_label[in_category] > 0).sum()),
            "positives": int(per_label[in_category].sum()),
        }
    histogram = {}
    top = LABELS_PER_IMAGE_BINS[-1] + 1
    for k in LABELS_PER_IMAGE_BINS:
        histogram[str(k)] = int((per_image == k).sum())
    histogram[f">={top}"] = int((per_image >= top).sum())
    while len(histogram) > 1 and histogram[next(reversed(histogram))] == 0:
        histogram.popitem()  # empty bins above the largest count say nothing
    has_rows = len(per_image) > 0
    return {
        "images": len(col.ids),
        "labels": len(col.labels),
        "by_category": by_category,
        "labels_per_image": {
            "mean": float(per_image.mean()) if has_rows else 0.0,
            "max": int(per_image.max()) if has_rows else 0,
            "histogram": histogram,
        },
        "positives_per_label": {
            "min": int(per_label.min()) if len(per_label) else 0,
            "median": float(np.median(per_label)) if len(per_label) else 0.0,
            "max": int(per_label.max()) if len(per_label) else 0,
            "fewer_than_5": int((per_label < 5).sum()),
            "zero": int((per_label == 0).sum()),
        },
    }
