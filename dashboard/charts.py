"""Plotly figures of the dashboard (curves; the tree graph is in
:mod:`dashboard.tree_graph`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def history_figures(history: pd.DataFrame) -> list[go.Figure]:
    """Per-epoch curves: one figure of losses, one of the other figures
    (PR-AUCs, learning rate aside), both against the epoch."""
    if history.empty:
        return []
    x = history["epoch"] if "epoch" in history else pd.Series(range(len(history)))
    numeric = [
        c
        for c in history.columns
        if c != "epoch" and pd.api.types.is_numeric_dtype(history[c])
    ]
    groups = {
        "Loss per epoch": [c for c in numeric if "loss" in c],
        "PR-AUC per epoch": [c for c in numeric if "auc" in c],
    }
    figures = []
    for title, columns in groups.items():
        if not columns:
            continue
        figure = go.Figure(
            [
                go.Scatter(x=x, y=history[c], mode="lines+markers", name=c)
                for c in columns
            ]
        )
        figure.update_layout(
            title=title, xaxis_title="epoch", height=320, margin=_MARGIN
        )
        figures.append(figure)
    return figures


def pr_figure(
    precision: np.ndarray,
    recall: np.ndarray,
    thresholds: np.ndarray,
    threshold: float,
    *,
    title: str,
) -> go.Figure:
    """Precision-recall curve with the operating point at ``threshold``.

    ``thresholds[i]`` is the score cut giving ``precision[i]``/``recall[i]``
    (scikit-learn's convention: one fewer threshold than points)."""
    figure = go.Figure(
        go.Scatter(
            x=recall, y=precision, mode="lines", name="PR curve", line_shape="hv"
        )
    )
    if len(thresholds):
        # The first cut at or above the threshold is the operating point.
        i = int(np.searchsorted(thresholds, threshold, side="left"))
        i = min(i, len(thresholds) - 1)
        figure.add_trace(
            go.Scatter(
                x=[recall[i]],
                y=[precision[i]],
                mode="markers+text",
                marker={"size": 12, "color": "#8c2d19"},
                text=[f"threshold {threshold:.2f}"],
                textposition="top right",
                name="threshold",
            )
        )
    figure.update_layout(
        title=title,
        xaxis={"title": "recall", "range": [0, 1.02]},
        yaxis={"title": "precision", "range": [0, 1.05]},
        height=380,
        margin=_MARGIN,
        showlegend=False,
    )
    return figure
