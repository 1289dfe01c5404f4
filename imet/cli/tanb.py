"""``imet tanb``: the label network, on a trained run or on any ``train.csv``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from imet.cli import UsageError

TANB_HELP = """\
Screen a trained run's predictions with a Tree-Augmented Naive Bayes network.

imet tanb --run RUN
    learns a Chow-Liu tree over all labels from the run's training labels,
    calibrates the scores on the validation split, applies every strategy to
    the test scores (Vanilla top-N, TopN then TANB, per-label Threshold,
    ThresholdCapN then TANB, and exact inference on the whole tree: posterior
    and most probable assignment), prints F2 per strategy and N with what the
    network added and removed, and writes RUN/tanb/tree.json, report.json and
    decisions.npz.

imet tanb learn --train-csv PATH --out FILE [--labels-csv PATH]
    learns the tree from an iMet train.csv alone and writes it as JSON.
"""

LEARN_HELP = """\
Learn the Chow-Liu tree of an iMet train.csv (id,attribute_ids) and write its
edges (parent and child attribute ids, mutual information in nats), the
probability tables, the smoothing and the number of images as JSON. Label
names come from --labels-csv when given; no images are read.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "tanb",
        help="screen a run's predictions with the label tree, or learn a tree",
        description=TANB_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--run", type=Path, metavar="RUN", help="trained run folder to screen"
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=1.0,
        help="Dirichlet smoothing of the tables (default: %(default)s, Laplace)",
    )
    parser.add_argument(
        "--n",
        type=int,
        nargs="+",
        default=[4, 5, 6],
        metavar="N",
        help="attribute budgets of the top-N strategies (default: 4 5 6)",
    )
    parser.add_argument(
        "--keep-probability",
        type=float,
        default=None,
        metavar="P",
        help="posterior a selected attribute needs to stay in the TANB step "
        "(default: tuned on the validation split)",
    )
    parser.set_defaults(func=_run)
    actions = parser.add_subparsers(dest="tanb_action", metavar="ACTION")
    learn = actions.add_parser(
        "learn",
        help="learn the tree of a train.csv and write it as JSON",
        description=LEARN_HELP,
    )
    learn.add_argument("--train-csv", type=Path, required=True, metavar="PATH")
    learn.add_argument("--out", type=Path, required=True, metavar="FILE")
    learn.add_argument(
        "--labels-csv",
        type=Path,
        metavar="PATH",
        help="labels.csv giving names and column order (optional)",
    )
    learn.add_argument(
        "--alpha",
        type=float,
        default=1.0,
        help="Dirichlet smoothing of the tables (default: %(default)s)",
    )
    learn.set_defaults(func=_learn)


def _learn(args) -> int:
    from imet.atomic import write_json
    from imet.tanb.label_matrix import read_train_csv
    from imet.tanb.network import TreeConfig, learn_network, network_to_json

    for path in (args.train_csv, args.labels_csv):
        if path is not None and not path.is_file():
            raise UsageError(f"{path} is not a file")
    if args.alpha <= 0:
        raise UsageError("--alpha must be positive")
    start = time.perf_counter()
    try:
        labels = read_train_csv(args.train_csv, args.labels_csv)
    except ValueError as err:
        raise UsageError(str(err)) from err
    read_s = time.perf_counter() - start
    if labels.matrix.shape[0] == 0 or labels.matrix.shape[1] == 0:
        raise UsageError(f"{args.train_csv} has no labelled images")
    network = learn_network(
        labels.matrix, labels.ids, labels.names, TreeConfig(alpha=args.alpha)
    )
    body = network_to_json(network)
    body["warnings"] = labels.warnings + body["warnings"]
    write_json(args.out, body)
    total_s = time.perf_counter() - start
    print(
        f"{labels.matrix.shape[0]} images, {network.n_labels} labels, "
        f"total MI {network.mi.sum():.4f} nats; read {read_s:.2f} s, "
        f"learned {total_s - read_s:.2f} s -> {args.out}"
    )
    return 0


def _run(args) -> int:
    if args.run is None:
        raise UsageError(
            "give --run RUN to screen a trained run, or use `imet tanb learn` "
            "(see `imet tanb --help`)"
        )
    from imet import runs
    from imet.tanb.evaluate import ScreeningConfig
    from imet.tanb.network import TreeConfig
    from imet.tanb.run import TanbConfig, run_tanb

    if not runs.is_run(args.run):
        raise UsageError(f"{args.run} is not a run folder (no config.json)")
    if any(n < 1 for n in args.n):
        raise UsageError("--n values must be at least 1")
    config = TanbConfig(
        tree=TreeConfig(alpha=args.alpha),
        screening=ScreeningConfig(
            ns=tuple(args.n), keep_probability=args.keep_probability
        ),
    )
    try:
        report = run_tanb(args.run, config)
    except runs.RunError as err:
        raise UsageError(str(err)) from err
    print(format_report(report))
    return 0


NAMES = {
    "vanilla": "Vanilla (top N)",
    "topn_tanb": "TopN then TANB",
    "threshold": "Threshold",
    "threshold_cap_tanb": "ThresholdCapN then TANB",
    "tree_posterior": "Exact tree: posterior",
    "tree_map": "Exact tree: MAP",
}


def format_report(report: dict) -> str:
    """The report's table as text: one row per strategy and N."""
    header = (
        f"{'strategy':<26}{'N':>3}{'F2':>8}{'before':>8}"
        f"{'+right':>8}{'+wrong':>8}{'-right':>8}{'-wrong':>8}"
    )
    lines = [
        f"test split: {report['n_images']} images, {report['n_labels']} labels; "
        f"keep probability {report['keep_probability']}, "
        f"tree probability {report['tree_probability']}",
        header,
        "-" * len(header),
    ]
    for row in report["rows"]:
        n = "" if row["n"] is None else str(row["n"])
        line = f"{NAMES.get(row['strategy'], row['strategy']):<26}{n:>3}"
        line += f"{row['f2']:>8.4f}"
        if "baseline" in row:
            line += f"{row['f2_baseline']:>8.4f}"
            for key in ("added_right", "added_wrong", "removed_right", "removed_wrong"):
                line += f"{row[key]:>8d}"
        lines.append(line)
    lines.append(
        "before: F2 of what the network screened or is compared with (TopN: "
        "Vanilla; ThresholdCapN: its selection before TANB; tree: Threshold). "
        "+/-right/wrong: predictions the network added/removed that were "
        "right/wrong to add/remove."
    )
    return "\n".join(lines)
