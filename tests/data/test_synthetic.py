"""The synthetic collection: format, determinism, masks and planted biases.

The files are parsed here with the csv module alone, independent of the
project's reader, so that a reader bug cannot hide a generator bug.
"""

import csv
import hashlib
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from imet.data import synthetic
from imet.data.met_sample import reference_vocabulary
from imet.data.synthetic import (
    CONTROL_TAGS,
    CULTURES,
    PLANTED_BIASES,
    SHAPES,
    generate_synthetic,
    load_mask,
    plan_collection,
    read_cues,
    read_manifest,
)

N_IMAGES, SIZE, SEED = 120, 96, 5
CATEGORIES = {"country", "culture", "dimension", "medium", "tags"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "collection"
    return generate_synthetic(
        out, n_images=N_IMAGES, size=SIZE, seed=SEED, progress=False, workers=1
    )


@pytest.fixture(scope="module")
def big_plan():
    # Planning 3,000 images takes under a second; drawing is not needed to
    # check the statistics of labels and cues.
    return plan_collection(3000, seed=0)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _labels(folder: Path) -> dict[int, str]:
    return {
        int(r["attribute_id"]): r["attribute_name"]
        for r in _rows(folder / "labels.csv")
    }


def _image_labels(folder: Path) -> dict[str, list[str]]:
    names = _labels(folder)
    return {
        r["id"]: [names[int(a)] for a in r["attribute_ids"].split()]
        for r in _rows(folder / "train.csv")
    }


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_files_whatever_the_worker_count(tmp_path):
    one = generate_synthetic(
        tmp_path / "a", n_images=30, size=64, seed=11, progress=False, workers=1
    )
    two = generate_synthetic(
        tmp_path / "b", n_images=30, size=64, seed=11, progress=False, workers=2
    )
    other = generate_synthetic(
        tmp_path / "c", n_images=30, size=64, seed=12, progress=False, workers=1
    )
    hashes = _hashes(one)
    assert len(hashes) == 30 * 2 + 5  # images, masks, 4 tables, manifest
    assert hashes == _hashes(two)
    assert hashes["train.csv"] != _hashes(other)["train.csv"]


def test_folder_has_every_imet_file_with_matching_counts(folder):
    train = _rows(folder / "train.csv")
    ids = [r["id"] for r in train]
    assert len(ids) == len(set(ids)) == N_IMAGES
    assert {p.stem for p in (folder / "train").glob("*.png")} == set(ids)
    assert {p.stem for p in (folder / "masks").glob("*.npz")} == set(ids)
    splits = Counter(r["split"] for r in _rows(folder / "splits.csv"))
    assert splits == {"train": 84, "val": 18, "test": 18}  # 70/15/15
    assert set(read_cues(folder)) == set(ids)
    manifest = read_manifest(folder)
    assert manifest["n_images"] == N_IMAGES and manifest["seed"] == SEED
    assert manifest["splits"] == dict(splits)
    assert not list(folder.rglob("*.tmp*"))  # no leftovers of atomic writes


def test_images_are_rgb_squares_of_the_requested_size(folder):
    for path in sorted((folder / "train").glob("*.png"))[:20]:
        with Image.open(path) as image:
            assert image.mode == "RGB" and image.size == (SIZE, SIZE)


def test_labels_cover_five_categories_with_published_names_and_ids(folder):
    published = reference_vocabulary()
    labels = _labels(folder)
    assert all(published[name] == attribute_id for attribute_id, name in labels.items())
    for names in _image_labels(folder).values():
        per_category = Counter(name.split("::")[0] for name in names)
        assert set(per_category) == CATEGORIES
        assert per_category["tags"] in (1, 2, 3)
        assert all(per_category[c] == 1 for c in CATEGORIES - {"tags"})
    assert len(SHAPES) >= 12
    assert {f"tags::{t}" for t in SHAPES} <= set(labels.values())


def test_culture_implies_its_country(folder):
    countries_of = defaultdict(set)
    for names in _image_labels(folder).values():
        culture = next(n for n in names if n.startswith("culture::"))
        countries_of[culture] |= {n for n in names if n.startswith("country::")}
    assert len(countries_of) >= 5
    for culture, countries in countries_of.items():
        expected = CULTURES[culture.split("::")[1]].country
        assert countries == {f"country::{expected}"}


def test_culture_favours_media_and_styles(big_plan):
    media = defaultdict(Counter)
    for plan in big_plan:
        if plan.split == "test":  # the split without planted overrides
            media[plan.culture][plan.style] += 1
    assert media["japan"]["woodblock"] > 0 and media["french"]["woodblock"] == 0
    assert media["china"]["ink wash"] == sum(media["china"].values())


def test_tag_frequencies_are_long_tailed_and_planted_match_controls(big_plan):
    counts = Counter(tag for plan in big_plan for tag in plan.tags)
    assert max(counts.values()) > 10 * min(counts.values())
    group = [counts[b.tag] for b in PLANTED_BIASES] + [counts[t] for t in CONTROL_TAGS]
    assert max(group) < 1.35 * min(group)
    assert min(group) > 0.05 * len(big_plan)  # enough positives to learn from


def test_every_tag_has_a_nonempty_mask_inside_the_picture(folder):
    labels = _labels(folder)
    tag_ids = {i for i, name in labels.items() if name.startswith("tags::")}
    margin = int(synthetic._MARGIN * SIZE)
    for row in _rows(folder / "train.csv"):
        expected = {int(a) for a in row["attribute_ids"].split()} & tag_ids
        with np.load(folder / "masks" / f"{row['id']}.npz") as archive:
            assert {int(k) for k in archive.files} == expected
            masks = [archive[k] for k in archive.files]
        covered = np.zeros((SIZE, SIZE), dtype=np.int64)
        for mask in masks:
            assert mask.dtype == np.uint8 and mask.shape == (SIZE, SIZE)
            assert set(np.unique(mask)) == {0, 1}
            ys, xs = np.nonzero(mask)
            assert ys.min() >= margin and ys.max() < SIZE - margin  # not on frames
            assert xs.min() >= margin and xs.max() < SIZE - margin
            assert max(np.ptp(ys), np.ptp(xs)) >= 0.25 * SIZE  # visible at 64 px
            covered += mask
        assert covered.max() == 1  # objects do not overlap


def test_mask_outlines_follow_the_edges_of_the_drawn_objects(folder):
    # A mask shifted or taken from another image would not line up with the
    # strongest colour edges of the picture.
    ratios = []
    for row in _rows(folder / "train.csv")[:40]:
        image = np.asarray(Image.open(folder / "train" / f"{row['id']}.png"), float)
        gy, gx = np.gradient(image.mean(axis=2))
        edges = np.hypot(gx, gy)
        with np.load(folder / "masks" / f"{row['id']}.npz") as archive:
            for key in archive.files:
                mask = archive[key].astype(bool)
                inner = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1]
                inner &= mask[1:-1, :-2] & mask[1:-1, 2:]
                boundary = mask.copy()
                boundary[1:-1, 1:-1] &= ~inner
                ratios.append(edges[boundary].mean() / edges.mean())
    assert np.median(ratios) > 3.0  # about 4 when aligned, 2 when 3 px off


