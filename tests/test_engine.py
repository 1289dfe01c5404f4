"""Training loop, run folder contents, resume and multi-process training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from sklearn.metrics import average_precision_score, fbeta_score

from imet import engine, runs
from imet.train_config import TrainConfig
from tests.conftest import TINY_CNN, TINY_RUN_SIZE, tiny_train_args

HISTORY_KEYS = {
    "epoch",
    "train_loss",
    "val_loss",
    "val_pr_auc_macro",
    "val_pr_auc_micro",
    "val_pr_auc_weighted",
    "lr",
    "seconds",
    "images_per_second",
}


def tiny_config(data_dir: Path, **changes) -> TrainConfig:
    values = dict(
        data_dir=str(data_dir),
        model="cnn",
        arch=TINY_CNN,
        epochs=2,
        batch_size=16,
        image_size=TINY_RUN_SIZE,
        lr=3e-3,
        device="cpu",
        num_workers=0,
    )
    return TrainConfig(**(values | changes))


class Interrupt(Exception):
    """Raised by a step hook to stop a run the way a crash would."""


def stop_at(epoch: int, step: int):
    def hook(e: int, s: int) -> None:
        if (e, s) == (epoch, step):
            raise Interrupt

    return hook


def assert_same_weights(run_a: Path, run_b: Path) -> None:
    a, b = load_file(run_a / runs.WEIGHTS), load_file(run_b / runs.WEIGHTS)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=1e-6, err_msg=name)


def test_pos_weight_is_clamped_negative_to_positive_ratio():
    # 10 images; label 0: 1 positive (9/1 -> capped 5), label 1: 5 (1),
    # label 2: 8 positives (0.25 -> raised to 1), label 3: none (1).
    targets = np.zeros((10, 4), dtype=np.uint8)
    targets[:1, 0] = 1
    targets[:5, 1] = 1
    targets[:8, 2] = 1
    weights = engine.label_pos_weight(targets, cap=5.0)
    np.testing.assert_allclose(weights.numpy(), [5.0, 1.0, 1.0, 1.0])
    assert engine.label_pos_weight(targets, cap=30.0)[0] == pytest.approx(9.0)


def test_learning_rate_warms_up_then_decays_to_zero():
    factor = engine.warmup_cosine(total_steps=100, warmup_steps=10)
    values = [factor(s) for s in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[9:], values[10:], strict=False))
    assert factor(100) == pytest.approx(0.0)


def test_tiny_run_folder_is_complete_and_consistent(tiny_run):
    config = runs.read_config(tiny_run)
    assert config["model"] == "cnn" and config["image_size"] == TINY_RUN_SIZE
    assert Path(config["data_dir"]).is_absolute()
    assert config["n_parameters"] > 0 and config["torch_version"] == torch.__version__
    ids, names = runs.read_labels(tiny_run)
    n_labels = len(ids)
    assert config["n_labels"] == n_labels == len(names)
    history = runs.read_history(tiny_run)
    assert [r["epoch"] for r in history] == [1, 2]
    assert all(r.keys() >= HISTORY_KEYS for r in history)
    best = max(history, key=lambda r: r["val_pr_auc_macro"])
    assert config["best_epoch"] == best["epoch"]
    split_ids = runs.read_splits(tiny_run)
    for split in runs.SPLITS:
        stored = runs.read_scores(tiny_run, split)
        assert list(stored.ids) == split_ids[split]
        assert (
            stored.scores.shape == stored.targets.shape == (len(stored.ids), n_labels)
        )
        assert ((stored.scores >= 0) & (stored.scores <= 1)).all()
    assert runs.read_thresholds(tiny_run).shape == (n_labels,)
    emb_ids, embeddings = runs.read_embeddings(tiny_run)
    assert list(emb_ids) == split_ids["train"]
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_metrics_json_equals_scikit_learn_on_stored_scores(tiny_run):
    metrics = runs.read_json(tiny_run, runs.METRICS)
    thresholds = runs.read_thresholds(tiny_run)
    for split in runs.SPLITS:
        stored = runs.read_scores(tiny_run, split)
        y, s = stored.targets, stored.scores
        # Labels without positives are left out of macro and weighted figures;
        # micro pools every score, so their negatives count there.
        has_pos = y.sum(axis=0) > 0
        figures = metrics[split]
        for average in ("macro", "weighted"):
            expected = average_precision_score(
                y[:, has_pos], s[:, has_pos], average=average
            )
            assert figures[f"pr_auc_{average}"] == pytest.approx(expected, abs=1e-6)
        micro = average_precision_score(y, s, average="micro")
        assert figures["pr_auc_micro"] == pytest.approx(micro, abs=1e-6)
        tuned = (s >= thresholds).astype(int)
        f2 = fbeta_score(y[:, has_pos], tuned[:, has_pos], beta=2, average="macro")
        assert figures["f2_macro_tuned"] == pytest.approx(f2, abs=1e-6)
        at_half = (s >= 0.5).astype(int)
        f2_half = fbeta_score(
            y[:, has_pos], at_half[:, has_pos], beta=2, average="macro"
        )
        assert figures["f2_macro_at_0.5"] == pytest.approx(f2_half, abs=1e-6)
        samples = fbeta_score(y, tuned, beta=2, average="samples", zero_division=1.0)
        assert figures["f2_samples_tuned"] == pytest.approx(samples, abs=1e-6)


def test_best_weights_reproduce_the_stored_validation_scores(tiny_run):
    from imet.data import ImageCache, load_collection

    model, config = runs.load_model(tiny_run)
    stored = runs.read_scores(tiny_run, "val")
    col = load_collection(config["data_dir"], progress=False)
    cache = ImageCache.build(col, short_side=config["cache_short_side"], progress=False)
    row_of = {image_id: row for row, image_id in enumerate(col.ids)}
    images = [cache.get(row_of[i]) for i in stored.ids]
    scored = engine.score_images(model, images, image_size=config["image_size"])
    np.testing.assert_allclose(scored.scores, stored.scores, atol=1e-5)


@pytest.mark.parametrize(
    ("epoch", "step"),
    [(1, 0), (1, 2)],
    ids=["after-one-complete-epoch", "mid-epoch-two"],
)
def test_interrupted_run_resumes_to_the_uninterrupted_result(
    tiny_run, tiny_collection, tmp_path, epoch, step
):
    # tiny_run is the same configuration trained for 2 epochs without a break.
    config = tiny_config(tiny_collection)
    resumed = tmp_path / "resumed"
    with pytest.raises(Interrupt):
        engine.train(config, resumed, progress=False, step_hook=stop_at(epoch, step))
    assert not (resumed / runs.METRICS).exists()
    assert len(runs.read_history(resumed)) == 1
    engine.train(config, resumed, resume=True, progress=False)
    assert_same_weights(tiny_run, resumed)
    assert [r["epoch"] for r in runs.read_history(resumed)] == [1, 2]
    a, b = (runs.read_json(r, runs.METRICS) for r in (tiny_run, resumed))
    assert a == b


def test_completed_run_is_extended_by_resuming_with_more_epochs(tiny_run, tmp_path):
    import shutil

    run = tmp_path / "extended"
    shutil.copytree(tiny_run, run)
    config = engine.resume_config(run, {"epochs": 3})
    engine.train(config, run, resume=True, progress=False)
    assert [r["epoch"] for r in runs.read_history(run)] == [1, 2, 3]
    assert (run / runs.METRICS).exists()


def test_resume_refuses_a_changed_hyperparameter(tiny_run):
    with pytest.raises(runs.RunError, match="--lr"):
        engine.resume_config(tiny_run, {"lr": 0.5})


def test_trains_on_a_real_format_folder_it_did_not_make(real_format_folder, tmp_path):
    from imet.cli import main

    run = tmp_path / "real"
    assert main(tiny_train_args(real_format_folder, run)) == 0
    ids, names = runs.read_labels(run)
    assert len(ids) == 3474  # the full 2020 vocabulary, most without images
    assert "tags::boats" in names
    thresholds = json.loads((run / runs.THRESHOLDS).read_text())
    assert "fallback" in thresholds["note"]
    val = runs.read_json(run, runs.METRICS)["val"]
    assert val["n_labels_with_positives"] <= 4


# Every other model, one epoch each; the "tiny" ViT preset keeps it seconds long.
OTHER_MODELS = {
    "efficientnet": [],
    "efficientnet-lite0": [],
    "vit": ["--arch", json.dumps({"size": "tiny"})],
}


@pytest.mark.parametrize("model", sorted(OTHER_MODELS))
def test_every_model_trains_on_the_real_format_folder(
    model, real_format_folder, tmp_path
):
    from imet.cli import main

    run = tmp_path / model
    args = tiny_train_args(real_format_folder, run, "--epochs", "1")
    arch = args.index("--arch")
    del args[arch : arch + 2]  # the cnn's widths
    args[args.index("--model") + 1] = model
    assert main([*args, *OTHER_MODELS[model]]) == 0
    config = runs.read_config(run)
    assert config["model"] == model
    test = runs.read_scores(run, "test")
    assert test.scores.shape == (len(test.ids), 3474)
    assert np.isfinite(test.scores).all()
    assert (run / runs.METRICS).exists()


def test_two_processes_on_gloo_write_a_complete_run(tiny_collection, tmp_path):
    run = tmp_path / "ddp"
    args = tiny_train_args(tiny_collection, run)
    args[args.index("--run")] = "--run-dir"  # torchrun claims --run itself
    env = os.environ | {"OMP_NUM_THREADS": "1"}  # torchrun's default, stated
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        str(Path(sys.executable).with_name("imet")),
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    config = runs.read_config(run)
    assert config["world_size"] == 2
    assert [r["epoch"] for r in runs.read_history(run)] == [1, 2]
    split_ids = runs.read_splits(run)
    for split in runs.SPLITS:
        stored = runs.read_scores(run, split)
        assert list(stored.ids) == split_ids[split]
    metrics = runs.read_json(run, runs.METRICS)
    assert set(metrics) == set(runs.SPLITS)
    assert 0 < metrics["val"]["pr_auc_macro"] <= 1
