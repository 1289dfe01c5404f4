"""Training and scoring loops, in one process or under ``torchrun`` (DDP).

`imet train` wires its options into a :class:`~imet.train_config.TrainConfig`
and calls :func:`train`, which fills a run folder (layout in :mod:`imet.runs`):

1. read the collection, its split and the decoded-image cache;
2. train with binary cross-entropy on logits, weighting the positives of each
   label by ``clamp(n_neg / n_pos, 1, pos_weight_cap)`` counted on the training
   split (weight 1 for a label without training positives), AdamW, linear
   warm-up then cosine decay, one optimizer step per batch;
3. after every epoch: validation loss and PR-AUC (macro, micro, weighted), one
   line in ``history.jsonl``, a checkpoint for ``--resume``; the epoch with the
   best validation macro PR-AUC is the run's model;
4. with the best weights: sigmoid scores of every split, per-label F2-optimal
   thresholds tuned on train + validation scores, ``metrics.json``, and the
   embeddings of the training images.

Under ``torchrun`` every process trains on its own share of each epoch
(DistributedSampler), scores its share of each split, and the shares are
gathered; only process 0 writes files.

Each epoch draws its randomness (shuffling, augmentation, dropout) from
generators seeded with (seed, epoch, process), so an epoch computes the same
thing whether or not the run was interrupted before it: a resumed run ends with
the weights an uninterrupted run would have, without saving RNG states.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import platform
import random
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from tqdm.auto import tqdm

import imet
from imet import runs
from imet.atomic import atomic_open, atomic_path
from imet.train_config import ConfigurationError, MAEConfig, TrainConfig

_logger = logging.getLogger(__name__)

# The validation figure that picks the run's best epoch.
SELECTION_METRIC = "val_pr_auc_macro"
PR_AUC_AVERAGES = ("macro", "micro", "weighted")
CHECKPOINT_STATE = "state.pt"
THRESHOLD_FALLBACK = 0.5
POS_WEIGHT_RULE = (
    "pos_weight = clamp(n_neg / n_pos, 1, cap) per label, counted on the "
    "training split; 1 for labels without training positives"
)

# Called after every optimizer step with (epoch index from 0, step in epoch).
StepHook = Callable[[int, int], None]


# ---------------------------------------------------------------- processes


@dataclass(frozen=True)
class Processes:
    """This process's place among the processes ``torchrun`` started."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()


SINGLE_PROCESS = Processes()


def detect_processes() -> Processes:
    """Read the variables ``torchrun`` sets; one process when they are absent."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size < 2:
        return SINGLE_PROCESS
    return Processes(
        rank=int(os.environ["RANK"]),
        world_size=world_size,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device cuda requested but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device mps requested but MPS is not available")
    return device


def start_processes(procs: Processes, device: torch.device) -> None:
    """Join the process group: NCCL between GPUs, gloo on the CPU."""
    if procs.distributed and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend)
        _logger.info("process %d of %d (%s)", procs.rank, procs.world_size, backend)


def stop_processes(procs: Processes) -> None:
    if procs.distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _gather(procs: Processes, obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order (the object itself when alone)."""
    if not procs.distributed:
        return [obj]
    out: list[Any] = [None] * procs.world_size
    torch.distributed.all_gather_object(out, obj)
    return out


# ---------------------------------------------------------------- seeding


