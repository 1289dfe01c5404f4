"""The pages that run the model, under AppTest, on the trained ``tiny_run``
(with its TANB decisions, bias report and saliency evaluation)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from tests.dashboard.pages_util import (
    PAGES,
    assert_clean,
    charts,
    open_page,
    texts,
    widget,
)


def test_every_page_renders_on_a_trained_run(trained_runs, monkeypatch):
    for page in PAGES:
        app = open_page(page, trained_runs, monkeypatch)
        assert not app.exception, (page, [e.value for e in app.exception])
        assert not [m for m in texts(app, "error") if "could not" in m], page


def test_predictions_offer_the_tanb_rules_and_they_change_the_labels(
    trained_runs, monkeypatch
):
    app = open_page("predictions", trained_runs, monkeypatch)
    rules = widget(app.selectbox, "Decision rule")
    assert any(r.startswith("TANB: exact tree posterior") for r in rules.options)
    before = app.caption[0].value
    rules.set_value(next(r for r in rules.options if "top 4" in r)).run()
    assert_clean(app)
    assert app.caption[0].value != before


def test_tanb_page_explains_what_the_network_did_to_an_image(trained_runs, monkeypatch):
    app = open_page("tanb", trained_runs, monkeypatch)
    assert_clean(app)
    verdicts = app.dataframe[-1].value
    assert set(verdicts["verdict"]) <= {"kept", "dropped", "added", "map only"}
    assert verdicts["why"].str.len().min() > 0
    images = widget(app.selectbox, "Test image")
    images.set_value(images.options[1]).run()
    assert_clean(app)
    assert app.query_params["image"] == images.options[1]


def test_saliency_shows_every_method_with_its_figures_and_similar_images(
    trained_runs, monkeypatch
):
    app = open_page("saliency", trained_runs, monkeypatch)
    methods = [m.value for m in app.markdown if m.value.startswith("**")]
    assert "**gradient**" in methods and "**smoothgrad**" in methods
    assert any("deletion AUC" in c for c in texts(app, "caption"))
    assert any("sanity check" in c for c in texts(app, "caption"))
    shown = len(app.get("image"))
    labels = widget(app.selectbox, "Label")
    labels.select_index(len(labels.options) - 1).run()
    assert not app.exception
    assert app.query_params["label"] == widget(app.selectbox, "Label").value
    assert len(app.get("image")) >= shown - 8  # the maps of the new label


def test_bias_page_ranks_labels_and_shows_the_chosen_label(trained_runs, monkeypatch):
    app = open_page("bias", trained_runs, monkeypatch)
    assert_clean(app)
    ranked = app.dataframe[0].value
    assert list(ranked["rank"]) == sorted(ranked["rank"])
    chosen = widget(app.selectbox, "Label")
    assert chosen.value == ranked["name"].iloc[0]
    figures = [m.value for m in app.metric]
    chosen.set_value(chosen.options[-1]).run()
    assert_clean(app)
    assert [m.value for m in app.metric] != figures or charts(app)


def _png(size=(48, 40)) -> bytes:
    rng = np.random.default_rng(3)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(
        buffer, format="PNG"
    )
    return buffer.getvalue()


def test_your_image_predicts_explains_and_finds_similar_images(
    trained_runs, monkeypatch
):
    app = open_page("your_image", trained_runs, monkeypatch)
    assert_clean(app)
    app.get("file_uploader")[0].set_value(("art.png", _png(), "image/png")).run()
    assert_clean(app)
    table = app.dataframe[0].value
    assert table["score"].is_monotonic_decreasing
    assert len(app.get("image")) >= 3  # the upload, its map, similar images


def test_your_image_refuses_what_is_not_a_png_or_jpeg(trained_runs, monkeypatch):
    app = open_page("your_image", trained_runs, monkeypatch)
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, format="GIF")
    uploader = app.get("file_uploader")[0]
    uploader.set_value(("art.gif", gif.getvalue(), "image/gif")).run()
    assert any("GIF" in m and "PNG or JPEG" in m for m in texts(app, "error"))
    uploader = app.get("file_uploader")[0]
    uploader.set_value(("notes.png", b"not an image", "image/png")).run()
    assert any("not an image" in m for m in texts(app, "error"))
    assert not app.exception
