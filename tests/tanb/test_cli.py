import json

import numpy as np

from imet.cli import build_parser, main
from imet.tanb import network_from_json

from .conftest import correlated_labels


def test_tanb_run_prints_the_table_and_writes_the_run(fake_run, capsys):
    assert main(["tanb", "--run", str(fake_run), "--n", "4", "6"]) == 0
    out = capsys.readouterr().out
    for name in ("Vanilla", "TopN then TANB", "Threshold", "ThresholdCapN then TANB"):
        assert name in out
    assert "Exact tree: posterior" in out and "Exact tree: MAP" in out
    assert (fake_run / "tanb/tree.json").is_file()


def test_tanb_learn_from_train_csv_alone(tmp_path, capsys):
    labels = correlated_labels(300, 8, seed=30)
    rows = [" ".join(str(10 + j) for j in np.flatnonzero(r)) for r in labels]
    csv = tmp_path / "train.csv"
    csv.write_text(
        "id,attribute_ids\n" + "".join(f"i{i},{r}\n" for i, r in enumerate(rows))
    )
    out = tmp_path / "tree.json"
    assert main(["tanb", "learn", "--train-csv", str(csv), "--out", str(out)]) == 0
    body = json.loads(out.read_text())
    assert body["n_images"] == 300 and len(body["edges"]) == 7
    assert {"parent", "child", "mi"} <= set(body["edges"][0])
    assert body["smoothing"]["alpha"] == 1.0
    network = network_from_json(body)
    assert set(network.ids.tolist()) <= set(range(10, 18))
    assert "300 images" in capsys.readouterr().out


def test_tanb_without_run_or_action_is_a_usage_error(capsys, tmp_path):
    assert main(["tanb"]) == 2
    assert "--run" in capsys.readouterr().err
    assert main(["tanb", "--run", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_help_explains_both_forms():
    parser = build_parser()
    tanb = parser._subparsers._group_actions[0].choices["tanb"]
    text = tanb.format_help()
    assert "imet tanb --run RUN" in text and "imet tanb learn" in text