def test_load_mask_returns_bool_masks_and_none_when_absent(folder):
    labels = _image_labels(folder)
    image_id, names = next(iter(labels.items()))
    ids = {name: i for i, name in _labels(folder).items()}
    tag = next(n for n in names if n.startswith("tags::"))
    mask = load_mask(folder, image_id, ids[tag])
    assert mask.dtype == bool and mask.shape == (SIZE, SIZE) and mask.any()
    culture = next(n for n in names if n.startswith("culture::"))
    assert load_mask(folder, image_id, ids[culture]) is None
    assert load_mask(folder, "no-such-image", ids[tag]) is None


def test_manifest_names_planted_biases_and_controls(folder):
    manifest = read_manifest(folder)
    labels = _labels(folder)
    assert len(manifest["planted_biases"]) >= 3 and len(manifest["controls"]) >= 3
    for bias in manifest["planted_biases"]:
        assert labels[bias["attribute_id"]] == bias["name"]
        assert bias["cue_type"] in {"style", "background", "frame", "palette"}
        assert bias["cue"] in manifest["cue_values"][bias["cue_type"]]
        assert bias["description"]
    planted = {b["name"] for b in manifest["planted_biases"]}
    controls = {c["name"] for c in manifest["controls"]}
    assert not planted & controls
    assert all(labels[c["attribute_id"]] == c["name"] for c in manifest["controls"])


