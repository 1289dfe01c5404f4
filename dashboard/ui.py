"""UI parts shared by the pages: the error guard, the run picker, image grids."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from dashboard import loaders, state
from imet import runs

_logger = logging.getLogger(__name__)

NO_RUNS = (
    "No runs found under `{root}`. Build the demo runs with `make demo` "
    "(or `imet demo --artifacts artifacts`), train one with "
    "`imet train --data-dir DIR --model cnn --run {root}/NAME`, or type another "
    "folder in the sidebar."
)


def page(title: str, render: Callable[[], None]) -> None:
    """Draw one page; whatever a run folder lacks becomes a message, never a
    traceback."""
    st.title(title)
    try:
        render()
    except runs.RunError as err:
        st.info(str(err))
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as err:
        _logger.warning("page %s failed: %s", title, err, exc_info=True)
        st.error(f"Part of the run folder could not be read: {err}")
    except Exception as err:  # noqa: BLE001 - the page must stay up
        _logger.exception("page %s failed", title)
        st.error(f"This view could not be shown ({type(err).__name__}: {err}).")


def pick_run(*, finished: bool = True, root: Path | None = None) -> loaders.RunInfo:
    """Sidebar run picker; stops the page with advice when there is none.

    ``finished`` restricts the choice to runs with test scores; ``root`` is
    the runs folder when the page already drew its field."""
    root = root if root is not None else state.runs_root()
    found = loaders.list_runs(root)
    if not found:
        st.info(NO_RUNS.format(root=root))
        st.stop()
    usable = [r for r in found if r.finished] if finished else found
    if not usable:
        st.info(
            f"The runs under `{root}` have not finished training (no test "
            "scores yet): let `imet train` finish, or resume it with --resume."
        )
        st.stop()
    # Runs on a collection with object masks (the synthetic one, whose planted
    # biases are the known answer) come first, so a new user lands on them.
    usable = sorted(usable, key=lambda r: not _has_masks(r))
    by_name = {r.name: r for r in usable}
    name = state.select(
        "Run",
        list(by_name),
        "run",
        container=st.sidebar,
        format_func=lambda n: f"{n}  ({by_name[n].model}, {by_name[n].dataset})",
    )
    return by_name[name]


def _has_masks(run: loaders.RunInfo) -> bool:
    return run.data_dir is not None and (run.data_dir / "masks").is_dir()


@dataclass(frozen=True)
class Tile:
    """One image of a grid."""

    path: Path | None  # image file; None when it cannot be found
    caption: str  # markdown under the image


def image_grid(tiles: Sequence[Tile], *, columns: int = 5, size: int = 160) -> None:
    """Thumbnails in rows of ``columns``; a missing file shows its caption."""
    for start in range(0, len(tiles), columns):
        cells = st.columns(columns)
        for cell, tile in zip(cells, tiles[start : start + columns], strict=False):
            with cell:
                show_thumbnail(tile.path, size=size)
                st.caption(tile.caption)


def show_thumbnail(path: Path | None, *, size: int = 160) -> None:
    if path is None:
        st.caption("(image file not found)")
        return
    try:
        st.image(loaders.thumbnail(path, size), width=size)
    except Exception as err:  # noqa: BLE001 - one bad file must not sink a grid
        st.caption(f"(unreadable image: {err})")
