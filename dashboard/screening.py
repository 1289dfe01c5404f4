"""The TANB page's lower half: the strategies' test F2, and for one test image
which labels the network kept, dropped or added, with the reason."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import decisions, loaders, state, ui


def reason(item: dict, keep: float, tree_cut: float) -> str:
    """One sentence on why the network decided as it did for one label."""
    p, score = item["probability"], item["score"]
    verdict = item["verdict"]
    if verdict == "kept" and "over_threshold" not in item:
        return f"posterior {p:.2f} ≥ {keep:.2f} given the other selected labels"
    if verdict == "dropped" and "over_threshold" not in item:
        return f"posterior {p:.2f} < {keep:.2f} given the other selected labels"
    if verdict == "added":
        return (
            f"score {score:.2f} under its threshold, but the tree's posterior "
            f"{p:.2f} ≥ {tree_cut:.2f}"
        )
    if verdict == "dropped":
        return f"over its threshold, but the tree's posterior {p:.2f} < {tree_cut:.2f}"
    if verdict == "kept":
        return f"over its threshold and the tree's posterior {p:.2f} ≥ {tree_cut:.2f}"
    return "only in the most probable joint assignment"


def strategy_table(report: dict) -> pd.DataFrame:
    columns = [
        "strategy",
        "n",
        "f2",
        "f2_baseline",
        "added_right",
        "added_wrong",
        "removed_right",
        "removed_wrong",
    ]
    table = pd.DataFrame(report.get("rows", []))
    return table[[c for c in columns if c in table.columns]].round(4)


def image_section(run: loaders.RunInfo, tree) -> None:
    st.subheader("Screening: what the network did")
    if not (run.path / loaders.DECISIONS).exists():
        st.info(
            f"{run.name} has no TANB decisions yet: run `imet tanb --run "
            f"{run.path}` to screen its test predictions."
        )
        return
    report = loaders.load_report(run.path, loaders.TANB_REPORT)
    keep, tree_cut = report["keep_probability"], report["tree_probability"]
    with st.expander("F2 of every strategy on the test split", expanded=False):
        st.dataframe(strategy_table(report), hide_index=True)
    ids = [str(i) for i in loaders.load_scores(run.path, "test").ids]
    image = state.select("Test image", ids, "image", scope=run.name)
    per_strategy = loaders.image_decisions(run.path, image)
    strategy = state.select(
        "Strategy",
        list(per_strategy),
        "strategy",
        format_func=decisions.strategy_title,
    )
    left, right = st.columns([1, 3])
    with left:
        files = loaders.image_files(run.data_dir)
        ui.show_thumbnail(files.get(image), size=240)
    with right:
        items = per_strategy[strategy]
        if not items:
            st.info("The strategy considered no label for this image.")
            return
        truth = _true_labels(run, image)
        st.dataframe(
            pd.DataFrame(
                {
                    "label": item["name"],
                    "score": round(item["score"], 3),
                    "posterior": round(item["probability"], 3),
                    "verdict": item["verdict"],
                    "true": item["name"] in truth,
                    "why": reason(item, keep, tree_cut),
                }
                for item in items
            ),
            hide_index=True,
        )


def _true_labels(run: loaders.RunInfo, image: str) -> set[str]:
    scores = loaders.load_scores(run.path, "test")
    names = loaders.load_labels(run.path).names
    row = [str(i) for i in scores.ids].index(image)
    return {names[j] for j in scores.targets[row].nonzero()[0]}
