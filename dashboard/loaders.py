"""Cached, typed readers of run folders for the dashboard pages.

Every reader takes the run folder and is keyed on the modification time of the
file it reads, so a run that ``imet tanb`` or ``imet bias`` just updated is
read again, while a page that is only re-rendered reads nothing from disk.
Readers raise :class:`imet.runs.RunError` (or ``OSError``/``ValueError`` for a
damaged file); :func:`dashboard.ui.page` turns those into messages.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from imet import runs

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunInfo:
    """One run folder as the run picker and the overview show it."""

    path: Path  # the run folder
    name: str  # path relative to the runs folder, unique among runs
    dataset: str  # name of the data folder the run trained on
    model: str  # model registry name
    image_size: int | None  # side of the square model input, pixels
    when: str  # when the run was written, local time, minutes
    data_dir: Path | None  # iMet-format folder the images come from
    finished: bool  # test scores exist (training completed)
    n_parameters: int | None  # model parameters, when the config records them
    pretrained: str  # where the start weights came from ("none" when random)


@dataclass(frozen=True)
class RunLabels:
    """The model's output columns."""

    ids: np.ndarray  # (L,) int64 attribute ids
    names: list[str]  # "category::value"
    categories: list[str]  # the part before "::" ("culture", "tags", ...)

    def column(self, name: str) -> int:
        return self.names.index(name)


def _stamp(path: Path) -> float:
    """Modification time used as a cache key; -1 when the file is missing."""
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0


def _run_info(run: Path, root: Path) -> RunInfo:
    config = runs.read_config(run)
    data_dir = config.get("data_dir")
    size = config.get("image_size")
    written = dt.datetime.fromtimestamp(_stamp(run / runs.CONFIG))
    try:
        name = str(run.relative_to(root)) if run != root else run.name
    except ValueError:
        name = str(run)
    return RunInfo(
        path=run,
        name=name,
        dataset=Path(data_dir).name if data_dir else "?",
        model=str(config.get("model", "?")),
        image_size=int(size) if size else None,
        when=written.strftime("%Y-%m-%d %H:%M"),
        data_dir=Path(data_dir) if data_dir else None,
        finished=runs.scores_path(run, "test").exists(),
        n_parameters=config.get("n_parameters"),
        pretrained=str(config.get("pretrained_source") or "none"),
    )


@st.cache_data(show_spinner=False, ttl=30)
def list_runs(root: Path) -> list[RunInfo]:
    """Every readable run under ``root``; unreadable ones are logged and left
    out. Cached for 30 seconds so that new runs appear without a restart."""
    found = []
    for run in runs.find_runs(root):
        try:
            found.append(_run_info(run, root))
        except (runs.RunError, OSError, ValueError) as err:
            _logger.warning("skipping run %s: %s", run, err)
    return found


@st.cache_data(show_spinner=False)
def _labels(run: Path, stamp: float) -> RunLabels:
    ids, names = runs.read_labels(run)
    categories = [n.split("::", 1)[0] if "::" in n else "other" for n in names]
    return RunLabels(ids=ids, names=names, categories=categories)


def load_labels(run: Path) -> RunLabels:
    return _labels(run, _stamp(run / runs.LABELS))


@st.cache_data(show_spinner=False)
def _scores(run: Path, split: str, stamp: float) -> runs.Scores:
    return runs.read_scores(run, split)


def load_scores(run: Path, split: str = "test") -> runs.Scores:
    return _scores(run, split, _stamp(runs.scores_path(run, split)))


@st.cache_data(show_spinner=False)
def _thresholds(run: Path, stamp: float) -> np.ndarray:
    return runs.read_thresholds(run)


def load_thresholds(run: Path) -> np.ndarray:
    """Tuned per-label thresholds, (L,) float32."""
    return _thresholds(run, _stamp(run / runs.THRESHOLDS))


@st.cache_data(show_spinner=False)
def _report(run: Path, name: str, stamp: float) -> dict[str, Any]:
    return runs.read_json(run, name)


def load_report(run: Path, name: str) -> dict[str, Any]:
    """A JSON report of the run: ``metrics.json``, ``tanb/report.json``,
    ``explain/eval.json``, ``bias.json``."""
    return _report(run, name, _stamp(run / name))


