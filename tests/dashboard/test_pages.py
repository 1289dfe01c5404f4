"""Every page under AppTest on runs written with the run-folder writers:
it renders, its widgets exist, and changing run, label or image changes it."""

from __future__ import annotations

import shutil

import pytest

from imet import runs
from tests.dashboard.conftest import write_tree
from tests.dashboard.pages_util import (
    PAGES,
    assert_clean,
    charts,
    open_page,
    texts,
    widget,
)


@pytest.mark.parametrize("page", PAGES)
def test_page_without_runs_says_to_run_make_demo(page, tmp_path, monkeypatch):
    app = open_page(page, tmp_path / "nothing-here", monkeypatch)
    assert_clean(app)
    assert any("make demo" in m for m in texts(app, "info")), texts(app, "info")


def test_overview_lists_runs_and_follows_the_chosen_run(written_runs, monkeypatch):
    app = open_page("overview", written_runs, monkeypatch)
    assert_clean(app)
    listed, compared = app.dataframe[0].value, app.dataframe[1].value
    assert sorted(listed["run"]) == ["demo-cnn", "demo-vit"]
    assert {"parameters", "pr_auc macro"} <= set(compared.columns)
    before = charts(app)
    assert len(before) == 2  # losses and PR-AUCs
    widget(app.selectbox, "Run").set_value("demo-vit").run()
    assert_clean(app)
    assert app.query_params["run"] == "demo-vit"
    assert charts(app)[0] != before[0]


def test_labels_search_filters_and_label_choice_changes_the_curve(
    written_runs, monkeypatch
):
    app = open_page("labels", written_runs, monkeypatch)
    assert_clean(app)
    assert len(app.dataframe[0].value) == 5
    first = charts(app)
    assert len(first) == 1 and "threshold" in first[0]
    widget(app.text_input, "Search labels").set_value("hourglass").run()
    assert list(app.dataframe[0].value["label"]) == ["tags::hourglasses"]
    assert "tags::hourglasses" in charts(app)[0]
    assert app.query_params["label"] == "tags::hourglasses"
    across = app.dataframe[1].value
    assert sorted(across["run"]) == ["demo-cnn", "demo-vit"]


def test_predictions_filters_and_image_choice_change_the_view(
    written_runs, monkeypatch
):
    app = open_page("predictions", written_runs, monkeypatch)
    assert_clean(app)
    assert len(app.get("image")) >= 2  # the grid and the chosen image
    everything = app.caption[0].value
    widget(app.selectbox, "Right or wrong").set_value("wrong").run()
    assert_clean(app)
    assert app.caption[0].value != everything
    images = widget(app.selectbox, "Image")
    table = app.dataframe[0].value
    images.set_value(images.options[-1]).run()
    assert app.query_params["image"] == images.options[-1]
    assert not app.dataframe[0].value.equals(table)


def test_predictions_decision_rule_changes_the_labels_given(written_runs, monkeypatch):
    app = open_page("predictions", written_runs, monkeypatch)
    widget(app.selectbox, "Decision rule").set_value("tuned thresholds").run()
    assert_clean(app)
    assert set(app.dataframe[0].value["threshold"]) == {0.45}


def test_tanb_page_without_a_tree_says_how_to_learn_one(written_runs, monkeypatch):
    app = open_page("tanb", written_runs, monkeypatch)
    assert_clean(app)
    assert any("imet tanb --run" in m for m in texts(app, "info"))


def test_tanb_page_centres_the_graph_on_the_searched_label(written_runs, monkeypatch):
    write_tree(written_runs / "demo-cnn")
    app = open_page("tanb", written_runs, monkeypatch, run="demo-cnn")
    assert_clean(app)
    graph = charts(app)[0]
    widget(app.text_input, "Find a label").set_value("flowers").run()
    assert_clean(app)
    assert widget(app.selectbox, "Centre the graph on").value == "tags::flowers"
    assert charts(app)[0] != graph
    assert app.dataframe[1].value.shape == (2, 2)  # the edge's table


# Pages that cannot show anything without the file, and what they must say.
NEEDS = {
    runs.THRESHOLDS: {"labels": "thresholds.json"},
    runs.LABELS: {"labels": "labels.csv", "predictions": "labels.csv"},
    runs.SCORES_DIR: {"labels": "not finished", "predictions": "not finished"},
    runs.METRICS: {"overview": "metrics.json"},
}


@pytest.mark.parametrize("missing", list(NEEDS))
def test_pages_explain_what_a_damaged_run_lacks(missing, written_runs, monkeypatch):
    for run in ("demo-cnn", "demo-vit"):
        target = written_runs / run / missing
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    for page in PAGES:
        app = open_page(page, written_runs, monkeypatch)
        assert not app.exception, (page, [e.value for e in app.exception])
        if page in NEEDS[missing]:
            shown = " ".join(texts(app, "info") + texts(app, "error"))
            assert NEEDS[missing][page] in shown, (page, shown)
