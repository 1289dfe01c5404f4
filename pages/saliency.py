"""Saliency: every method's map of one image and label for the chosen model,
with its measured faithfulness, beside the most similar training images that
carry the label."""

import streamlit as st

from dashboard import explaining, loaders, state, ui

EVAL = "explain/eval.json"
N_SIMILAR = 4


def faithfulness(run: loaders.RunInfo) -> dict[str, str]:
    """Method -> one line of its figures from ``explain/eval.json``."""
    if not (run.path / EVAL).exists():
        st.caption(
            f"No faithfulness figures yet: run `imet explain-eval --run {run.path}`."
        )
        return {}
    report = loaders.load_report(run.path, EVAL)
    return explaining.figure_lines(report)


def render() -> None:
    run = ui.pick_run()
    labels = loaders.load_labels(run.path)
    scores = loaders.load_scores(run.path, "test")
    ids = [str(i) for i in scores.ids]
    image_id = state.select("Image (test split)", ids, "image", scope=run.name)
    row = ids.index(image_id)
    ranked = sorted(range(len(labels.names)), key=lambda j: -scores.scores[row, j])
    label = state.select(
        "Label",
        [labels.names[j] for j in ranked],
        "label",
        scope=f"{run.name}/{image_id}",
        format_func=lambda n: f"{n} ({scores.scores[row, labels.column(n)]:.2f})",
    )
    column = labels.column(label)
    path = loaders.image_files(run.data_dir).get(image_id)
    if path is None:
        st.info(f"The image file of {image_id} is not in {run.data_dir}.")
        return
    image = explaining.open_file(path)
    truth = "carries" if scores.targets[row, column] else "does not carry"
    st.caption(f"`{image_id}` {truth} {label}; score {scores.scores[row, column]:.3f}.")
    main, side = st.columns([3, 1])
    with main:
        results = explaining.maps(
            run.path, image_id, image, column, explaining.methods()
        )
        explaining.show_maps(results, faithfulness(run))
    with side:
        st.markdown(f"**Similar training images with {label}**")
        shown = [r.method for r in results if r.overlay is not None]
        method = state.select("Their maps by", shown, "method") if shown else None
        neighbours = explaining.similar(run, image_id, image, label, N_SIMILAR)
        if not neighbours:
            st.info(f"No training image carries {label}.")
        elif method:
            explaining.similar_grid(run, neighbours, column, method)


ui.page("Saliency", render)