def _flat(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested figures as one level: {"pr_auc": {"macro": x}} -> {"pr_auc macro": x}."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, f"{name} "))
        elif not isinstance(value, list):
            out[name] = value
    return out


def comparison_table(found: list[RunInfo], split: str = "test") -> pd.DataFrame:
    """One row per run with a metrics.json: model facts, then every figure of
    ``split``."""
    rows = []
    for run in found:
        try:
            metrics = load_report(run.path, runs.METRICS)
        except (runs.RunError, OSError, ValueError):
            continue
        facts = {k: v for k, v in metrics.items() if not isinstance(v, dict | list)}
        rows.append(
            {
                "run": run.name,
                "model": run.model,
                "dataset": run.dataset,
                "parameters": run.n_parameters,
                "pretraining": run.pretrained,
            }
            | facts
            | _flat(metrics.get(split, {}))
        )
    return pd.DataFrame(rows)


@st.cache_data(show_spinner=False)
def _history(run: Path, stamp: float) -> pd.DataFrame:
    return pd.DataFrame(runs.read_history(run))


def load_history(run: Path) -> pd.DataFrame:
    """One row per epoch; empty when the run has logged none."""
    return _history(run, _stamp(run / runs.HISTORY))


@st.cache_data(show_spinner=False)
def _per_label(run: Path, stamps: tuple[float, float]) -> pd.DataFrame:
    from imet.metrics import per_label_metrics

    scores = runs.read_scores(run, "test")
    thresholds = runs.read_thresholds(run)
    table = per_label_metrics(scores.targets, scores.scores, thresholds)
    return pd.DataFrame(table)


def load_per_label(run: Path) -> pd.DataFrame:
    """Per-label test figures (support, average precision, F2, threshold)."""
    stamps = (_stamp(runs.scores_path(run, "test")), _stamp(run / runs.THRESHOLDS))
    return _per_label(run, stamps)


@st.cache_data(show_spinner=False)
def _pr_points(run: Path, column: int, stamp: float) -> tuple[np.ndarray, ...]:
    from imet.metrics import pr_curve

    scores = runs.read_scores(run, "test")
    return tuple(pr_curve(scores.targets[:, column], scores.scores[:, column]))


def pr_points(run: Path, column: int) -> tuple[np.ndarray, ...]:
    """Test precision, recall and score cuts of one label (scikit-learn order)."""
    return _pr_points(run, column, _stamp(runs.scores_path(run, "test")))


@st.cache_data(show_spinner=False)
def _image_files(data_dir: Path, stamp: float) -> dict[str, Path]:
    from imet.data import load_collection

    collection = load_collection(data_dir, check_images=False, progress=False)
    return dict(zip(collection.ids, collection.paths, strict=True))


def image_files(data_dir: Path | None) -> dict[str, Path]:
    """Image id -> file of the collection a run trained on."""
    if data_dir is None:
        raise runs.RunError("the run's config.json does not name its data_dir")
    if not data_dir.is_dir():
        raise runs.RunError(
            f"the run's data folder {data_dir} is missing; rebuild it "
            "(`make demo` for the demo runs) or move it back"
        )
    return _image_files(data_dir, _stamp(data_dir / "train.csv"))


@st.cache_data(show_spinner=False, max_entries=2000)
def thumbnail(path: Path, size: int = 160) -> np.ndarray:
    """An RGB thumbnail (H, W, 3) uint8 whose longer side is ``size``."""
    from imet.data import open_image

    image = open_image(path)
    image.thumbnail((size, size))
    return np.asarray(image.convert("RGB"))


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _model(run: Path, stamp: float):
    return runs.load_model(run, device="cpu")


def load_model(run: Path):
    """The run's best weights in eval mode and its configuration, kept in
    memory (a few models at most) across reruns and sessions."""
    return _model(run, _stamp(run / runs.WEIGHTS))


@st.cache_resource(show_spinner="Loading the training embeddings…", max_entries=4)
def _similarity(run: Path, stamp: float):
    from imet.similarity import SimilarityIndex

    return SimilarityIndex.from_run(run)


def similarity_index(run: Path):
    """Nearest-training-image search over the run's stored embeddings."""
    return _similarity(run, _stamp(run / runs.EMBEDDINGS))


TREE = f"{runs.TANB_DIR}/tree.json"
DECISIONS = f"{runs.TANB_DIR}/decisions.npz"
TANB_REPORT = f"{runs.TANB_DIR}/report.json"


@st.cache_data(show_spinner=False)
def _tree(run: Path, stamp: float):
    from imet.tanb import load_tree as read_tree

    return read_tree(run)


def load_tree(run: Path):
    """The run's TANB label tree (:class:`imet.tanb.TreeNetwork`)."""
    return _tree(run, _stamp(run / TREE))


@st.cache_data(show_spinner=False)
def _decisions(run: Path, stamp: float) -> dict[str, np.ndarray]:
    from imet.tanb import load_decisions

    return load_decisions(run)


def load_decisions(run: Path) -> dict[str, np.ndarray]:
    """Per-image choices of every TANB strategy on the test split."""
    return _decisions(run, _stamp(run / DECISIONS))


@st.cache_data(show_spinner=False)
def _image_decisions(run: Path, image_id: str, stamp: float) -> dict[str, list]:
    from imet.tanb import image_decisions

    return image_decisions(run, image_id)


def image_decisions(run: Path, image_id: str) -> dict[str, list[dict]]:
    """What each TANB strategy kept, dropped or added for one test image."""
    return _image_decisions(run, image_id, _stamp(run / DECISIONS))


def decision_rules(run: Path) -> list[str]:
    """Names of the decision rules the run offers (TANB ones need
    ``imet tanb --run``)."""
    from dashboard import decisions

    rules = [decisions.HALF, decisions.TUNED]
    if (run / DECISIONS).exists():
        rules += decisions.tanb_rules(load_decisions(run))
    return rules


def rule_thresholds(run: Path, rule: str) -> np.ndarray:
    """(L,) the per-label score cut a rule starts from."""
    from dashboard import decisions

    if rule == decisions.HALF:
        return np.full(len(load_labels(run).names), 0.5, dtype=np.float32)
    return load_thresholds(run)


def predict(run: Path, rule: str) -> np.ndarray:
    """(n_test, L) bool labels given to each test image under ``rule``."""
    from dashboard import decisions

    scores = load_scores(run, "test")
    if rule in (decisions.HALF, decisions.TUNED):
        return scores.scores >= rule_thresholds(run, rule)[None, :]
    return decisions.tanb_predictions(load_decisions(run), rule, scores)
