"""Overview: the runs found, the model comparison, training curves."""

import pandas as pd
import streamlit as st

from dashboard import charts, loaders, state, ui


def render() -> None:
    root = state.runs_root()
    found = loaders.list_runs(root)
    if not found:
        st.info(ui.NO_RUNS.format(root=root))
        return
    st.subheader(f"Runs in `{root}`")
    st.dataframe(
        pd.DataFrame(
            {
                "run": r.name,
                "dataset": r.dataset,
                "model": r.model,
                "image size": r.image_size,
                "written": r.when,
                "finished": r.finished,
            }
            for r in found
        ),
        hide_index=True,
    )
    st.subheader("Model comparison (test split)")
    table = loaders.comparison_table(found)
    if table.empty:
        st.info("No run has a metrics.json yet: it is written when training ends.")
    else:
        st.dataframe(table, hide_index=True)
    st.subheader("Training curves")
    run = ui.pick_run(finished=False, root=root)
    figures = charts.history_figures(loaders.load_history(run.path))
    if not figures:
        st.info(f"{run.name} has no history.jsonl entries yet.")
    for column, figure in zip(st.columns(len(figures) or 1), figures, strict=False):
        column.plotly_chart(figure)


ui.page("Overview", render)
