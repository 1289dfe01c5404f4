"""Reading runs back: the model, the history, the stored scores."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from imet import runs


def test_load_model_rebuilds_the_trained_network_in_eval_mode(tiny_run):
    model, config = runs.load_model(tiny_run)
    assert not model.training
    assert model.arch == config["arch"]
    x = torch.zeros(2, 3, config["image_size"], config["image_size"])
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (2, config["n_labels"])
    assert torch.isfinite(logits).all()


def test_load_model_of_an_unfinished_run_says_what_is_missing(tiny_run, tmp_path):
    run = tmp_path / "unfinished"
    run.mkdir()
    shutil.copy(tiny_run / runs.CONFIG, run / runs.CONFIG)
    with pytest.raises(runs.RunError, match="has not finished training"):
        runs.load_model(run)


def test_scores_round_trip_through_the_npz_file(tmp_path):
    scores = runs.Scores(
        ids=np.array(["a", "b"]),
        scores=np.array([[0.1, 0.9], [0.5, 0.2]], dtype=np.float32),
        targets=np.array([[0, 1], [1, 0]], dtype=np.uint8),
    )
    runs.write_scores(tmp_path, "val", scores)
    back = runs.read_scores(tmp_path, "val")
    assert list(back.ids) == ["a", "b"]
    np.testing.assert_array_equal(back.scores, scores.scores)
    np.testing.assert_array_equal(back.targets, scores.targets)


def test_history_skips_a_torn_last_line(tmp_path):
    runs.append_history(tmp_path, {"epoch": 1, "train_loss": 0.5})
    with open(tmp_path / runs.HISTORY, "a") as handle:
        handle.write('{"epoch": 2, "train_')  # a run killed mid-write
    assert runs.read_history(tmp_path) == [{"epoch": 1, "train_loss": 0.5}]


def test_find_runs_lists_runs_but_not_their_checkpoints(tiny_run):
    found = runs.find_runs(tiny_run.parent)
    assert tiny_run in found
    assert all(p.name != runs.CHECKPOINT_DIR for p in found)
