"""Opening dashboard pages under Streamlit's AppTest."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "dashboard" / "app.py"
PAGES = ("overview", "predictions", "labels", "tanb", "saliency", "bias", "your_image")


def open_page(page: str, root: Path, monkeypatch, **query: str) -> AppTest:
    """Run the app on the runs folder ``root`` and move to ``page``.

    The first run draws the default page (the overview); the switch runs the
    page file through the app's navigation, as a click in the menu does."""
    monkeypatch.setenv("IMET_RUNS", str(root))
    app = AppTest.from_file(str(APP), default_timeout=120)
    app.query_params.update(query)
    app.run()
    if page != "overview":
        app.switch_page(f"../pages/{page}.py").run()
    return app


def widget(widgets, label: str):
    """The widget whose label is ``label``."""
    found = [w for w in widgets if w.label == label]
    assert found, f"no widget labelled {label!r}: {[w.label for w in widgets]}"
    return found[0]


def texts(app: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(app, kind)]


def charts(app: AppTest) -> list[str]:
    """The Plotly figure specs (JSON) on the page."""
    return [e.proto.spec for e in app.get("plotly_chart")]


def assert_clean(app: AppTest) -> None:
    """No traceback and no error message on the page."""
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, texts(app, "error")
