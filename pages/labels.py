"""Labels: every label's test figures, its PR curve, and the same label across
models."""

import pandas as pd
import streamlit as st

from dashboard import charts, loaders, state, ui


def label_table(run: loaders.RunInfo) -> pd.DataFrame:
    labels = loaders.load_labels(run.path)
    table = loaders.load_per_label(run.path).reset_index(drop=True)
    front = pd.DataFrame({"label": labels.names, "category": labels.categories})
    extra = [c for c in table.columns if c not in front.columns]
    return pd.concat([front, table[extra]], axis=1)


def across_models(label: str, current: loaders.RunInfo) -> pd.DataFrame:
    """The label's row in every finished run of the same dataset."""
    rows = []
    for run in loaders.list_runs(state.current_root()):
        if not run.finished or run.dataset != current.dataset:
            continue
        table = label_table(run)
        match = table[table["label"] == label]
        if len(match):
            rows.append({"run": run.name, "model": run.model} | match.iloc[0].to_dict())
    return pd.DataFrame(rows)


def render() -> None:
    run = ui.pick_run()
    table = label_table(run)
    query = st.text_input(
        "Search labels", value=state.get("q", ""), placeholder="e.g. hourglass"
    )
    state.put("q", query)
    shown = table[table["label"].str.contains(query, case=False, regex=False)]
    st.caption(f"{len(shown)} of {len(table)} labels; click a column to sort.")
    st.dataframe(shown, hide_index=True, height=320)
    if shown.empty:
        st.info("No label matches the search.")
        return
    label = state.select("Label", list(shown["label"]), "label", scope=run.name)
    column = loaders.load_labels(run.path).column(label)
    scores = loaders.load_scores(run.path, "test")
    threshold = float(loaders.load_thresholds(run.path)[column])
    left, right = st.columns(2)
    with left:
        if scores.targets[:, column].sum() == 0:
            st.info(f"No test image carries {label}: there is no PR curve to draw.")
        else:
            precision, recall, cuts = loaders.pr_points(run.path, column)
            st.plotly_chart(
                charts.pr_figure(
                    precision, recall, cuts, threshold, title=f"{label} (test)"
                )
            )
    with right:
        st.markdown(f"**{label} across models** ({run.dataset})")
        st.dataframe(across_models(label, run), hide_index=True)


ui.page("Labels", render)
