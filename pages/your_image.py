"""Your image: upload a PNG or JPEG and see the chosen model's predictions,
saliency and the most similar training images."""

import pandas as pd
import streamlit as st

from dashboard import explaining, loaders, state, ui, upload

N_SIMILAR = 6


def predictions(run: loaders.RunInfo, key: str, image) -> pd.DataFrame:
    labels = loaders.load_labels(run.path)
    scores = explaining.scores(run.path, key, image)  # (L,)
    thresholds = loaders.load_thresholds(run.path)
    table = pd.DataFrame(
        {
            "label": labels.names,
            "score": scores.round(3),
            "threshold": thresholds.astype(float).round(3),
            "predicted": scores >= thresholds,
        }
    )
    return table.sort_values("score", ascending=False, ignore_index=True)


def render() -> None:
    run = ui.pick_run()
    file = st.file_uploader(
        f"A PNG or JPEG image (at most {upload.MAX_MB} MB)", key="upload"
    )
    if file is None:
        st.info("Upload an artwork image to see what the model says about it.")
        return
    image, problem = upload.read_image(file.name, file.getvalue())
    if problem:
        st.error(problem)
        return
    key = explaining.image_key(image)
    table = predictions(run, key, image)
    left, right = st.columns([1, 2])
    with left:
        st.image(image, caption=f"{file.name} · {image.width}×{image.height}")
    with right:
        st.markdown(f"**Predictions of {run.name}** (tuned thresholds)")
        st.dataframe(table.head(15), hide_index=True)
    label = state.select(
        "Explain the label", list(table["label"]), "label", scope=f"{run.name}/{key}"
    )
    column = loaders.load_labels(run.path).column(label)
    method = state.select("Saliency method", explaining.methods(), "method")
    explaining.show_maps(explaining.maps(run.path, key, image, column, [method]), {})
    st.subheader("Most similar training images")
    neighbours = explaining.similar(run, key, image, None, N_SIMILAR)
    files = loaders.image_files(run.data_dir)
    ui.image_grid(
        [ui.Tile(files.get(i), f"`{i}` · cosine {s:.3f}") for i, s in neighbours],
        columns=N_SIMILAR,
        size=140,
    )


ui.page("Your image", render)