def seed_everything(*keys: int) -> int:
    """Seed torch, NumPy and ``random`` from ``keys``; returns the seed used."""
    seed = int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    return seed


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; NumPy and random
    # would otherwise start every worker from the same forked state.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _autocast(device: torch.device, enabled: bool):
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper, or the model."""
    return getattr(model, "module", model)


# ---------------------------------------------------------------- data


@dataclass
class RunData:
    """A collection with its split and decoded-image cache."""

    collection: Any  # imet.data.Collection
    splits: dict[str, np.ndarray]  # split name -> row indices
    images: Any  # imet.data.ImageCache

    def dataset(self, split: str, transform) -> Dataset:
        from imet.data import ImageDataset

        rows = self.splits[split]
        return ImageDataset(self.images, rows, self.collection.targets, transform)

    def targets(self, split: str) -> np.ndarray:
        """(n, L) uint8 true labels of the split, in split order."""
        rows = self.splits[split]
        return self.collection.targets[rows].toarray().astype(np.uint8)

    def ids(self, split: str) -> list[str]:
        return [self.collection.ids[r] for r in self.splits[split]]


def load_data(
    data_dir: str | Path,
    *,
    cache_short_side: int,
    split_seed: int = 0,
    procs: Processes = SINGLE_PROCESS,
    progress: bool = True,
) -> RunData:
    """Read the collection, split it and build the image cache.

    Process 0 goes first so that the split file and the cache are written
    once; the others then read what it wrote.
    """
    from imet.data import ImageCache, load_collection, load_or_make_splits

    def load() -> RunData:
        show = progress and procs.is_main
        col = load_collection(data_dir, progress=show)
        splits = load_or_make_splits(col, seed=split_seed)
        cache = ImageCache.build(col, short_side=cache_short_side, progress=show)
        return RunData(col, splits, cache)

    data = load() if procs.is_main else None
    procs.barrier()
    return data if data is not None else load()


def label_pos_weight(targets: np.ndarray, cap: float) -> torch.Tensor:
    """Per-label positive weight: ``clamp(n_neg / n_pos, 1, cap)``, 1 when a
    label has no positive. ``targets``: (n, L) 0/1."""
    n = targets.shape[0]
    n_pos = np.asarray(targets.sum(axis=0), dtype=np.float64).ravel()  # (L,)
    ratio = np.divide(n - n_pos, n_pos, out=np.ones_like(n_pos), where=n_pos > 0)
    return torch.from_numpy(np.clip(ratio, 1.0, cap).astype(np.float32))


# ---------------------------------------------------------------- scoring


@dataclass
class Predictions:
    """Model outputs for a dataset, row i for item i."""

    logits: np.ndarray  # (n, L) float32
    features: np.ndarray | None  # (n, D) float32 pooled features, if asked

    @property
    def scores(self) -> np.ndarray:
        """(n, L) sigmoid probabilities."""
        return (1.0 / (1.0 + np.exp(-self.logits.astype(np.float64)))).astype(
            np.float32
        )


def predict(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int,
    device: torch.device,
    procs: Processes = SINGLE_PROCESS,
    features: bool = False,
    amp: bool = True,
    num_workers: int = 0,
    progress: bool = False,
    desc: str = "scoring",
) -> Predictions:
    """Logits (and pooled features) of every item; under DDP each process
    computes every world_size-th item and all processes receive the whole."""
    n = len(dataset)
    if n == 0:
        raise ValueError("nothing to score: the dataset is empty")
    shard = np.arange(procs.rank, n, procs.world_size)
    loader = DataLoader(
        Subset(dataset, shard.tolist()), batch_size=batch_size, num_workers=num_workers
    )
    net = unwrap(model)
    was_training = net.training
    net.eval()
    logit_parts, feature_parts = [], []
    bar = tqdm(loader, desc=desc, unit="batch", disable=not progress, leave=False)
    with torch.inference_mode(), _autocast(device, amp):
        for batch in bar:
            x = _inputs(batch).to(device, non_blocking=True)  # (B, 3, H, W)
            pooled = net.forward_features(x)  # (B, D)
            logit_parts.append(net.forward_head(pooled).float().cpu().numpy())
            if features:
                feature_parts.append(pooled.float().cpu().numpy())
    net.train(was_training)
    local = (shard, _concat(logit_parts), _concat(feature_parts) if features else None)
    return _assemble(_gather(procs, local), n)


def _inputs(batch) -> torch.Tensor:
    return batch[0] if isinstance(batch, list | tuple) else batch


def _concat(parts: list[np.ndarray]) -> np.ndarray | None:
    return np.concatenate(parts) if parts else None


def _assemble(shares: list[tuple], n: int) -> Predictions:
    """Put every process's rows back in dataset order."""
    width = next(s[1].shape[1] for s in shares if s[1] is not None)
    logits = np.empty((n, width), dtype=np.float32)
    feats = None
    for rows, share_logits, share_feats in shares:
        if share_logits is None:
            continue
        logits[rows] = share_logits
        if share_feats is not None:
            if feats is None:
                feats = np.empty((n, share_feats.shape[1]), dtype=np.float32)
            feats[rows] = share_feats
    return Predictions(logits, feats)


