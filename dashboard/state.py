"""The view's state (run, image, label, method) kept in the URL.

A value chosen on a page is written to ``st.query_params`` so that the address
bar always holds a link to the current view. It is also remembered in
``st.session_state``, because moving to another page through the navigation starts that
page with an empty query string; the next page picks the remembered run or
label up again and writes it back into its own URL.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st

T = TypeVar("T")

DEFAULT_RUNS_ROOT = "artifacts/runs"
RUNS_ROOT_ENV = "IMET_RUNS"
_MEMORY = "imet_view_state"


def _memory() -> dict[str, str]:
    return st.session_state.setdefault(_MEMORY, {})


def get(param: str, default: str | None = None) -> str | None:
    """The URL's value of ``param``, else the one remembered, else ``default``."""
    value = st.query_params.get(param)
    if value is not None:
        return value
    return _memory().get(param, default)


def put(param: str, value: Any) -> None:
    """Write ``value`` to the URL and remember it for the other pages."""
    text = str(value)
    _memory()[param] = text
    if st.query_params.get(param) != text:
        st.query_params[param] = text


def select(
    label: str,
    options: Sequence[T],
    param: str,
    *,
    scope: str = "",
    container: Any = None,
    format_func: Callable[[T], str] = str,
    help: str | None = None,
) -> T:
    """A selectbox whose choice lives in the query parameter ``param``.

    ``scope`` names what the options depend on (the run, for labels), so that a
    new run gets a fresh widget instead of a stale choice that is not among
    its options. Returns the chosen option; ``options`` must not be empty.
    """
    texts = [str(option) for option in options]
    wanted = get(param)
    index = texts.index(wanted) if wanted in texts else 0
    where = container if container is not None else st
    choice = where.selectbox(
        label,
        options,
        index=index,
        key=f"{param}@{scope}",
        format_func=format_func,
        help=help,
    )
    put(param, choice)
    return choice


def runs_root() -> Path:
    """The folder searched for runs: sidebar field, else $IMET_RUNS, else the
    demo's ``artifacts/runs``."""
    default = os.environ.get(RUNS_ROOT_ENV) or DEFAULT_RUNS_ROOT
    remembered = st.session_state.get("imet_runs_root", default)
    typed = st.sidebar.text_input(
        "Runs folder",
        value=remembered,
        key="runs_root_field",
        help=f"Folder searched for run folders (default ${RUNS_ROOT_ENV}, "
        f"else {DEFAULT_RUNS_ROOT}).",
    )
    st.session_state["imet_runs_root"] = typed.strip() or default
    return Path(st.session_state["imet_runs_root"]).expanduser()


def current_root() -> Path:
    """The runs folder chosen by :func:`runs_root` earlier in this run."""
    default = os.environ.get(RUNS_ROOT_ENV) or DEFAULT_RUNS_ROOT
    return Path(st.session_state.get("imet_runs_root", default)).expanduser()
