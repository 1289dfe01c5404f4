"""Iterative stratified splits: the algorithm, its quality, and the saved file."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.sparse
from iterstrat.ml_stratifiers import IterativeStratification

from imet.data import DataError, load_collection, load_or_make_splits, make_splits
from imet.data import splits as splits_module
from imet.data.splits import hash_fold, iterative_stratification
from tests.data.conftest import gradient_image, write_folder


def _long_tailed_targets(n: int, n_labels: int, seed: int) -> scipy.sparse.csr_matrix:
    """Random 0/1 rows with a long-tailed label frequency and some empty rows."""
    rng = np.random.default_rng(seed)
    frequency = 1.0 / np.arange(1, n_labels + 1)
    frequency /= frequency.sum()
    rows, columns = [], []
    for row in range(n):
        k = rng.integers(0, 5)  # 0 labels on about a fifth of the rows
        chosen = rng.choice(n_labels, size=k, replace=False, p=frequency)
        rows += [row] * k
        columns += chosen.tolist()
    data = np.ones(len(rows), dtype=np.uint8)
    return scipy.sparse.csr_matrix((data, (rows, columns)), shape=(n, n_labels))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sparse_stratification_assigns_exactly_like_the_package(seed):
    targets = _long_tailed_targets(400, 60, seed)
    fractions = np.array([0.8, 0.1, 0.1])
    reference = IterativeStratification(
        labels=targets.toarray().astype(bool),
        r=fractions,
        random_state=np.random.RandomState(seed),
    )
    ours = iterative_stratification(targets, fractions, np.random.RandomState(seed))
    np.testing.assert_array_equal(ours, reference)


def test_same_seed_same_split_other_seed_other_split():
    targets = _long_tailed_targets(500, 40, 0)
    first = make_splits(targets, seed=7)
    np.testing.assert_array_equal(first, make_splits(targets, seed=7))
    assert (first != make_splits(targets, seed=8)).any()


def test_split_sizes_follow_fractions_and_labels_reach_train():
    targets = _long_tailed_targets(2000, 80, 3)
    folds = make_splits(targets, seed=0, fractions=(0.8, 0.1, 0.1))
    shares = np.bincount(folds, minlength=3) / len(folds)
    np.testing.assert_allclose(shares, [0.8, 0.1, 0.1], atol=0.01)
    positives = np.asarray(targets.sum(axis=0)).ravel()
    in_train = np.asarray(targets[folds == 0].sum(axis=0)).ravel()
    assert (in_train[positives >= 3] > 0).all()
    # Each label's train share stays near 80% where there are enough examples.
    common = positives >= 50
    np.testing.assert_allclose(in_train[common] / positives[common], 0.8, atol=0.05)


def test_stratified_split_beats_random_on_label_balance():
    targets = _long_tailed_targets(1500, 60, 5)
    positives = np.asarray(targets.sum(axis=0)).ravel()
    keep = positives >= 10

    def worst_test_share_error(folds):
        in_test = np.asarray(targets[folds == 2].sum(axis=0)).ravel()
        return np.abs(in_test[keep] / positives[keep] - 0.1).max()

    stratified = make_splits(targets, seed=0)
    random = np.random.default_rng(0).permutation(
        np.repeat([0, 1, 2], [1200, 150, 150])
    )
    assert worst_test_share_error(stratified) < worst_test_share_error(random) / 2


def test_bad_fractions_are_refused():
    with pytest.raises(ValueError, match="fractions"):
        make_splits(_long_tailed_targets(10, 8, 0), fractions=(0.9, 0.1))


def _collection(tmp_path, n=30):
    rows = [(f"i{k:02d}", f"{k % 4} {(k * 7) % 6}") for k in range(n)]
    images = {image_id: gradient_image(8, 8, k) for k, (image_id, _) in enumerate(rows)}
    return load_collection(write_folder(tmp_path / "c", rows, images), progress=False)


def test_split_is_saved_and_reused_whatever_the_seed(tmp_path):
    col = _collection(tmp_path)
    first = load_or_make_splits(col, seed=0)
    assert (col.data_dir / "splits.csv").is_file()
    again = load_or_make_splits(col, seed=123)
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(first[name], again[name])
    rows = np.concatenate(list(first.values()))
    assert sorted(rows.tolist()) == list(range(len(col)))


def test_saved_split_with_unknown_and_new_images_warns_and_assigns(tmp_path, caplog):
    col = _collection(tmp_path)
    lines = ["id,split", "ghost,train"]
    lines += [f"{image_id},test" for image_id in col.ids[:20]]
    (col.data_dir / "splits.csv").write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING):
        splits = load_or_make_splits(col, seed=0)
    assert "1 images that the collection does not have" in caplog.text
    assert "no split for 10 of 30 images" in caplog.text
    assert set(range(20)) <= set(splits["test"].tolist())
    fractions = np.array([0.8, 0.1, 0.1])
    for row in range(20, 30):
        fold = hash_fold(col.ids[row], 0, fractions)
        assert row in splits[("train", "val", "test")[fold]]


def test_hash_fold_follows_fractions():
    fractions = np.array([0.7, 0.2, 0.1])
    folds = [hash_fold(f"id{k}", 0, fractions) for k in range(5000)]
    np.testing.assert_allclose(
        np.bincount(folds, minlength=3) / 5000, fractions, atol=0.02
    )


def test_malformed_splits_csv_names_the_line(tmp_path):
    col = _collection(tmp_path)
    (col.data_dir / "splits.csv").write_text("id,split\ni00,train\ni01,holdout\n")
    with pytest.raises(DataError, match="line 3"):
        load_or_make_splits(col)


def test_read_only_folder_saves_split_in_user_cache(tmp_path, monkeypatch):
    col = _collection(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(
        splits_module, "is_writable", lambda directory: directory != col.data_dir
    )
    first = load_or_make_splits(col, seed=0)
    assert not (col.data_dir / "splits.csv").exists()
    saved = list((tmp_path / "xdg" / "imet").glob("*/splits.csv"))
    assert len(saved) == 1
    again = load_or_make_splits(col, seed=99)  # found there, reused
    np.testing.assert_array_equal(first["train"], again["train"])