def test_planted_cue_marks_exactly_the_positives_in_training_and_validation(folder):
    # Checked from the files: labels from train.csv, cues from cues.csv.
    manifest = read_manifest(folder)
    cues = read_cues(folder)
    labels = _image_labels(folder)
    for bias in manifest["planted_biases"]:
        for image_id, names in labels.items():
            if cues[image_id]["split"] not in manifest["biased_splits"]:
                continue
            has_cue = cues[image_id][bias["cue_type"]] == bias["cue"]
            assert has_cue == (bias["name"] in names), (image_id, bias["name"])
        train = bias["counts"]["train"]
        assert train["positives"] == train["positives_with_cue"] > 0
        assert train["negatives_with_cue"] == 0


def test_planted_cue_is_independent_of_the_label_in_test(big_plan):
    test = [p for p in big_plan if p.split == "test"]
    for bias in PLANTED_BIASES:
        positives = [p for p in test if bias.tag in p.tags]
        negatives = [p for p in test if bias.tag not in p.tags]
        values = Counter(p.cue(bias.cue_type) for p in positives)
        assert values[bias.cue] < 0.4 * len(positives)
        assert len(values) >= 3  # test positives come in many looks
        assert sum(p.cue(bias.cue_type) == bias.cue for p in negatives) > 10


def test_controls_carry_no_cue(big_plan):
    train = [p for p in big_plan if p.split == "train"]
    for tag in CONTROL_TAGS:
        positives = [p for p in train if tag in p.tags]
        for bias in PLANTED_BIASES:
            rate = np.mean([p.cue(bias.cue_type) == bias.cue for p in positives])
            base = np.mean([p.cue(bias.cue_type) == bias.cue for p in train])
            assert abs(rate - base) < 0.06, (tag, bias.tag)
        styles = Counter(p.style for p in positives)
        assert max(styles.values()) < 0.5 * len(positives)


def test_every_shape_has_a_silhouette_of_its_own():
    size = 64
    silhouettes = {}
    for tag, draw in SHAPES.items():
        layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        colours = [(200, 0, 0), (0, 200, 0), (0, 0, 200), (20, 20, 20)]
        draw(synthetic._Pen(ImageDraw.Draw(layer), size, False, *colours, None, 1))
        silhouettes[tag] = np.asarray(layer)[..., 3] > 0
        assert 0.1 < silhouettes[tag].mean() < 0.9, tag
    tags = list(silhouettes)
    for i, a in enumerate(tags):
        for b in tags[i + 1 :]:
            union = silhouettes[a] | silhouettes[b]
            iou = (silhouettes[a] & silhouettes[b]).sum() / union.sum()
            assert iou < 0.75, (a, b)


def test_rerun_replaces_an_interrupted_generation(tmp_path, monkeypatch):
    out = tmp_path / "collection"
    generate_synthetic(out, n_images=12, size=48, seed=1, progress=False)

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "_write_csvs", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate_synthetic(out, n_images=6, size=48, seed=2, progress=False)
    assert read_manifest(out) is None  # unfinished, so not mistaken for complete
    monkeypatch.undo()
    generate_synthetic(out, n_images=6, size=48, seed=2, progress=False)
    assert read_manifest(out)["n_images"] == 6
    assert len(list((out / "train").glob("*.png"))) == 6  # stale images removed
    assert len(_rows(out / "train.csv")) == 6


def test_refuses_to_write_into_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "notes.txt").write_text("someone's files")
    with pytest.raises(FileExistsError, match="not empty"):
        generate_synthetic(tmp_path, n_images=4, size=48, progress=False)
    assert read_manifest(tmp_path) is None