class _ImageList(Dataset):
    """PIL images through a transform, for scoring images outside a collection."""

    def __init__(self, images: Sequence, transform) -> None:
        self.images = images
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(self.images[i])


def score_images(
    model: nn.Module,
    images: Sequence | Dataset,
    *,
    image_size: int,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    features: bool = False,
    progress: bool = False,
) -> Predictions:
    """Score images with a trained model (``load_model``): a sequence of PIL
    images (evaluation transform applied here) or a dataset of tensors or
    ``(tensor, target)`` pairs. ``.scores`` holds the probabilities."""
    from PIL import Image

    from imet.transforms import eval_transform

    if len(images) and isinstance(images[0], Image.Image):
        images = _ImageList(images, eval_transform(image_size))
    return predict(
        model,
        images,
        batch_size=batch_size,
        device=torch.device(device),
        features=features,
        progress=progress,
    )


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero). (n, D) -> (n, D)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


# ---------------------------------------------------------------- training


@dataclass
class _Best:
    """The best epoch so far by SELECTION_METRIC."""

    epoch: int | None = None  # counted from 1
    score: float = -math.inf
    file: str | None = None  # its weights, inside the checkpoint folder


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """Learning-rate factor: linear rise over ``warmup_steps``, then cosine
    decay to zero at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def make_optimizer(model: nn.Module, lr: float, weight_decay: float):
    """AdamW; biases and normalisation scales (1-D tensors) are not decayed."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr)


def _save_weights(model: nn.Module, path: Path) -> None:
    from safetensors.torch import save_model

    with atomic_path(path) as tmp:
        save_model(unwrap(model), str(tmp))


def _load_weights(model: nn.Module, path: Path) -> None:
    from safetensors.torch import load_model

    device = next(unwrap(model).parameters()).device
    load_model(unwrap(model), str(path), device=str(device))


