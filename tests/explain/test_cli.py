import json

import numpy as np
from PIL import Image

from imet import runs
from imet.cli import main
from imet.explain.evaluate import read_eval


def _first_test_image_with_a_label(run, data_dir):
    test = runs.read_scores(run, "test")
    _, names = runs.read_labels(run)
    row = int(np.flatnonzero(test.targets.sum(axis=1))[0])
    column = int(np.flatnonzero(test.targets[row])[0])
    return data_dir / "train" / f"{test.ids[row]}.png", names[column]


def _explain_args(run, image, label, out, *extra: str) -> list[str]:
    """``imet explain`` arguments for one image and label."""
    return [
        "explain",
        "--run",
        str(run),
        "--image",
        str(image),
        "--label",
        label,
        "--out",
        str(out),
        *extra,
    ]


def test_explain_all_writes_an_overlay_per_supported_method(
    tiny_run, tiny_collection, tmp_path, capsys
):
    image, label = _first_test_image_with_a_label(tiny_run, tiny_collection)
    code = main(_explain_args(tiny_run, image, label, tmp_path, "--method", "all"))
    out = capsys.readouterr().out
    assert code == 0
    pngs = sorted(p.name.rsplit("-", 1)[1] for p in tmp_path.glob("*.png"))
    assert pngs == sorted(
        f"{m}.png"
        for m in [
            "gradient",
            "smoothgrad",
            "gradient_x_input",
            "guided_backprop",
            "lrp",
        ]
    )
    for path in tmp_path.glob("*.png"):
        assert Image.open(path).size == Image.open(image).size
    assert "attention_rollout: not available: attention rollout reads" in out
    assert "Traceback" not in out


def test_explain_rejects_an_unknown_label_with_a_hint(
    tiny_run, tiny_collection, capsys
):
    image, _ = _first_test_image_with_a_label(tiny_run, tiny_collection)
    code = main(_explain_args(tiny_run, image, "hourglass", "unused"))
    assert code == 2
    assert "did you mean tags::hourglasses" in capsys.readouterr().err


def test_explain_eval_writes_the_table_into_the_run(tiny_run, capsys):
    code = main(
        [
            "explain-eval",
            "--run",
            str(tiny_run),
            "--images",
            "2",
            "--steps",
            "4",
            "--methods",
            "gradient",
            "lrp",
            "attention_rollout",
        ]
    )
    assert code == 0
    report = read_eval(tiny_run)
    assert len(report["pairs"]) == 2
    for method in ("gradient", "lrp"):
        row = report["methods"][method]
        assert row["pairs"] == 2
        for key in ("deletion_auc", "random_insertion_auc", "mask_share"):
            assert 0.0 <= row[key] <= 1.0
        assert -1.0 <= row["randomisation_spearman"] <= 1.0
    assert "unsupported" in report["methods"]["attention_rollout"]
    printed = capsys.readouterr().out
    assert "gradient" in printed and "eval.json" in printed
    json.dumps(report)  # plain JSON all the way down
