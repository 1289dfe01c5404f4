"""``imet train``, ``evaluate``, ``compare``, ``pretrain-mae`` and ``demo``.

Wiring only: options become a configuration and the engine does the work.
torch is imported inside the handlers so that ``imet --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

from imet.cli import UsageError

_logger = logging.getLogger(__name__)

# Options of `imet train` that map one to one onto TrainConfig fields.
TRAIN_FIELDS = (
    "data_dir",
    "model",
    "pretrained",
    "arch",
    "epochs",
    "batch_size",
    "image_size",
    "cache_size",
    "lr",
    "weight_decay",
    "pos_weight_cap",
    "seed",
    "split_seed",
    "device",
    "num_workers",
)


def register(subparsers) -> None:
    _register_train(subparsers)
    p = subparsers.add_parser(
        "evaluate", help="recompute a run's metrics.json from its stored scores"
    )
    p.add_argument("--run", required=True, type=Path, help="run folder")
    p.set_defaults(func=evaluate_command)
    p = subparsers.add_parser("compare", help="print runs side by side")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run folders")
    p.set_defaults(func=compare_command)
    _register_pretrain(subparsers)
    p = subparsers.add_parser(
        "demo",
        help="build the demo collections and runs that are missing",
        description=(
            "Build, under ARTIFACTS, whatever of the demo is missing: the "
            "synthetic collection and the Met sample (data/), a ViT masked "
            "autoencoder per collection (pretrained/), a cnn, efficientnet-lite0 "
            "and MAE-pretrained vit run per collection (runs/), then the TANB "
            "screening, saliency evaluation and bias report of each run. About "
            "ten minutes on two CPU cores the first time; complete parts are "
            "reused and interrupted runs resumed."
        ),
    )
    p.add_argument(
        "--artifacts",
        type=Path,
        default=Path("artifacts"),
        help="folder to build in (default: artifacts)",
    )
    p.set_defaults(func=demo_command)


def _register_train(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model on an iMet-format folder into a run folder",
        description=(
            "Train with per-label weighted binary cross-entropy, keep the epoch "
            "with the best validation macro PR-AUC, then store scores, tuned "
            "thresholds, metrics and embeddings in the run folder. Options left "
            "out take the defaults of imet.train_config.TrainConfig (on --resume: "
            "the run's stored values). Under torchrun it trains on every process."
        ),
    )
    p.add_argument("--data-dir", type=Path, help="iMet-format folder")
    p.add_argument(
        "--run",
        "--run-dir",
        dest="run",
        required=True,
        type=Path,
        help="run folder to write (under torchrun write --run-dir: torchrun "
        "reads --run as an abbreviation of its own --run-path)",
    )
    p.add_argument("--model", help="cnn, efficientnet, efficientnet-lite0 or vit")
    p.add_argument("--pretrained", help="hub id or local folder of start weights")
    p.add_argument(
        "--arch",
        type=_json_object,
        help='architecture override as JSON, e.g. \'{"size": "tiny"}\' for vit',
    )
    p.add_argument("--epochs", type=int, help=_default("passes", "epochs"))
    p.add_argument(
        "--batch-size", type=int, help=_default("images per step", "batch_size")
    )
    p.add_argument(
        "--image-size", type=int, help=_default("input side, px", "image_size")
    )
    p.add_argument(
        "--cache-size", type=int, help="short side of cached images (8/7 of input)"
    )
    p.add_argument("--lr", type=float, help=_default("peak AdamW rate", "lr"))
    p.add_argument("--weight-decay", type=float, help=_default("", "weight_decay"))
    p.add_argument(
        "--pos-weight-cap",
        type=float,
        help=_default("bound of the per-label n_neg/n_pos weight", "pos_weight_cap"),
    )
    p.add_argument("--seed", type=int, help=_default("", "seed"))
    p.add_argument(
        "--split-seed", type=int, help=_default("if no split is saved", "split_seed")
    )
    p.add_argument("--device", help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:1, mps")
    p.add_argument(
        "--num-workers", type=int, help=_default("DataLoader workers", "num_workers")
    )
    p.add_argument("--resume", action="store_true", help="continue the run")
    p.add_argument("--overwrite", action="store_true", help="replace the run")
    p.set_defaults(func=train_command)


def _default(text: str, name: str) -> str:
    from imet.train_config import TrainConfig

    default = TrainConfig.__dataclass_fields__[name].default
    return f"{text} (default {default})" if text else f"default {default}"


def _register_pretrain(subparsers) -> None:
    p = subparsers.add_parser(
        "pretrain-mae",
        help="pretrain a ViT masked autoencoder on a collection's training images",
        description=(
            "Train transformers.ViTMAEForPreTraining on the training-split images "
            "(no labels) and save it with save_pretrained into RUN, so that "
            "`imet train --model vit --pretrained RUN` fine-tunes its encoder."
        ),
    )
    p.add_argument("--data-dir", required=True, type=Path)
    p.add_argument("--run", required=True, type=Path, help="folder to write")
    p.add_argument("--size", default="small", help="encoder size (small, base)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--mask-ratio", type=float, default=0.75)
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument("--overwrite", action="store_true", help="replace RUN")
    p.set_defaults(func=pretrain_mae_command)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not JSON: {err}") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object {...}")
    return value


def _quiet_other_processes() -> None:
    # Under torchrun every process logs; process 0 speaks for all of them.
    if int(os.environ.get("RANK", "0")) != 0:
        logging.getLogger().setLevel(logging.WARNING)


def train_command(args: argparse.Namespace) -> int:
    from imet import engine
    from imet.data import DataError
    from imet.runs import RunError
    from imet.train_config import ConfigurationError

    _quiet_other_processes()
    given = {name: getattr(args, name) for name in TRAIN_FIELDS}
    try:
        config = _train_config(args, given)
        engine.train(config, args.run, resume=args.resume, overwrite=args.overwrite)
    except (RunError, DataError, ConfigurationError) as err:
        raise UsageError(str(err)) from err
    return 0


def _train_config(args: argparse.Namespace, given: dict[str, Any]):
    from imet import engine
    from imet.models import MODELS
    from imet.train_config import TrainConfig

    if args.resume:
        if given["data_dir"] is not None:
            given["data_dir"] = str(Path(given["data_dir"]).resolve())
        config = engine.resume_config(args.run, given)
    else:
        if given["data_dir"] is None:
            raise UsageError("--data-dir is required (unless --resume)")
        values = {k: v for k, v in given.items() if v is not None}
        values["data_dir"] = str(Path(values["data_dir"]).resolve())
        try:
            config = TrainConfig(**values)
        except ValueError as err:
            raise UsageError(str(err)) from err
    if config.model not in MODELS:
        raise UsageError(
            f"unknown model {config.model!r}; choose one of {', '.join(MODELS)}"
        )
    if not Path(config.data_dir).is_dir():
        raise UsageError(f"data folder {config.data_dir} does not exist")
    return config


def evaluate_command(args: argparse.Namespace) -> int:
    from imet import engine
    from imet.runs import RunError

    try:
        metrics = engine.evaluate_run(args.run)
    except RunError as err:
        raise UsageError(str(err)) from err
    print(f"{args.run}: metrics.json rewritten from the stored scores")
    print(format_table(["figure", str(args.run.name)], metric_rows([metrics])))
    return 0


def compare_command(args: argparse.Namespace) -> int:
    from imet.runs import RunError

    try:
        print(compare_table(args.runs))
    except RunError as err:
        raise UsageError(str(err)) from err
    return 0


def compare_table(run_dirs: list[Path]) -> str:
    """Runs side by side: what each model is, then every figure of its
    ``metrics.json``."""
    from imet import runs

    configs, metrics = [], []
    for run in run_dirs:
        runs.require_run(run)
        configs.append(runs.read_config(run))
        metrics.append(runs.read_json(run, runs.METRICS))
    rows = [
        ["model", *(c.get("model", "?") for c in configs)],
        ["parameters", *(f"{c.get('n_parameters', 0):,}" for c in configs)],
        ["pretraining", *(str(c.get("pretrained_source") or "none") for c in configs)],
        ["image size", *(str(c.get("image_size", "?")) for c in configs)],
        [
            "epochs (best)",
            *(f"{c.get('epochs', '?')} ({c.get('best_epoch', '?')})" for c in configs),
        ],
    ]
    rows += metric_rows(metrics)
    return format_table(["", *(r.name for r in run_dirs)], rows)


def metric_rows(metrics: list[dict[str, Any]]) -> list[list[str]]:
    """One row per figure present in any of ``metrics`` (nested keys joined
    with '/'), one column per run; '-' where a run lacks the figure."""
    flat = [_flatten(m) for m in metrics]
    keys: list[str] = []
    for f in flat:
        keys += [k for k in f if k not in keys]
    return [[k, *(_format_value(f.get(k)) for f in flat)] for k in keys]


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            out.update(_flatten(value, f"{prefix}/{key}" if prefix else str(key)))
        return out
    # Per-label lists belong in per-label tables, not in a side-by-side view.
    if isinstance(obj, int | float) and not isinstance(obj, bool):
        return {prefix: obj}
    return {}


def _format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4f}"


def format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [str(row[0]).ljust(widths[0])]
        cells += [str(c).rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def pretrain_mae_command(args: argparse.Namespace) -> int:
    from imet import engine
    from imet.data import DataError
    from imet.runs import RunError
    from imet.train_config import MAEConfig

    if not args.data_dir.is_dir():
        raise UsageError(f"data folder {args.data_dir} does not exist")
    try:
        config = MAEConfig(
            data_dir=str(args.data_dir.resolve()),
            size=args.size,
            epochs=args.epochs,
            batch_size=args.batch_size,
            image_size=args.image_size,
            mask_ratio=args.mask_ratio,
            lr=args.lr,
            seed=args.seed,
            device=args.device,
            num_workers=args.num_workers,
        )
    except ValueError as err:
        raise UsageError(str(err)) from err
    try:
        engine.pretrain_mae(config, args.run, overwrite=args.overwrite)
    except (RunError, DataError) as err:
        raise UsageError(str(err)) from err
    return 0


def demo_command(args: argparse.Namespace) -> int:
    from imet.demo import DemoPlan, build_demo

    result = build_demo(args.artifacts, DemoPlan())
    for dataset, run_dirs in result.runs.items():
        print(f"\n{dataset}\n{compare_table(run_dirs)}")
    print(f"\ndemo built in {result.seconds['total']:.0f} s")
    if result.failed:
        print(f"these steps failed (see the log): {', '.join(result.failed)}")
        return 1
    return 0