class Trainer:
    """One training run: the loop, validation, checkpoints and final scoring."""

    def __init__(
        self,
        config: TrainConfig,
        run: Path,
        *,
        procs: Processes = SINGLE_PROCESS,
        device: torch.device,
        progress: bool = True,
        step_hook: StepHook | None = None,
    ) -> None:
        self.config, self.run, self.procs, self.device = config, run, procs, device
        self.progress = progress and procs.is_main
        self.step_hook = step_hook
        self.amp = config.mixed_precision
        self.best = _Best()
        self.start_epoch = 0

    def setup(self, data: RunData) -> None:
        from imet.models import build_model
        from imet.transforms import eval_transform, train_transform

        cfg, size = self.config, self.config.image_size
        if len(data.splits["train"]) == 0 or len(data.splits["val"]) == 0:
            raise ConfigurationError(
                "training needs images in both the train and the val split"
            )
        seed_everything(cfg.seed)
        n_labels = len(data.collection.labels.ids)
        try:
            model = build_model(
                cfg.model,
                n_labels,
                image_size=size,
                pretrained=cfg.pretrained,
                arch=cfg.arch,
            )
        except ValueError as err:
            raise ConfigurationError(f"cannot build {cfg.model}: {err}") from err
        train_targets = data.targets("train")  # (n_train, L)
        model.init_head_bias(train_targets.mean(axis=0))
        self.model = model.to(self.device)
        self.net = self.model
        if self.procs.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.pos_weight = label_pos_weight(train_targets, cfg.pos_weight_cap)
        self.loss_fn = nn.BCEWithLogitsLoss(pos_weight=self.pos_weight.to(self.device))
        self.val_set = data.dataset("val", eval_transform(size))
        self.val_targets = data.targets("val")
        self._make_loader(data.dataset("train", train_transform(size)))
        self.optimizer = make_optimizer(self.model, cfg.lr, cfg.weight_decay)
        total = cfg.epochs * len(self.loader)
        warmup = max(1, int(cfg.warmup_fraction * total))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(total, warmup)
        )

    def _make_loader(self, train_set: Dataset) -> None:
        cfg, procs = self.config, self.procs
        self.sampler = DistributedSampler(
            train_set, num_replicas=procs.world_size, rank=procs.rank, seed=cfg.seed
        )
        # Reseeded at every epoch start; it seeds the workers' augmentation.
        self.generator = torch.Generator()
        self.loader = DataLoader(
            train_set,
            batch_size=cfg.batch_size,
            sampler=self.sampler,
            num_workers=cfg.num_workers,
            worker_init_fn=_seed_worker,
            generator=self.generator,
            # A last batch of one image breaks batch normalisation.
            drop_last=len(self.sampler) > cfg.batch_size,
            pin_memory=self.device.type == "cuda",
        )

    def describe(self, data: RunData) -> dict[str, Any]:
        """The resolved configuration saved as the run's ``config.json``."""
        weights = self.pos_weight.numpy()
        out = dataclasses.asdict(self.config)
        out.update(
            data_dir=str(Path(self.config.data_dir).resolve()),
            arch=self.model.arch,
            pretrained_source=self.model.pretrained,
            n_parameters=sum(p.numel() for p in self.model.parameters()),
            n_labels=len(data.collection.labels.ids),
            embed_dim=self.model.embed_dim,
            cache_short_side=self.config.cache_short_side,
            split_sizes={s: int(len(r)) for s, r in data.splits.items()},
            selection_metric=SELECTION_METRIC,
            pos_weight={
                "rule": POS_WEIGHT_RULE,
                "cap": self.config.pos_weight_cap,
                "min": float(weights.min()),
                "median": float(np.median(weights)),
                "max": float(weights.max()),
            },
            resolved_device=str(self.device),
            world_size=self.procs.world_size,
            torch_version=torch.__version__,
            imet_version=imet.__version__,
            python_version=platform.python_version(),
        )
        return out

    # -- checkpoints

    @property
    def checkpoint_dir(self) -> Path:
        return self.run / runs.CHECKPOINT_DIR

    def restore(self) -> None:
        """Continue after the last completed epoch, if a checkpoint exists."""
        path = self.checkpoint_dir / CHECKPOINT_STATE
        if not path.exists():
            _logger.info("no checkpoint in %s: starting at epoch 1", self.run)
            return
        state = torch.load(path, map_location="cpu", weights_only=True)
        _load_weights(self.model, self.checkpoint_dir / state["weights"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.best = _Best(**state["best"])
        self.start_epoch = int(state["epoch"])
        if self.procs.is_main:
            _truncate_history(self.run, self.start_epoch)
        _logger.info(
            "resuming %s after epoch %d (best so far: epoch %s, %s %.4f)",
            self.run,
            self.start_epoch,
            self.best.epoch,
            SELECTION_METRIC,
            self.best.score,
        )

    def _save_checkpoint(self, completed: int, is_best: bool) -> None:
        """Weights files are named by epoch and ``state.pt`` is renamed into
        place last, so the state always names files that exist: a run killed
        at any moment resumes from a consistent epoch."""
        folder = self.checkpoint_dir
        weights = f"epoch-{completed:04d}.safetensors"
        _save_weights(self.model, folder / weights)
        if is_best:
            self.best.file = f"best-{completed:04d}.safetensors"
            with atomic_path(folder / self.best.file) as tmp:
                shutil.copyfile(folder / weights, tmp)
        state = {
            "epoch": completed,
            "weights": weights,
            "best": dataclasses.asdict(self.best),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }
        with atomic_path(folder / CHECKPOINT_STATE) as tmp:
            torch.save(state, tmp)
        for old in folder.glob("*.safetensors"):
            if old.name not in (weights, self.best.file):
                old.unlink()

    # -- the loop

    def fit(self) -> None:
        cfg = self.config
        for epoch in range(self.start_epoch, cfg.epochs):
            start = time.perf_counter()
            train_loss, n_images, train_seconds = self._train_epoch(epoch)
            record = {"epoch": epoch + 1, "train_loss": train_loss}
            record.update(self._validate())
            record.update(
                lr=self.optimizer.param_groups[0]["lr"],
                seconds=time.perf_counter() - start,
                images_per_second=n_images / max(train_seconds, 1e-9),
            )
            is_best = self._update_best(record)
            record["best"] = is_best
            if self.procs.is_main:
                runs.append_history(self.run, record)
                self._save_checkpoint(epoch + 1, is_best)
                _log_epoch(record, cfg.epochs)
            self.procs.barrier()

    def _train_epoch(self, epoch: int) -> tuple[float, int, float]:
        """Mean training loss over all processes, images seen, seconds."""
        cfg = self.config
        self.generator.manual_seed(seed_everything(cfg.seed, epoch, self.procs.rank))
        self.sampler.set_epoch(epoch)
        self.net.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        n_seen = 0
        bar = tqdm(
            self.loader,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            unit="batch",
            disable=not self.progress,
            leave=False,
        )
        start = time.perf_counter()
        for step, (x, y) in enumerate(bar):
            x = x.to(self.device, non_blocking=True)  # (B, 3, S, S)
            y = y.to(self.device, non_blocking=True)  # (B, L)
            with _autocast(self.device, self.amp):
                logits = self.net(x)  # (B, L)
            loss = self.loss_fn(logits.float(), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            loss_sum += loss.detach().double() * len(x)
            n_seen += len(x)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{loss_sum.item() / n_seen:.4f}")
            if self.step_hook is not None:
                self.step_hook(epoch, step)
        seconds = time.perf_counter() - start
        totals = _gather(self.procs, (loss_sum.item(), n_seen))
        total_loss, total_seen = (sum(t[i] for t in totals) for i in (0, 1))
        return total_loss / max(total_seen, 1), int(total_seen), seconds

    def _validate(self) -> dict[str, float]:
        from imet.metrics import pr_auc

        pred = self._predict(self.val_set, desc="validation")
        logits = torch.from_numpy(pred.logits)
        targets = torch.from_numpy(self.val_targets).float()
        val_loss = nn.functional.binary_cross_entropy_with_logits(
            logits, targets, pos_weight=self.pos_weight
        )
        out = {"val_loss": float(val_loss)}
        for average in PR_AUC_AVERAGES:
            out[f"val_pr_auc_{average}"] = float(
                pr_auc(self.val_targets, pred.scores, average=average)
            )
        return out

    def _predict(self, dataset: Dataset, *, desc: str, features: bool = False):
        return predict(
            self.net,
            dataset,
            batch_size=2 * self.config.batch_size,
            device=self.device,
            procs=self.procs,
            features=features,
            amp=self.amp,
            num_workers=self.config.num_workers,
            progress=self.progress,
            desc=desc,
        )

    def _update_best(self, record: dict[str, Any]) -> bool:
        score = record[SELECTION_METRIC]
        # A NaN figure (no validation positives) never beats a real one.
        score = -math.inf if math.isnan(score) else score
        if self.best.epoch is not None and score <= self.best.score:
            return False
        self.best.epoch, self.best.score = record["epoch"], score
        return True

    # -- after training

    def finish(self, data: RunData) -> None:
        """Score every split with the best weights and write the results."""
        if self.procs.is_main:
            best = self.checkpoint_dir / f"best-{self.best.epoch:04d}.safetensors"
            with atomic_path(self.run / runs.WEIGHTS) as tmp:
                shutil.copyfile(best, tmp)
        self.procs.barrier()
        _load_weights(self.model, self.run / runs.WEIGHTS)
        from imet.transforms import eval_transform

        transform = eval_transform(self.config.image_size)
        predictions: dict[str, Predictions | None] = {}
        for split in runs.SPLITS:
            if len(data.splits[split]) == 0:
                _logger.warning("the %s split is empty: no scores for it", split)
                predictions[split] = None
                continue
            predictions[split] = self._predict(
                data.dataset(split, transform),
                desc=f"scoring {split}",
                features=split == "train",
            )
        if self.procs.is_main:
            config = runs.read_config(self.run)
            config.update(best_epoch=self.best.epoch, best_score=self.best.score)
            runs.write_config(self.run, config)
            write_results(self.run, data, predictions)
        self.procs.barrier()


def _log_epoch(record: dict[str, Any], epochs: int) -> None:
    _logger.info(
        "epoch %d/%d: train loss %.4f, val loss %.4f, val PR-AUC macro %.4f "
        "micro %.4f weighted %.4f, lr %.2e, %.1f s, %.1f images/s%s",
        record["epoch"],
        epochs,
        record["train_loss"],
        record["val_loss"],
        record["val_pr_auc_macro"],
        record["val_pr_auc_micro"],
        record["val_pr_auc_weighted"],
        record["lr"],
        record["seconds"],
        record["images_per_second"],
        " (best)" if record["best"] else "",
    )


def _truncate_history(run: Path, completed: int) -> None:
    """Drop history lines of epochs after the checkpoint (written before a
    crash that came ahead of the checkpoint), so resumed epochs are not listed
    twice."""
    kept = [r for r in runs.read_history(run) if r.get("epoch", 0) <= completed]
    with atomic_open(run / runs.HISTORY, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in kept)


# ---------------------------------------------------------------- results


def write_results(
    run: Path, data: RunData, predictions: dict[str, Predictions | None]
) -> dict[str, Any]:
    """Scores, thresholds, embeddings, then ``metrics.json`` (written last: its
    presence marks a complete run)."""
    n_labels = len(data.collection.labels.ids)
    for split in runs.SPLITS:
        pred = predictions[split]
        scores = pred.scores if pred is not None else np.zeros((0, n_labels))
        runs.write_scores(
            run,
            split,
            runs.Scores(np.asarray(data.ids(split)), scores, data.targets(split)),
        )
    split_scores = {
        s: (data.targets(s), predictions[s].scores)
        for s in runs.SPLITS
        if predictions[s] is not None
    }
    write_thresholds(run, split_scores)
    train = predictions["train"]
    runs.write_embeddings(run, data.ids("train"), l2_normalise(train.features))
    return evaluate_run(run)


def write_thresholds(run: Path, split_scores: dict[str, tuple]) -> np.ndarray:
    """Per-label F2-optimal thresholds tuned on train + validation scores."""
    from imet.metrics import tune_thresholds

    tuning = [s for s in ("train", "val") if s in split_scores]
    y_true = np.concatenate([split_scores[s][0] for s in tuning])  # (n, L)
    y_score = np.concatenate([split_scores[s][1] for s in tuning])  # (n, L)
    thresholds = tune_thresholds(y_true, y_score, beta=2.0, fallback=THRESHOLD_FALLBACK)
    n_without = int((y_true.sum(axis=0) == 0).sum())
    note = (
        f"per label, the threshold that maximises F2 (beta 2) on the "
        f"{' + '.join(tuning)} scores ({len(y_true)} images); the "
        f"{n_without} labels without a positive among them use the fallback "
        f"{THRESHOLD_FALLBACK}"
    )
    runs.write_thresholds(run, thresholds, note=note)
    return thresholds


def evaluate_run(run: str | Path) -> dict[str, Any]:
    """Recompute ``metrics.json`` from the run's stored scores and thresholds."""
    from imet.metrics import evaluate_scores

    run = runs.require_run(run)
    thresholds = runs.read_thresholds(run)
    split_scores = {}
    for split in runs.SPLITS:
        stored = runs.read_scores(run, split)
        if len(stored.ids) == 0:
            continue
        split_scores[split] = (stored.targets, stored.scores)
    metrics = evaluate_scores(split_scores, thresholds)
    from imet.atomic import write_json

    write_json(run / runs.METRICS, metrics)
    return metrics


# ---------------------------------------------------------------- entry points


def check_run_folder(run: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to start where a run would be lost or nothing can be resumed."""
    if resume and overwrite:
        raise runs.RunError("choose one of --resume and --overwrite")
    if resume:
        if not runs.is_run(run):
            raise runs.RunError(
                f"{run} holds no run to resume (no {runs.CONFIG}); "
                "start it without --resume"
            )
        return
    if runs.is_run(run):
        if overwrite:
            return
        done = len(runs.read_history(run))
        state = (
            "complete"
            if (run / runs.METRICS).exists()
            else f"incomplete ({done} epochs done)"
        )
        raise runs.RunError(
            f"{run} already holds a {state} run; pass --resume to continue it "
            "or --overwrite to replace it"
        )
    if run.exists() and any(run.iterdir()):
        raise runs.RunError(f"{run} exists and is not a run folder; choose another")


def resume_config(run: str | Path, given: dict[str, Any]) -> TrainConfig:
    """The stored configuration of ``run`` with the options given on resuming
    (see ``TrainConfig.resumed_with``)."""
    if not runs.is_run(run):
        raise runs.RunError(
            f"{run} holds no run to resume (no {runs.CONFIG}); "
            "start it without --resume"
        )
    stored = TrainConfig.from_dict(runs.read_config(run))
    try:
        return stored.resumed_with(given)
    except ValueError as err:
        raise runs.RunError(str(err)) from err


def train(
    config: TrainConfig,
    run: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    step_hook: StepHook | None = None,
) -> Path:
    """Train ``config`` into the run folder ``run`` (see the module text)."""
    run = Path(run)
    procs = detect_processes()
    device = resolve_device(config.device, procs.local_rank)
    started = procs.distributed and not torch.distributed.is_initialized()
    start_processes(procs, device)
    try:
        _train(config, run, procs, device, resume, overwrite, progress, step_hook)
    finally:
        if started:
            stop_processes(procs)
    return run


def _train(config, run, procs, device, resume, overwrite, progress, step_hook):
    check_run_folder(run, resume=resume, overwrite=overwrite)
    procs.barrier()  # every process checked before process 0 changes the folder
    complete = (run / runs.METRICS).exists()
    if resume and complete and len(runs.read_history(run)) >= config.epochs:
        _logger.info("%s is complete (%d epochs): nothing to do", run, config.epochs)
        return
    if procs.is_main:
        if overwrite and runs.is_run(run):
            shutil.rmtree(run)
        # An extended run is incomplete until its new epochs are scored.
        (run / runs.METRICS).unlink(missing_ok=True)
    data = load_data(
        config.data_dir,
        cache_short_side=config.cache_short_side,
        split_seed=config.split_seed,
        procs=procs,
        progress=progress,
    )
    trainer = Trainer(
        config, run, procs=procs, device=device, progress=progress, step_hook=step_hook
    )
    trainer.setup(data)
    if resume:
        trainer.restore()
    if procs.is_main:
        _write_run_description(run, trainer.describe(data), data)
    procs.barrier()
    trainer.fit()
    trainer.finish(data)
    _logger.info(
        "%s: best epoch %d, %s %.4f",
        run,
        trainer.best.epoch,
        SELECTION_METRIC,
        trainer.best.score,
    )


def _write_run_description(run: Path, config: dict[str, Any], data: RunData) -> None:
    run.mkdir(parents=True, exist_ok=True)
    labels = data.collection.labels
    # Labels first: a folder counts as a run once config.json is there too.
    runs.write_labels(run, labels.ids, labels.names)
    runs.write_config(run, config)
    split_of = {
        data.collection.ids[r]: s for s, rows in data.splits.items() for r in rows
    }
    runs.write_splits(run, split_of)


# ---------------------------------------------------------------- MAE pretraining


def pretrain_mae(
    config: MAEConfig,
    run: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Train a ViT masked autoencoder on the training-split images (labels
    unused) and save it with ``save_pretrained`` into ``run``; one JSON line
    per epoch (mean reconstruction loss) in ``run/history.jsonl``.

    Runs in one process; ``pretraining.json`` records the configuration.
    """
    from imet.models.vit import build_mae_pretraining
    from imet.transforms import train_transform

    run = Path(run)
    _check_pretrain_folder(run, overwrite)
    device = resolve_device(config.device)
    data = load_data(
        config.data_dir,
        cache_short_side=config.cache_short_side,
        split_seed=config.split_seed,
        progress=progress,
    )
    images = data.dataset("train", train_transform(config.image_size))
    seed_everything(config.seed)
    model = build_mae_pretraining(
        config.image_size, config.size, mask_ratio=config.mask_ratio
    ).to(device)
    generator = torch.Generator()
    loader = DataLoader(
        images,
        batch_size=config.batch_size,
        shuffle=True,
        num_workers=config.num_workers,
        worker_init_fn=_seed_worker,
        generator=generator,
        drop_last=len(images) > config.batch_size,
    )
    optimizer, scheduler = _mae_optimizer(model, config, len(loader))
    if overwrite and run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True, exist_ok=True)
    for epoch in range(config.epochs):
        generator.manual_seed(seed_everything(config.seed, epoch))
        record = _mae_epoch(model, loader, optimizer, scheduler, device, progress)
        record = {"epoch": epoch + 1, **record}
        runs.append_history(run, record)
        _logger.info(
            "MAE epoch %d/%d: reconstruction loss %.4f, lr %.2e, %.1f s, %.1f images/s",
            epoch + 1,
            config.epochs,
            record["loss"],
            record["lr"],
            record["seconds"],
            record["images_per_second"],
        )
    _save_pretrained(model, run, config, len(images))
    return run


def _mae_optimizer(model: nn.Module, config: MAEConfig, steps_per_epoch: int):
    optimizer = make_optimizer(model, config.lr, config.weight_decay)
    total = config.epochs * steps_per_epoch
    warmup = max(1, int(config.warmup_fraction * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(total, warmup)
    )
    return optimizer, schedule


def _check_pretrain_folder(run: Path, overwrite: bool) -> None:
    if run.exists() and any(run.iterdir()) and not overwrite:
        raise runs.RunError(
            f"{run} exists and is not empty; pass --overwrite to replace it"
        )


def _mae_epoch(model, loader, optimizer, scheduler, device, progress) -> dict:
    model.train()
    loss_sum, n_seen = 0.0, 0
    start = time.perf_counter()
    bar = tqdm(loader, desc="MAE", unit="batch", disable=not progress, leave=False)
    for x, _ in bar:
        x = x.to(device, non_blocking=True)  # (B, 3, S, S)
        with _autocast(device, True):
            loss = model(pixel_values=x).loss  # mean over the hidden patches
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_sum += loss.item() * len(x)
        n_seen += len(x)
        bar.set_postfix(loss=f"{loss_sum / n_seen:.4f}")
    seconds = time.perf_counter() - start
    return {
        "loss": loss_sum / max(n_seen, 1),
        "lr": optimizer.param_groups[0]["lr"],
        "seconds": seconds,
        "images_per_second": n_seen / max(seconds, 1e-9),
    }


def _save_pretrained(model, run: Path, config: MAEConfig, n_images: int) -> None:
    """``save_pretrained`` writes several files; they are written beside the
    run and moved in with the model configuration last, so a folder whose
    ``config.json`` exists holds complete weights."""
    staging = run.parent / f".{run.name}.saving"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    names = sorted(p.name for p in staging.iterdir())
    for name in sorted(names, key=lambda n: n == runs.CONFIG):
        os.replace(staging / name, run / name)
    staging.rmdir()
    record = dataclasses.asdict(config) | {
        "n_images": n_images,
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "torch_version": torch.__version__,
        "imet_version": imet.__version__,
    }
    from imet.atomic import write_json

    write_json(run / "pretraining.json", record)
