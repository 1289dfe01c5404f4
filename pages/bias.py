"""Label bias: labels ranked by how suspicious their learning looks; for one
label its training images, the evidence, and the masked-region test."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import loaders, state, ui
from imet import runs

COLUMNS = [
    "rank",
    "name",
    "suspicion",
    "cluster_z",
    "occlusion_reliance",
    "precision_gap",
    "train_positives",
]
N_IMAGES = 15


def masked_region_figure(evidence: dict) -> go.Figure:
    """Score drop when the object is hidden vs when the background is hidden."""
    figure = go.Figure(
        go.Bar(
            x=["object hidden", "background hidden"],
            y=[evidence["object_hidden_drop"], evidence["background_hidden_drop"]],
            marker_color=["#1f6f8b", "#8c2d19"],
        )
    )
    figure.update_layout(
        title="Masked-region test: mean score drop",
        yaxis_title="score drop",
        height=300,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return figure


def evidence_section(evidence: dict) -> None:
    def shown(value, digits=3):
        return "n/a" if value is None else f"{value:.{digits}f}"

    a, b, c, d = st.columns(4)
    a.metric(
        "Suspicion (1 = most)",
        shown(evidence["suspicion"]),
        help="Mean percentile rank of the three pieces of evidence.",
    )
    b.metric(
        "Cluster z-score",
        shown(evidence["cluster_z"], 2),
        help="How tightly the training positives cluster in embedding "
        "space, against random sets of the same size.",
    )
    c.metric(
        "Occlusion reliance",
        shown(evidence["occlusion_reliance"]),
        help="Background-hidden drop minus object-hidden drop.",
    )
    d.metric(
        "Precision train → test",
        f"{shown(evidence['precision_train'], 2)} → "
        f"{shown(evidence['precision_test'], 2)}",
    )
    if evidence.get("object_hidden_drop") is None:
        st.caption("No object masks for this label: no masked-region test.")
    else:
        st.plotly_chart(masked_region_figure(evidence))


def training_images(run: loaders.RunInfo, column: int) -> list[ui.Tile]:
    train = loaders.load_scores(run.path, "train")
    files = loaders.image_files(run.data_dir)
    rows = train.targets[:, column].nonzero()[0][:N_IMAGES]
    return [
        ui.Tile(
            files.get(str(train.ids[r])),
            f"`{train.ids[r]}` · score {train.scores[r, column]:.2f}",
        )
        for r in rows
    ]


def render() -> None:
    run = ui.pick_run()
    if not (run.path / runs.BIAS).exists():
        st.info(f"{run.name} has no bias report yet: run `imet bias --run {run.path}`.")
        return
    report = loaders.load_report(run.path, runs.BIAS)
    ranked = pd.DataFrame(report["labels"])
    if ranked.empty:
        st.info("No label has enough training positives to be ranked.")
        return
    check = report.get("manifest_check")
    if check and check.get("planted_recall_at_k") is not None:
        st.success(
            f"Planted biases found among the top {check['top_k']}: "
            f"{check['planted_recall_at_k']:.0%}."
        )
    st.dataframe(
        ranked[[c for c in COLUMNS if c in ranked]].round(3),
        hide_index=True,
        height=280,
    )
    label = state.select("Label", list(ranked["name"]), "label", scope=run.name)
    evidence = ranked[ranked["name"] == label].iloc[0].to_dict()
    evidence = {
        k: (None if pd.isna(v) else v) if not isinstance(v, dict) else v
        for k, v in evidence.items()
    }
    evidence_section(evidence)
    st.markdown(f"**Training images with {label}**")
    ui.image_grid(training_images(run, int(evidence["column"])))


ui.page("Label bias", render)
