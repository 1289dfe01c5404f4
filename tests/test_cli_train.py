"""The `imet train`, `evaluate`, `compare` and `pretrain-mae` commands."""

from __future__ import annotations

import json
import shutil

import pytest

from imet import runs
from imet.cli import main
from tests.conftest import tiny_train_args


def test_evaluate_rewrites_the_same_metrics_and_prints_them(tiny_run, tmp_path, capsys):
    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    before = runs.read_json(run, runs.METRICS)
    (run / runs.METRICS).unlink()
    assert main(["evaluate", "--run", str(run)]) == 0
    assert runs.read_json(run, runs.METRICS) == before
    out = capsys.readouterr().out
    assert "test/pr_auc_macro" in out and "val/f2_samples_tuned" in out


def test_compare_prints_runs_side_by_side(tiny_run, tmp_path, capsys):
    other = tmp_path / "second-run"
    shutil.copytree(tiny_run, other)
    assert main(["compare", str(tiny_run), str(other)]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    assert tiny_run.name in header and "second-run" in header
    metrics = runs.read_json(tiny_run, runs.METRICS)
    rows = {line.split()[0] for line in out.splitlines()[2:]}
    assert {"parameters", "pretraining", "model"} <= rows
    for split, figures in metrics.items():
        for name in figures:
            assert f"{split}/{name}" in rows
    n_parameters = runs.read_config(tiny_run)["n_parameters"]
    assert f"{n_parameters:,}" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "{missing}"], "not a run folder"),
        (["evaluate", "--run", "{missing}"], "not a run folder"),
        (["train", "--data-dir", "{missing}", "--run", "{run}"], "does not exist"),
        (["train", "--run", "{run}", "--resume"], "no run to resume"),
    ],
    ids=["compare-missing", "evaluate-missing", "missing-data", "resume-nothing"],
)
def test_user_errors_exit_2_with_a_clear_message(tmp_path, capsys, argv, message):
    paths = {"missing": str(tmp_path / "nowhere"), "run": str(tmp_path / "run")}
    assert main([a.format(**paths) for a in argv]) == 2
    assert message in capsys.readouterr().err


def test_unknown_model_is_refused(tiny_collection, tmp_path, capsys):
    args = tiny_train_args(tiny_collection, tmp_path / "run")
    args[args.index("cnn")] = "resnet"
    assert main(args) == 2
    assert "unknown model 'resnet'" in capsys.readouterr().err


def test_existing_run_is_not_overwritten_without_being_asked(tiny_run, capsys):
    before = (tiny_run / runs.WEIGHTS).read_bytes()
    assert main(tiny_train_args(runs.read_config(tiny_run)["data_dir"], tiny_run)) == 2
    err = capsys.readouterr().err
    assert "already holds a complete run" in err and "--overwrite" in err
    assert (tiny_run / runs.WEIGHTS).read_bytes() == before


def test_incomplete_run_is_reported_by_evaluate(tiny_run, tmp_path, capsys):
    run = tmp_path / "incomplete"
    run.mkdir()
    shutil.copy(tiny_run / runs.CONFIG, run / runs.CONFIG)
    assert main(["evaluate", "--run", str(run)]) == 2
    assert "has not finished training" in capsys.readouterr().err


def test_mae_pretraining_starts_vit_fine_tuning(tiny_collection, tmp_path):
    mae = tmp_path / "mae"
    common = ["--image-size", "32", "--device", "cpu", "--num-workers", "0"]
    assert (
        main(
            ["pretrain-mae", "--data-dir", str(tiny_collection), "--run", str(mae)]
            + ["--size", "tiny", "--epochs", "1", "--batch-size", "64", *common]
        )
        == 0
    )
    history = runs.read_history(mae)
    assert [r["epoch"] for r in history] == [1]
    assert history[0]["loss"] > 0
    assert json.loads((mae / "pretraining.json").read_text())["mask_ratio"] == 0.75
    run = tmp_path / "vit"
    args = ["train", "--data-dir", str(tiny_collection), "--run", str(run)]
    args += ["--model", "vit", "--pretrained", str(mae), "--epochs", "1", *common]
    assert main(args) == 0
    config = runs.read_config(run)
    assert config["pretrained_source"] == str(mae)
    assert config["arch"]["config"]["hidden_size"] == 64  # the tiny encoder
    assert (run / runs.METRICS).exists()
