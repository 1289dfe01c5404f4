import json

import numpy as np
import pytest

from imet import runs
from imet.tanb import (
    image_decisions,
    learn_network,
    load_decisions,
    load_tree,
    run_tanb,
)
from imet.tanb.evaluate import ScreeningConfig
from imet.tanb.run import TanbConfig

STRATEGIES = {
    "vanilla",
    "topn_tanb",
    "threshold",
    "threshold_cap_tanb",
    "tree_posterior",
    "tree_map",
}


def test_run_writes_tree_report_and_decisions(fake_run):
    report = run_tanb(fake_run)
    rows = report["rows"]
    assert {row["strategy"] for row in rows} == STRATEGIES
    assert {row["n"] for row in rows if row["strategy"] == "topn_tanb"} == {4, 5, 6}
    for row in rows:
        assert 0.0 <= row["f2"] <= 1.0
    # The TANB step only removes: nothing added, removals counted right/wrong.
    for row in rows:
        if row["strategy"].endswith("_tanb"):
            assert row["added_right"] == row["added_wrong"] == 0
    # Vanilla's F2 is the TopN row's baseline, recomputed independently.
    test = runs.read_scores(fake_run, "test")
    order = np.argsort(-test.scores, axis=1, kind="stable")[:, :5]
    predicted = np.zeros(test.scores.shape, dtype=bool)
    np.put_along_axis(predicted, order, True, axis=1)
    truth = test.targets.astype(bool)
    tp = (predicted & truth).sum(1)
    denom = 5 * tp + 4 * (truth & ~predicted).sum(1) + (predicted & ~truth).sum(1)
    f2 = np.where(denom > 0, 5 * tp / np.maximum(denom, 1), 1).mean()
    (vanilla,) = [r for r in rows if r["strategy"] == "vanilla" and r["n"] == 5]
    assert np.isclose(vanilla["f2"], f2)
    on_disk = json.loads((fake_run / "tanb/report.json").read_text())
    assert on_disk["rows"] == json.loads(json.dumps(rows))


def test_tree_of_the_run_is_learned_from_its_training_labels(fake_run):
    run_tanb(fake_run, TanbConfig(screening=ScreeningConfig(ns=(5,))))
    tree = load_tree(fake_run)
    train = runs.read_scores(fake_run, "train")
    direct = learn_network(train.targets)
    assert np.array_equal(tree.parent, direct.parent)
    assert np.allclose(tree.p_present, direct.p_present)
    edge = tree.edges()[0]
    assert tree.cpt(edge["parent"], edge["child"]).shape == (2, 2)
    assert tree.names[0] == "tags::t0"


def test_decisions_explain_each_image(fake_run):
    run_tanb(fake_run, TanbConfig(screening=ScreeningConfig(ns=(4,))))
    decisions = load_decisions(fake_run)
    image = str(decisions["ids"][3])
    explained = image_decisions(fake_run, image)
    assert len(explained["topn_tanb_4"]) == 4
    kept = decisions["topn_tanb_4/kept"][3]
    verdicts = [item["verdict"] for item in explained["topn_tanb_4"]]
    assert verdicts == ["kept" if k else "dropped" for k in kept]
    for item in explained["tree_posterior"]:
        assert 0.0 <= item["probability"] <= 1.0
        assert item["verdict"] in {"kept", "dropped", "added", "map only"}
    with pytest.raises(KeyError):
        image_decisions(fake_run, "no-such-image")


def test_missing_parts_of_a_run_are_reported_clearly(tmp_path):
    runs.write_config(tmp_path, {})
    with pytest.raises(runs.RunError, match="labels"):
        run_tanb(tmp_path)
    with pytest.raises(runs.RunError, match="imet tanb --run"):
        load_tree(tmp_path)
