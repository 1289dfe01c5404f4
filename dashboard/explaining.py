"""Saliency and similar images for the Saliency and Your image pages.

Maps are computed on demand by :func:`imet.explain.compute_maps`, one method
at a time so that a progress bar can follow a batch, and cached by image,
label and method.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from dashboard import loaders, ui


@dataclass(frozen=True)
class MapResult:
    """One method's map of one image and label."""

    method: str  # name in imet.explain.METHODS
    overlay: np.ndarray | None  # (H, W, 3) uint8 map over the image
    reason: str | None  # why the method cannot serve this model


def image_key(image: Image.Image) -> str:
    """Content hash: the cache key of an image that has no file."""
    return hashlib.sha1(image.tobytes() + repr(image.size).encode()).hexdigest()


@st.cache_data(show_spinner=False, max_entries=512)
def _one_map(run: Path, key: str, _image: Image.Image, column: int, method: str):
    from imet.explain import compute_maps, render_overlay

    model, config = loaders.load_model(run)
    size = int(config["image_size"])
    result = compute_maps(model, _image, column, [method], image_size=size)[method]
    if isinstance(result, str):
        return MapResult(method, None, result)
    return MapResult(method, np.asarray(render_overlay(_image, result)), None)


def maps(
    run: Path, key: str, image: Image.Image, column: int, methods: list[str]
) -> list[MapResult]:
    """Every method's map, with a progress bar while any is computed."""
    bar = st.progress(0.0, text="Computing saliency maps…")
    out = []
    for i, method in enumerate(methods):
        bar.progress(i / len(methods), text=f"Computing {method}…")
        out.append(_one_map(run, key, image, column, method))
    bar.empty()
    return out


def methods() -> list[str]:
    from imet.explain import METHODS

    return list(METHODS)


@st.cache_data(show_spinner=False, max_entries=256)
def _embedding(run: Path, key: str, _image: Image.Image) -> np.ndarray:
    from imet.similarity import embed_image

    model, config = loaders.load_model(run)
    return embed_image(model, _image, int(config["image_size"]))


def similar(
    run: loaders.RunInfo, key: str, image: Image.Image, label: str | None, k: int
) -> list[tuple[str, float]]:
    """(image id, cosine similarity) of the ``k`` nearest training images,
    only those carrying ``label`` when given."""
    index = loaders.similarity_index(run.path)
    found = index.query(_embedding(run.path, key, image), k=k, label=label)
    return [(n.id, n.similarity) for n in found]


def open_file(path: Path) -> Image.Image:
    from imet.data import open_image

    return open_image(path)


def show_maps(results: list[MapResult], figures: dict[str, str], columns: int = 4):
    """Overlays side by side, each with its faithfulness line or its reason."""
    for start in range(0, len(results), columns):
        cells = st.columns(columns)
        for cell, result in zip(cells, results[start : start + columns], strict=False):
            with cell:
                st.markdown(f"**{result.method}**")
                if result.overlay is None:
                    st.info(result.reason or "not available for this model")
                else:
                    st.image(result.overlay, width=180)
                if result.method in figures:
                    st.caption(figures[result.method])


def similar_grid(
    run: loaders.RunInfo,
    neighbours: list[tuple[str, float]],
    column: int,
    method: str,
) -> None:
    """Similar training images, each beside its own map for ``method``."""
    files = loaders.image_files(run.data_dir)
    for image_id, similarity in neighbours:
        path = files.get(image_id)
        left, right = st.columns(2)
        with left:
            ui.show_thumbnail(path, size=160)
            st.caption(f"`{image_id}` · cosine {similarity:.3f}")
        with right:
            if path is None:
                continue
            image = open_file(path)
            result = _one_map(run.path, image_id, image, column, method)
            if result.overlay is not None:
                st.image(result.overlay, width=160)
                st.caption(method)


def figure_lines(report: dict) -> dict[str, str]:
    """Method -> one line of its figures from ``explain/eval.json``: deletion
    and insertion areas against random order, localisation, and the
    model-randomisation sanity check."""
    names = {
        "deletion_auc": "deletion AUC (lower is better)",
        "random_deletion_auc": "random order",
        "insertion_auc": "insertion AUC (higher is better)",
        "random_insertion_auc": "random order",
        "mask_share": "saliency in object mask",
        "mask_area": "mask area",
        "pointing_hit": "pointing game",
    }
    lines: dict[str, str] = {}
    for method, row in report.get("methods", {}).items():
        if "unsupported" in row:
            lines[method] = f"not measured: {row['unsupported']}"
            continue
        parts = [
            f"{label} {row[key]:.3f}"
            for key, label in names.items()
            if isinstance(row.get(key), float)
        ]
        rho = row.get("randomisation_spearman")
        if rho is not None:
            verdict = "FAILS" if row.get("randomisation_flagged") else "passes"
            parts.append(f"sanity check {verdict} (ρ={rho:.2f} vs random weights)")
        lines[method] = " · ".join(parts) + f" · {row.get('pairs', 0)} pairs"
    return lines


@st.cache_data(show_spinner=False, max_entries=256)
def _scores(run: Path, key: str, _image: Image.Image) -> np.ndarray:
    from imet.engine import score_images

    model, config = loaders.load_model(run)
    found = score_images(model, [_image], image_size=int(config["image_size"]))
    return np.asarray(found.scores[0], dtype=np.float32)


def scores(run: Path, key: str, image: Image.Image) -> np.ndarray:
    """(L,) the model's probabilities for one image."""
    return _scores(run, key, image)
