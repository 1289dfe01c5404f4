"""Predictions: test images in a grid, filtered; one image's labels against the
truth under a chosen decision rule."""

import numpy as np
import streamlit as st

from dashboard import decisions, loaders, state, ui

OUTCOMES = ("all", "right", "wrong")
PER_PAGE = 20


def filters(labels: loaders.RunLabels, run: loaders.RunInfo) -> tuple:
    """Sidebar filters; returns (rule, category, label or None, outcome, range)."""
    bar = st.sidebar
    rule = state.select(
        "Decision rule", loaders.decision_rules(run.path), "rule", container=bar
    )
    category = state.select(
        "Category",
        ["all", *sorted(set(labels.categories))],
        "category",
        scope=run.name,
        container=bar,
    )
    names = [
        n
        for n, c in zip(labels.names, labels.categories, strict=True)
        if category in ("all", c)
    ]
    label = state.select(
        "Label", ["any", *names], "label", scope=run.name, container=bar
    )
    verdict = state.select("Right or wrong", OUTCOMES, "outcome", container=bar)
    low, high = bar.slider(
        "Confidence (top score, or the label's)",
        0.0,
        1.0,
        (0.0, 1.0),
        step=0.05,
        key="confidence",
    )
    return rule, category, None if label == "any" else label, verdict, (low, high)


def select_rows(run, labels, scores, result, chosen) -> np.ndarray:
    """Rows of the test split that pass the filters."""
    _, category, label, verdict, (low, high) = chosen
    keep = np.ones(len(scores.ids), dtype=bool)
    if label is not None:
        j = labels.column(label)
        # The label's images: carried, or predicted.
        keep &= scores.targets[:, j].astype(bool) | result.predicted[:, j]
        right = result.predicted[:, j] == scores.targets[:, j].astype(bool)
        confidence = scores.scores[:, j]
    else:
        if category != "all":
            in_category = np.asarray(labels.categories) == category
            keep &= scores.targets[:, in_category].any(axis=1)
        right = result.exact
        confidence = scores.scores.max(axis=1)
    if verdict != "all":
        keep &= right if verdict == "right" else ~right
    keep &= (confidence >= low) & (confidence <= high)
    return np.flatnonzero(keep)


def render() -> None:
    run = ui.pick_run()
    labels = loaders.load_labels(run.path)
    scores = loaders.load_scores(run.path, "test")
    chosen = filters(labels, run)
    result = decisions.outcome(loaders.predict(run.path, chosen[0]), scores.targets)
    rows = select_rows(run, labels, scores, result, chosen)
    exact = result.exact.mean() if len(result.exact) else 0.0
    st.caption(
        f"{len(rows)} of {len(scores.ids)} test images pass the filters; "
        f"under {chosen[0]}, {exact:.0%} of all test images get exactly their "
        "true labels."
    )
    if len(rows) == 0:
        st.info("No test image passes these filters: widen them in the sidebar.")
        return
    files = loaders.image_files(run.data_dir)
    n_pages = (len(rows) + PER_PAGE - 1) // PER_PAGE
    page = st.number_input("Page", 1, n_pages, 1, key=f"page@{run.name}") - 1
    shown = rows[page * PER_PAGE : (page + 1) * PER_PAGE]
    ui.image_grid(
        [
            ui.Tile(
                files.get(str(scores.ids[r])),
                f"`{scores.ids[r]}` · {result.true_pos[r]} right, "
                f"{result.false_pos[r]} wrong, {result.false_neg[r]} missed",
            )
            for r in shown
        ]
    )
    st.subheader("One image")
    image = state.select(
        "Image", [str(scores.ids[r]) for r in rows], "image", scope=run.name
    )
    r = int(np.flatnonzero(scores.ids == image)[0])
    left, right = st.columns([1, 2])
    with left:
        ui.show_thumbnail(files.get(image), size=320)
    with right:
        thresholds = loaders.rule_thresholds(run.path, chosen[0])
        st.dataframe(
            decisions.image_table(
                labels.names,
                scores.scores[r],
                scores.targets[r],
                result.predicted[r],
                thresholds,
            ),
            hide_index=True,
        )


ui.page("Predictions", render)
