"""``imet explain``, ``imet explain-eval`` and ``imet bias``."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from imet.cli import UsageError

_ALL = "all"
# Names of imet.explain.METHODS, repeated here so that `imet --help` does not
# import torch (a test checks that the two agree).
METHOD_NAMES = (
    "gradient",
    "smoothgrad",
    "gradient_x_input",
    "guided_backprop",
    "lrp",
    "attention_rollout",
    "gradient_attention_rollout",
)


def register(subparsers) -> None:
    explain = subparsers.add_parser(
        "explain",
        help="saliency overlays of one label for one image",
        description=(
            "Write one PNG overlay per saliency method showing which pixels "
            "made the run's model score LABEL for IMAGE. Methods that cannot "
            "serve the model say why instead."
        ),
    )
    explain.add_argument("--run", required=True, type=Path, help="run folder")
    explain.add_argument("--image", required=True, type=Path, help="image file")
    explain.add_argument(
        "--label", required=True, help="label name (e.g. tags::hourglasses) or id"
    )
    explain.add_argument(
        "--method",
        default=_ALL,
        choices=[*METHOD_NAMES, _ALL],
        help="saliency method, or all (default)",
    )
    explain.add_argument("--out", required=True, type=Path, help="output folder")
    explain.set_defaults(func=_explain)

    evaluate = subparsers.add_parser(
        "explain-eval",
        help="measure how faithful each saliency method is on a run",
        description=(
            "Deletion / insertion areas against a random pixel order, the "
            "model-randomisation check and, where the collection has object "
            "masks, localisation, on a sample of test images; written to "
            "RUN/explain/eval.json."
        ),
    )
    evaluate.add_argument("--run", required=True, type=Path, help="run folder")
    evaluate.add_argument("--images", type=int, default=16, help="test images (16)")
    evaluate.add_argument(
        "--methods", nargs="+", choices=METHOD_NAMES, help="methods (default: all)"
    )
    evaluate.add_argument(
        "--steps", type=int, default=16, help="deletion / insertion steps (16)"
    )
    evaluate.set_defaults(func=_explain_eval)

    bias = subparsers.add_parser(
        "bias",
        help="rank labels by evidence of a learned shortcut",
        description=(
            "Score every label on embedding clustering, object-versus-"
            "background occlusion (where masks exist) and the train-test "
            "precision gap; write RUN/bias.json and print the ranking."
        ),
    )
    bias.add_argument("--run", required=True, type=Path, help="run folder")
    bias.add_argument(
        "--top-k", type=int, default=5, help="labels to list and to score recall (5)"
    )
    bias.add_argument(
        "--occlusion-images",
        type=int,
        default=12,
        help="training positives per label for the occlusion test (12)",
    )
    bias.set_defaults(func=_bias)


def _label_column(run: Path, label: str) -> int:
    from imet import runs

    ids, names = runs.read_labels(run)
    if label in names:
        return names.index(label)
    if label.isdigit() and int(label) in ids.tolist():
        return ids.tolist().index(int(label))
    close = [n for n in names if label.lower() in n.lower()][:5]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UsageError(f"the run has no label {label!r}{hint}")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "label"


def _explain(args: argparse.Namespace) -> int:
    import torch

    from imet import runs
    from imet.atomic import atomic_path
    from imet.data import ImageError, open_image
    from imet.explain import compute_maps, render_overlay
    from imet.explain.methods import prepare

    try:
        model, config = runs.load_model(args.run)
        image = open_image(args.image)
    except (runs.RunError, ImageError, FileNotFoundError) as error:
        raise UsageError(str(error)) from error
    column = _label_column(args.run, args.label)
    name = runs.read_labels(args.run)[1][column]
    size = int(config["image_size"])
    with torch.no_grad():
        score = torch.sigmoid(model(prepare(image, size).x)[0, column]).item()
    print(f"{args.image.name}: {name} scored {score:.3f} by {config['model']}")
    methods = list(METHOD_NAMES) if args.method == _ALL else [args.method]
    written = 0
    for method, result in compute_maps(model, image, column, methods, size).items():
        if isinstance(result, str):
            print(f"  {method}: not available: {result}")
            continue
        target = args.out / f"{_safe(args.image.stem)}-{_safe(name)}-{method}.png"
        with atomic_path(target) as tmp:
            render_overlay(image, result).save(tmp, format="PNG")
        print(f"  {method}: wrote {target}")
        written += 1
    return 0 if written else 1


def _explain_eval(args: argparse.Namespace) -> int:
    from imet import runs
    from imet.explain.evaluate import ExplainEvalConfig, evaluate_run

    if args.images < 1 or args.steps < 2:
        raise UsageError("--images must be at least 1 and --steps at least 2")
    config = ExplainEvalConfig(
        images=args.images,
        methods=tuple(args.methods or METHOD_NAMES),
        steps=args.steps,
    )
    try:
        report = evaluate_run(args.run, config)
    except runs.RunError as error:
        raise UsageError(str(error)) from error
    print(format_eval_table(report))
    print(f"wrote {args.run / runs.EXPLAIN_DIR / 'eval.json'}")
    return 0


def format_eval_table(report: dict) -> str:
    """The printed form of eval.json: one row per method."""
    columns = [
        ("deletion_auc", "del"),
        ("random_deletion_auc", "del rnd"),
        ("insertion_auc", "ins"),
        ("random_insertion_auc", "ins rnd"),
        ("mask_share", "in mask"),
        ("mask_area", "mask area"),
        ("pointing_hit", "pointing"),
        ("randomisation_spearman", "rand rho"),
        ("seconds_per_map", "s/map"),
    ]
    lines = [
        f"{report['model']} at {report['image_size']} px, "
        f"{len(report['pairs'])} test images "
        "(del: lower is better, ins: higher; rnd: random pixel order)",
        f"{'method':<27}" + "".join(f"{title:>10}" for _, title in columns),
    ]
    notes = []
    for method, row in report["methods"].items():
        if "unsupported" in row:
            notes.append(f"{method}: not available: {row['unsupported']}")
            continue
        cells = "".join(
            f"{row[key]:>10.3f}" if row.get(key) is not None else f"{'-':>10}"
            for key, _ in columns
        )
        flag = "  FLAG: barely changes with random weights" * bool(
            row.get("randomisation_flagged")
        )
        lines.append(f"{method:<27}{cells}{flag}")
    return "\n".join(lines + notes)


def _bias(args: argparse.Namespace) -> int:
    from imet import runs
    from imet.bias import BiasConfig, build_report

    if args.top_k < 1 or args.occlusion_images < 1:
        raise UsageError("--top-k and --occlusion-images must be at least 1")
    config = BiasConfig(top_k=args.top_k, occlusion_images=args.occlusion_images)
    try:
        report = build_report(args.run, config)
    except runs.RunError as error:
        raise UsageError(str(error)) from error
    print(format_bias_report(report, args.top_k))
    print(f"wrote {args.run / runs.BIAS}")
    return 0


def _cell(value, fmt: str) -> str:
    return f"{value:{fmt}}" if value is not None else "-"


def format_bias_report(report: dict, top_k: int) -> str:
    """The printed ranking: the top labels with their evidence, then the
    planted-bias check when the collection has a manifest."""
    lines = [
        f"{report['labels_ranked']} labels ranked by suspicion "
        f"({report['labels_with_occlusion']} with occlusion evidence)",
        f"{'rank':>4} {'suspicion':>9} {'label':<32} {'pos':>5} {'cluster z':>9} "
        f"{'obj drop':>8} {'bg drop':>8} {'prec train':>10} {'prec test':>9}",
    ]
    for lb in report["labels"][:top_k]:
        lines.append(
            f"{lb['rank']:>4} {lb['suspicion']:>9.2f} {lb['name'][:32]:<32} "
            f"{lb['train_positives']:>5} {_cell(lb['cluster_z'], '9.1f'):>9} "
            f"{_cell(lb['object_hidden_drop'], '8.2f'):>8} "
            f"{_cell(lb['background_hidden_drop'], '8.2f'):>8} "
            f"{_cell(lb['precision_train'], '10.2f'):>10} "
            f"{_cell(lb['precision_test'], '9.2f'):>9}"
        )
    check = report.get("manifest_check")
    if check:
        planted = ", ".join(f"{n} #{r}" for n, r in check["planted_ranks"].items())
        controls = ", ".join(f"{n} #{r}" for n, r in check["control_ranks"].items())
        lines += [
            f"planted biases (manifest): {planted}",
            f"recall of planted labels in the top {check['top_k']}: "
            f"{check['planted_recall_at_k']:.2f}",
            f"unbiased controls: {controls}",
        ]
    return "\n".join(lines)
