"""A synthetic iMet-format collection of drawn artworks with known answers.

Each image is a small "artwork": a culture (which implies its country and
favours some media, palettes, backgrounds and frames), a medium (which decides
the rendering style and makes some sizes likelier), and one to three objects
drawn with PIL as recognisable shapes (hourglasses, daisies, sleighs, ...),
each with an exact mask. Label frequencies are long-tailed like a museum's.

Planted biases make it a known-answer test bed for saliency and bias reports:
for each planted label, every training and validation positive shares one
spurious cue (a style, background, frame or palette) that no other training or
validation image has, while in the test split that cue follows the collection's
natural distribution, independent of the label. Control labels have the same
frequency and no cue. ``manifest.json`` names both, and ``cues.csv`` records
every image's split, culture, medium, style, palette, background and frame so
that the property can be checked from the files alone.

The output is deterministic for a seed: every image is planned and drawn from
its own random stream, so the bytes do not depend on the number of worker
processes.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import multiprocessing
import os
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm.auto import tqdm

from imet.atomic import atomic_open, atomic_path, write_json
from imet.data.met_sample import reference_vocabulary

_logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CUES_FILE = "cues.csv"
SPLIT_FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}
# Splits whose planted-label positives all carry the cue. Validation is biased
# too, as it would be when a biased collection is split at random, so that
# thresholds tuned on it do not reveal the shortcut.
BIASED_SPLITS = ("train", "val")
# Present while a generation runs; a folder with it is unfinished.
_IN_PROGRESS = ".synthetic-in-progress"

# Separate random streams per purpose, so that adding a draw to one does not
# shift the others.
_SPLIT_STREAM, _PLAN_STREAM, _DRAW_STREAM = 0, 1, 2

RGB = tuple[int, int, int]


# --------------------------------------------------------------------------
# The collection's vocabulary and how its parts correlate
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Palette:
    """Colours of one palette; every image is drawn from exactly one."""

    background: tuple[RGB, ...]  # ground colours, light or dark but not both
    objects: tuple[RGB, ...]  # object fills, contrasting with the ground
    light: RGB  # highlights (glass, sails, windows)
    dark: RGB  # outlines, eyes, doors


PALETTES: dict[str, Palette] = {
    "earth": Palette(
        ((178, 150, 96), (152, 122, 80), (200, 176, 128)),
        ((88, 52, 28), (146, 56, 32), (58, 80, 44), (40, 62, 80)),
        (238, 222, 186),
        (36, 24, 14),
    ),
    "blue-green": Palette(
        ((170, 204, 202), (118, 168, 176), (212, 226, 210)),
        ((22, 60, 92), (150, 58, 48), (28, 98, 78), (176, 126, 36)),
        (248, 246, 230),
        (14, 28, 38),
    ),
    "pastel": Palette(
        ((242, 222, 228), (214, 226, 242), (236, 236, 204)),
        ((108, 68, 140), (56, 118, 98), (188, 76, 98), (66, 78, 140)),
        (255, 253, 246),
        (48, 38, 58),
    ),
    "night": Palette(
        ((26, 32, 66), (46, 54, 96), (18, 22, 46)),
        ((232, 196, 88), (214, 214, 228), (208, 120, 62), (118, 170, 216)),
        (252, 242, 204),
        (8, 8, 18),
    ),
    "indigo": Palette(
        ((236, 226, 200), (222, 208, 178), (202, 214, 224)),
        ((30, 46, 98), (188, 56, 38), (48, 98, 82), (30, 30, 42)),
        (252, 248, 238),
        (18, 20, 34),
    ),
    "crimson": Palette(
        ((158, 20, 42), (122, 12, 48), (188, 42, 56)),
        ((252, 222, 194), (246, 176, 58), (255, 240, 226), (238, 150, 118)),
        (255, 246, 236),
        (48, 4, 16),
    ),
    # Only the sepia drawing style uses it: ink on cream paper.
    "sepia": Palette(
        ((240, 226, 196), (232, 214, 180), (244, 232, 206)),
        ((112, 70, 36), (86, 52, 26), (140, 98, 58), (98, 62, 30)),
        (250, 240, 218),
        (58, 36, 18),
    ),
}

# medium -> (rendering style, {dimension: weight}); a medium decides how an
# image looks and makes some physical sizes likelier than others.
MEDIA: dict[str, tuple[str, dict[str, float]]] = {
    "oil on canvas": ("oil", {"small": 1, "medium": 4, "large": 4, "very large": 1}),
    "oil on wood": ("oil", {"small": 3, "medium": 5, "large": 2}),
    "tempera on wood": ("tempera", {"small": 3, "medium": 5, "large": 2}),
    "tempera and gold on wood": (
        "tempera",
        {"small": 2, "medium": 4, "large": 3, "very large": 1},
    ),
    "opaque watercolor on paper": ("tempera", {"tiny": 3, "small": 6, "medium": 1}),
    "ink and color on silk": ("ink wash", {"medium": 3, "large": 5, "very large": 2}),
    "ink on paper": ("ink wash", {"small": 2, "medium": 5, "large": 3}),
    "ink and color on paper": ("ink wash", {"small": 3, "medium": 5, "large": 2}),
    "woodblock print": ("woodblock", {"tiny": 2, "small": 7, "medium": 1}),
    "watercolor": ("watercolor", {"tiny": 1, "small": 6, "medium": 3}),
    "pen and brown ink": ("sepia drawing", {"tiny": 3, "small": 6, "medium": 1}),
}
STYLES = ("oil", "tempera", "ink wash", "woodblock", "watercolor", "sepia drawing")
BACKGROUNDS = ("plain", "sky", "landscape", "interior", "wallpaper", "snow")
FRAMES = ("none", "thin line", "mat", "wood", "silk mount", "gold")
DIMENSIONS = ("tiny", "small", "medium", "large", "very large")


@dataclass(frozen=True)
class Culture:
    """One culture of the collection and what it favours (weights, not shares)."""

    country: str  # the country label it implies
    weight: float  # share of the collection
    media: dict[str, float]  # medium -> weight; the medium decides the style
    palettes: dict[str, float]  # palette name -> weight
    backgrounds: dict[str, float]  # background kind -> weight
    frames: dict[str, float]  # frame kind -> weight
    tags: dict[str, float]  # multipliers on the base weight of culture-linked tags


_EUROPE_BACKGROUNDS = {
    "landscape": 0.25,
    "interior": 0.25,
    "sky": 0.2,
    "plain": 0.1,
    "wallpaper": 0.05,
    "snow": 0.15,
}
_SOUTH_EUROPE_BACKGROUNDS = {
    "plain": 0.4,
    "interior": 0.2,
    "landscape": 0.2,
    "sky": 0.1,
    "wallpaper": 0.05,
    "snow": 0.05,
}
_EAST_ASIA_BACKGROUNDS = {"plain": 0.45, "landscape": 0.3, "sky": 0.1, "snow": 0.15}
_SOUTH_ASIA_BACKGROUNDS = {"wallpaper": 0.4, "plain": 0.3, "sky": 0.2, "landscape": 0.1}
_SCROLL_FRAMES = {"silk mount": 0.6, "none": 0.3, "thin line": 0.1}
_ALBUM_FRAMES = {"thin line": 0.4, "mat": 0.3, "gold": 0.1, "none": 0.2}
_PANEL_FRAMES = {"gold": 0.4, "wood": 0.4, "none": 0.2}
_WATERCOLOR_FRAMES = {"wood": 0.35, "mat": 0.3, "gold": 0.15, "thin line": 0.2}

# Long-tailed: French and Japanese works make up a third, Greek 1.5 %.
CULTURES: dict[str, Culture] = {
    "french": Culture(
        "france",
        0.20,
        {
            "oil on canvas": 0.6,
            "oil on wood": 0.13,
            "watercolor": 0.12,
            "pen and brown ink": 0.15,
        },
        {"earth": 0.3, "pastel": 0.3, "blue-green": 0.25, "crimson": 0.15},
        _EUROPE_BACKGROUNDS,
        {"gold": 0.25, "wood": 0.35, "mat": 0.2, "thin line": 0.1, "none": 0.1},
        {"daisies": 1.5, "flags": 1.5},
    ),
    "japan": Culture(
        "japan",
        0.15,
        {"woodblock print": 0.55, "ink and color on silk": 0.3, "ink on paper": 0.15},
        {"indigo": 0.5, "pastel": 0.25, "night": 0.25},
        {"plain": 0.3, "landscape": 0.25, "sky": 0.15, "snow": 0.2, "wallpaper": 0.1},
        {"none": 0.4, "silk mount": 0.3, "thin line": 0.3},
        {"moon": 3, "daisies": 1.5, "houses": 1.5, "cross": 0.1, "crowns": 0.2},
    ),
    "italian": Culture(
        "italy",
        0.13,
        {
            "tempera and gold on wood": 0.3,
            "tempera on wood": 0.25,
            "oil on wood": 0.25,
            "pen and brown ink": 0.2,
        },
        {"earth": 0.45, "crimson": 0.3, "night": 0.25},
        _SOUTH_EUROPE_BACKGROUNDS,
        {"gold": 0.4, "wood": 0.3, "none": 0.3},
        {"cross": 3, "crowns": 2, "candles": 2},
    ),
    "dutch": Culture(
        "netherlands",
        0.11,
        {"oil on canvas": 0.4, "oil on wood": 0.35, "pen and brown ink": 0.25},
        {"earth": 0.55, "night": 0.3, "blue-green": 0.15},
        _EUROPE_BACKGROUNDS,
        {"wood": 0.45, "gold": 0.2, "none": 0.2, "thin line": 0.15},
        {"daisies": 2, "candles": 2, "houses": 1.5},
    ),
    "china": Culture(
        "china",
        0.10,
        {"ink and color on silk": 0.55, "ink on paper": 0.45},
        {"indigo": 0.4, "pastel": 0.3, "earth": 0.3},
        _EAST_ASIA_BACKGROUNDS,
        _SCROLL_FRAMES,
        {"moon": 2, "houses": 1.5, "cross": 0.1, "crowns": 0.3},
    ),
    "british": Culture(
        "england",
        0.08,
        {"watercolor": 0.5, "oil on canvas": 0.35, "pen and brown ink": 0.15},
        {"blue-green": 0.4, "pastel": 0.3, "earth": 0.3},
        _EUROPE_BACKGROUNDS,
        _WATERCOLOR_FRAMES,
        {"houses": 1.5, "flags": 2},
    ),
    "american": Culture(
        "united states",
        0.07,
        {"oil on canvas": 0.6, "watercolor": 0.4},
        {"blue-green": 0.4, "earth": 0.3, "pastel": 0.2, "night": 0.1},
        _EUROPE_BACKGROUNDS,
        _WATERCOLOR_FRAMES,
        {"flags": 3, "houses": 1.5, "stars": 2},
    ),
    "india": Culture(
        "india",
        0.05,
        {"opaque watercolor on paper": 0.85, "ink and color on paper": 0.15},
        {"crimson": 0.4, "pastel": 0.3, "indigo": 0.3},
        _SOUTH_ASIA_BACKGROUNDS,
        _ALBUM_FRAMES,
        {"daisies": 2, "moon": 1.5, "crowns": 1.5},
    ),
    "persian": Culture(
        "iran",
        0.04,
        {"opaque watercolor on paper": 1.0},
        {"crimson": 0.3, "blue-green": 0.4, "pastel": 0.3},
        _SOUTH_ASIA_BACKGROUNDS,
        _ALBUM_FRAMES,
        {"daisies": 2, "moon": 1.5, "stars": 1.5},
    ),
    "korea": Culture(
        "korea",
        0.03,
        {"ink and color on silk": 0.7, "ink on paper": 0.3},
        {"indigo": 0.5, "pastel": 0.5},
        _EAST_ASIA_BACKGROUNDS,
        _SCROLL_FRAMES,
        {"moon": 2, "cross": 0.1},
    ),
    "spain": Culture(
        "spain",
        0.025,
        {"oil on canvas": 0.7, "pen and brown ink": 0.15, "tempera on wood": 0.15},
        {"earth": 0.4, "crimson": 0.3, "night": 0.3},
        _SOUTH_EUROPE_BACKGROUNDS,
        _PANEL_FRAMES,
        {"cross": 3, "crowns": 2},
    ),
    "greek": Culture(
        "greece",
        0.015,
        {"tempera and gold on wood": 0.6, "tempera on wood": 0.4},
        {"earth": 0.5, "crimson": 0.3, "night": 0.2},
        _SOUTH_EUROPE_BACKGROUNDS,
        _PANEL_FRAMES,
        {"cross": 3, "candles": 2},
    ),
}


@dataclass(frozen=True)
class PlantedBias:
    """A label whose biased-split positives all share one spurious cue."""

    tag: str  # tags:: value
    cue_type: str  # "style" | "background" | "frame" | "palette"
    cue: str  # the value of that field
    description: str  # what the bias is, in a sentence


PLANTED_BIASES = (
    PlantedBias(
        "hourglasses",
        "style",
        "sepia drawing",
        "every training and validation hourglass is a sepia pen drawing",
    ),
    PlantedBias(
        "sleighs",
        "background",
        "snow",
        "every training and validation sleigh stands on a snowy background",
    ),
    PlantedBias(
        "ships",
        "frame",
        "gold",
        "every training and validation ship hangs in a gold frame",
    ),
    PlantedBias(
        "birds",
        "palette",
        "crimson",
        "every training and validation bird is painted in the crimson palette",
    ),
)
CONTROL_TAGS = ("horses", "trees", "vases", "fish")
# Base weights of the other object tags: a long tail from daisies to flags.
# Planted and control tags share one weight so their frequencies match.
_GROUP_TAG_WEIGHT = 1.0
_OTHER_TAG_WEIGHTS = {
    "daisies": 3.5,
    "houses": 2.4,
    "cross": 1.6,
    "moon": 0.8,
    "stars": 0.5,
    "crowns": 0.3,
    "candles": 0.18,
    "flags": 0.1,
}
# Mostly one or two objects: fewer, larger objects are learnable at 64 px.
_OBJECTS_PER_IMAGE = {1: 0.5, 2: 0.35, 3: 0.15}


# --------------------------------------------------------------------------
# Planning: labels and cues per image, no pixels
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ImagePlan:
    """What one image shows; drawing it needs nothing else."""

    index: int  # row number in train.csv
    image_id: str  # 16 hex digits, like the 2019 iMet ids
    split: str  # "train" | "val" | "test"
    culture: str  # key of CULTURES; implies the country
    medium: str  # key of MEDIA; implies the style
    dimension: str  # one of DIMENSIONS
    palette: str  # key of PALETTES
    background: str  # one of BACKGROUNDS
    frame: str  # one of FRAMES
    tags: tuple[str, ...]  # one to three object tags, drawn in this order

    @property
    def style(self) -> str:
        return MEDIA[self.medium][0]

    @property
    def country(self) -> str:
        return CULTURES[self.culture].country

    def label_names(self) -> list[str]:
        names = [
            f"country::{self.country}",
            f"culture::{self.culture}",
            f"dimension::{self.dimension}",
            f"medium::{self.medium}",
        ]
        return names + [f"tags::{tag}" for tag in self.tags]

    def cue(self, cue_type: str) -> str:
        return getattr(self, cue_type)


def plan_collection(n_images: int, seed: int = 0) -> list[ImagePlan]:
    """Labels, cues and split of every image of a collection, without drawing."""
    if n_images < 1:
        raise ValueError(f"n_images must be at least 1, got {n_images}")
    splits = _assign_splits(n_images, seed)
    return [_plan_image(i, splits[i], seed) for i in range(n_images)]


def _assign_splits(n_images: int, seed: int) -> list[str]:
    rng = np.random.default_rng([seed, _SPLIT_STREAM])
    n_train = round(SPLIT_FRACTIONS["train"] * n_images)
    n_val = round(SPLIT_FRACTIONS["val"] * n_images)
    order = rng.permutation(n_images)
    splits = ["test"] * n_images
    for rank, row in enumerate(order):
        if rank < n_train:
            splits[row] = "train"
        elif rank < n_train + n_val:
            splits[row] = "val"
    return splits


def _image_id(seed: int, index: int) -> str:
    return hashlib.sha1(f"imet-synthetic:{seed}:{index}".encode()).hexdigest()[:16]


def _choose(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names], dtype=np.float64)
    return names[rng.choice(len(names), p=p / p.sum())]


def _plan_image(index: int, split: str, seed: int) -> ImagePlan:
    rng = np.random.default_rng([seed, _PLAN_STREAM, index])
    culture_name = _choose(rng, {k: c.weight for k, c in CULTURES.items()})
    culture = CULTURES[culture_name]
    tags = _choose_tags(rng, culture)
    natural = {
        "medium": culture.media,
        "palette": culture.palettes,
        "background": culture.backgrounds,
        "frame": culture.frames,
    }
    fields = {
        name: _choose_field(rng, name, weights, tags, split in BIASED_SPLITS)
        for name, weights in natural.items()
    }
    if MEDIA[fields["medium"]][0] == "sepia drawing":
        fields["palette"] = "sepia"  # a pen drawing has no other colours
    dimension = _choose(rng, MEDIA[fields["medium"]][1])
    return ImagePlan(
        index=index,
        image_id=_image_id(seed, index),
        split=split,
        culture=culture_name,
        dimension=dimension,
        tags=tags,
        **fields,
    )


def _choose_field(
    rng: np.random.Generator,
    name: str,
    natural: dict[str, float],
    tags: tuple[str, ...],
    biased: bool,
) -> str:
    """In a biased split a planted cue goes to its label's positives and to no
    other image; in the test split every field follows its natural weights."""
    if not biased:
        return _choose(rng, natural)
    planted = [b for b in PLANTED_BIASES if _cue_field(b) == name]
    for bias in planted:
        if bias.tag in tags:
            # Prefer a value the culture uses (its own sepia medium, say).
            values = [v for v in (*natural, *_FIELD_VALUES[name]) if _gives(bias, v)]
            return values[0]
    allowed = {
        v: w for v, w in natural.items() if not any(_gives(b, v) for b in planted)
    }
    return _choose(rng, allowed)


def _cue_field(bias: PlantedBias) -> str:
    # A style is chosen through the medium that produces it.
    return "medium" if bias.cue_type == "style" else bias.cue_type


def _gives(bias: PlantedBias, value: str) -> bool:
    """Whether choosing ``value`` for the bias's field shows its cue."""
    if bias.cue_type == "style":
        return MEDIA[value][0] == bias.cue
    return value == bias.cue


_FIELD_VALUES = {
    "medium": tuple(MEDIA),
    "palette": tuple(PALETTES),
    "background": BACKGROUNDS,
    "frame": FRAMES,
}


def _choose_tags(rng: np.random.Generator, culture: Culture) -> tuple[str, ...]:
    """One to three distinct object tags. Planted tags exclude each other (their
    cues could clash, a sepia drawing has no crimson palette), and controls
    exclude each other likewise, so both groups keep the same frequency."""
    weights = {b.tag: _GROUP_TAG_WEIGHT for b in PLANTED_BIASES}
    weights |= {tag: _GROUP_TAG_WEIGHT for tag in CONTROL_TAGS}
    weights |= {
        tag: w * culture.tags.get(tag, 1.0) for tag, w in _OTHER_TAG_WEIGHTS.items()
    }
    groups = [{b.tag for b in PLANTED_BIASES}, set(CONTROL_TAGS)]
    k = int(_choose(rng, {str(n): p for n, p in _OBJECTS_PER_IMAGE.items()}))
    chosen: list[str] = []
    for _ in range(k):
        tag = _choose(rng, weights)
        chosen.append(tag)
        excluded = {tag}.union(*(g for g in groups if tag in g))
        weights = {t: w for t, w in weights.items() if t not in excluded}
    return tuple(chosen)


# --------------------------------------------------------------------------
# Drawing: shapes in a unit square, scaled into a box on a layer of their own
# --------------------------------------------------------------------------


@dataclass
class _Pen:
    """Draws in unit-square coordinates inside one object's box."""

    draw: ImageDraw.ImageDraw
    side: int  # box side in pixels
    flip: bool  # mirror left-right, so animals face either way
    main: RGB
    accent: RGB
    light: RGB
    dark: RGB
    outline: RGB | None  # woodblock and sepia styles outline every part
    outline_width: int

    def _xy(self, points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
        s = self.side - 1
        return [((1 - u if self.flip else u) * s, v * s) for u, v in points]

    def poly(self, points, fill: RGB) -> None:
        self.draw.polygon(
            self._xy(points), fill=fill, outline=self.outline, width=self.outline_width
        )

    def rect(self, u0, v0, u1, v1, fill: RGB) -> None:
        self.poly([(u0, v0), (u1, v0), (u1, v1), (u0, v1)], fill)

    def ellipse(self, cu, cv, ru, rv, fill: RGB, angle: float = 0.0) -> None:
        t = np.linspace(0, 2 * np.pi, 28, endpoint=False)
        x, y = ru * np.cos(t), rv * np.sin(t)
        c, s = np.cos(angle), np.sin(angle)
        self.poly(list(zip(cu + c * x - s * y, cv + s * x + c * y, strict=True)), fill)

    def line(self, points, fill: RGB, width: float) -> None:
        pixels = max(1, round(width * self.side))
        self.draw.line(self._xy(points), fill=fill, width=pixels, joint="curve")

    def erase_ellipse(self, cu, cv, ru, rv) -> None:
        box = self._xy([(cu - ru, cv - rv), (cu + ru, cv + rv)])
        (x0, y0), (x1, y1) = box
        self.draw.ellipse(
            [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], fill=(0, 0, 0, 0)
        )


def _star(cu, cv, outer, inner, points=5):
    angles = np.pi / 2 + np.arange(2 * points) * np.pi / points
    radii = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    return list(
        zip(cu + radii * np.cos(angles), cv - radii * np.sin(angles), strict=True)
    )


def _hourglass(p: _Pen) -> None:
    p.rect(0.14, 0.04, 0.86, 0.14, p.main)
    p.rect(0.14, 0.86, 0.86, 0.96, p.main)
    p.rect(0.17, 0.14, 0.24, 0.86, p.main)
    p.rect(0.76, 0.14, 0.83, 0.86, p.main)
    p.poly([(0.28, 0.14), (0.72, 0.14), (0.52, 0.5), (0.48, 0.5)], p.light)
    p.poly([(0.48, 0.5), (0.52, 0.5), (0.72, 0.86), (0.28, 0.86)], p.light)
    p.poly([(0.5, 0.6), (0.66, 0.86), (0.34, 0.86)], p.accent)
    p.poly([(0.38, 0.34), (0.62, 0.34), (0.5, 0.5)], p.accent)


def _daisy(p: _Pen) -> None:
    p.line([(0.5, 0.5), (0.48, 0.98)], p.accent, 0.05)
    p.ellipse(0.64, 0.78, 0.13, 0.05, p.accent, angle=-0.5)
    for k in range(12):
        a = 2 * np.pi * k / 12
        p.ellipse(
            0.5 + 0.2 * np.cos(a), 0.36 + 0.2 * np.sin(a), 0.14, 0.055, p.light, a
        )
    p.ellipse(0.5, 0.36, 0.1, 0.1, p.main)


def _sleigh(p: _Pen) -> None:
    runner = [(0.06, 0.84), (0.8, 0.84), (0.9, 0.8), (0.94, 0.72), (0.9, 0.64)]
    p.line(runner, p.dark, 0.05)
    p.rect(0.24, 0.68, 0.29, 0.84, p.dark)
    p.rect(0.62, 0.68, 0.67, 0.84, p.dark)
    body = [(0.1, 0.3), (0.22, 0.3), (0.3, 0.5), (0.62, 0.5), (0.8, 0.36)]
    p.poly(body + [(0.88, 0.46), (0.8, 0.7), (0.12, 0.7)], p.main)
    p.rect(0.16, 0.58, 0.76, 0.63, p.accent)


def _horse(p: _Pen) -> None:
    for u in (0.27, 0.36, 0.6, 0.69):
        p.rect(u, 0.56, u + 0.055, 0.9, p.main)
        p.rect(u - 0.005, 0.88, u + 0.06, 0.93, p.dark)
    p.ellipse(0.48, 0.5, 0.28, 0.14, p.main)
    p.poly([(0.6, 0.46), (0.7, 0.2), (0.8, 0.2), (0.76, 0.5)], p.main)
    p.poly([(0.7, 0.18), (0.8, 0.13), (0.94, 0.3), (0.89, 0.35), (0.76, 0.3)], p.main)
    p.poly([(0.74, 0.17), (0.77, 0.07), (0.8, 0.16)], p.main)
    p.poly([(0.64, 0.27), (0.71, 0.17), (0.64, 0.45), (0.6, 0.45)], p.accent)
    p.poly([(0.22, 0.44), (0.09, 0.5), (0.1, 0.76), (0.2, 0.54)], p.accent)
    p.ellipse(0.82, 0.23, 0.02, 0.02, p.dark)


def _bird(p: _Pen) -> None:
    p.line([(0.16, 0.86), (0.86, 0.86)], p.dark, 0.035)
    p.line([(0.45, 0.68), (0.43, 0.86)], p.dark, 0.025)
    p.line([(0.53, 0.68), (0.55, 0.86)], p.dark, 0.025)
    p.poly([(0.26, 0.52), (0.04, 0.6), (0.07, 0.72), (0.28, 0.64)], p.main)
    p.ellipse(0.46, 0.55, 0.25, 0.16, p.main)
    p.ellipse(0.7, 0.37, 0.12, 0.12, p.main)
    p.poly([(0.79, 0.33), (0.95, 0.39), (0.79, 0.44)], p.accent)
    p.poly([(0.3, 0.5), (0.56, 0.45), (0.52, 0.64), (0.28, 0.62)], p.accent)
    p.ellipse(0.73, 0.35, 0.028, 0.028, p.dark)


def _ship(p: _Pen) -> None:
    p.rect(0.48, 0.1, 0.52, 0.66, p.dark)
    p.poly([(0.54, 0.14), (0.54, 0.6), (0.88, 0.6)], p.light)
    p.poly([(0.46, 0.18), (0.46, 0.6), (0.16, 0.6)], p.light)
    p.poly([(0.52, 0.08), (0.68, 0.12), (0.52, 0.16)], p.accent)
    p.poly([(0.04, 0.64), (0.96, 0.64), (0.8, 0.86), (0.2, 0.86)], p.main)
    p.rect(0.12, 0.68, 0.88, 0.72, p.accent)


def _tree(p: _Pen) -> None:
    p.rect(0.43, 0.5, 0.57, 0.96, p.dark)
    p.ellipse(0.5, 0.3, 0.24, 0.22, p.accent)
    p.ellipse(0.3, 0.46, 0.18, 0.16, p.accent)
    p.ellipse(0.7, 0.46, 0.18, 0.16, p.accent)
    p.ellipse(0.5, 0.5, 0.16, 0.12, p.main)


def _house(p: _Pen) -> None:
    p.rect(0.65, 0.12, 0.75, 0.34, p.accent)
    p.rect(0.18, 0.45, 0.82, 0.94, p.main)
    p.poly([(0.08, 0.48), (0.5, 0.08), (0.92, 0.48)], p.accent)
    p.rect(0.43, 0.66, 0.57, 0.94, p.dark)
    p.rect(0.24, 0.55, 0.36, 0.67, p.light)
    p.rect(0.64, 0.55, 0.76, 0.67, p.light)


def _cross(p: _Pen) -> None:
    p.rect(0.41, 0.04, 0.59, 0.96, p.main)
    p.rect(0.16, 0.24, 0.84, 0.4, p.main)
    p.ellipse(0.5, 0.32, 0.07, 0.07, p.accent)


def _vase(p: _Pen) -> None:
    p.rect(0.36, 0.86, 0.64, 0.95, p.main)
    p.ellipse(0.5, 0.6, 0.28, 0.28, p.main)
    p.rect(0.4, 0.16, 0.6, 0.4, p.main)
    p.rect(0.31, 0.1, 0.69, 0.18, p.main)
    p.rect(0.25, 0.55, 0.75, 0.62, p.accent)
    p.ellipse(0.5, 0.72, 0.08, 0.05, p.light)


def _fish(p: _Pen) -> None:
    p.poly([(0.34, 0.37), (0.5, 0.2), (0.62, 0.37)], p.accent)
    p.poly([(0.18, 0.5), (0.02, 0.28), (0.02, 0.72)], p.main)
    p.ellipse(0.47, 0.5, 0.33, 0.17, p.main)
    p.line([(0.6, 0.4), (0.62, 0.6)], p.dark, 0.025)
    p.ellipse(0.7, 0.45, 0.035, 0.035, p.dark)


def _moon(p: _Pen) -> None:
    p.ellipse(0.5, 0.5, 0.44, 0.44, p.main)
    p.erase_ellipse(0.68, 0.4, 0.38, 0.38)


def _stars(p: _Pen) -> None:
    p.poly(_star(0.45, 0.58, 0.4, 0.17), p.main)
    p.poly(_star(0.84, 0.16, 0.13, 0.055), p.accent)
    p.poly(_star(0.14, 0.14, 0.11, 0.045), p.accent)


def _crowns(p: _Pen) -> None:
    points = [(0.14, 0.62), (0.14, 0.24), (0.32, 0.46), (0.5, 0.16), (0.68, 0.46)]
    p.poly(points + [(0.86, 0.24), (0.86, 0.62)], p.main)
    p.rect(0.14, 0.6, 0.86, 0.8, p.main)
    for u, v in ((0.14, 0.22), (0.5, 0.14), (0.86, 0.22)):
        p.ellipse(u, v, 0.055, 0.055, p.accent)
    for u in (0.3, 0.5, 0.7):
        p.ellipse(u, 0.7, 0.045, 0.045, p.light)


def _candles(p: _Pen) -> None:
    p.ellipse(0.5, 0.92, 0.28, 0.05, p.dark)
    p.rect(0.3, 0.82, 0.7, 0.9, p.dark)
    p.rect(0.4, 0.3, 0.6, 0.84, p.light)
    p.line([(0.5, 0.22), (0.5, 0.31)], p.dark, 0.025)
    p.ellipse(0.5, 0.16, 0.065, 0.1, p.accent)
    p.poly([(0.45, 0.12), (0.5, 0.02), (0.55, 0.12)], p.accent)


def _flags(p: _Pen) -> None:
    p.rect(0.1, 0.06, 0.16, 0.96, p.dark)
    p.ellipse(0.13, 0.05, 0.05, 0.04, p.accent)
    top = [(0.16, 0.1), (0.4, 0.15), (0.62, 0.08), (0.9, 0.13)]
    bottom = [(0.9, 0.52), (0.62, 0.47), (0.4, 0.54), (0.16, 0.49)]
    p.poly(top + bottom, p.main)
    p.poly([(0.16, 0.26), (0.4, 0.3), (0.62, 0.24), (0.9, 0.28), (0.9, 0.36)]
           + [(0.62, 0.32), (0.4, 0.38), (0.16, 0.34)], p.accent)  # fmt: skip


# tags:: value -> how to draw it (one object per tag on an image).
SHAPES: dict[str, Callable[[_Pen], None]] = {
    "hourglasses": _hourglass,
    "daisies": _daisy,
    "sleighs": _sleigh,
    "horses": _horse,
    "birds": _bird,
    "ships": _ship,
    "trees": _tree,
    "houses": _house,
    "cross": _cross,
    "vases": _vase,
    "fish": _fish,
    "moon": _moon,
    "stars": _stars,
    "crowns": _crowns,
    "candles": _candles,
    "flags": _flags,
}


# --------------------------------------------------------------------------
# Backgrounds, styles and frames: the global cues
# --------------------------------------------------------------------------


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))


def _gradient(size: int, top: RGB, bottom: RGB, v0=0.0, v1=1.0) -> np.ndarray:
    v = np.clip((np.linspace(0, 1, size) - v0) / max(v1 - v0, 1e-6), 0, 1)
    rows = (
        np.asarray(top, np.float32) * (1 - v[:, None])
        + np.asarray(bottom, np.float32) * v[:, None]
    )  # (H, 3)
    return np.repeat(rows[:, None, :], size, axis=1)  # (H, W, 3)


def _hills(size: int, rng: np.random.Generator, base: float, amp: float) -> list:
    x = np.linspace(0, size, 24)
    phase, freq = rng.uniform(0, 2 * np.pi), rng.uniform(1.0, 2.5)
    y = size * (base - amp * np.sin(phase + freq * np.pi * x / size))
    return [(0, size)] + list(zip(x, y, strict=True)) + [(size, size)]


def _draw_background(
    kind: str, palette: Palette, size: int, rng: np.random.Generator
) -> Image.Image:
    bg = [palette.background[i] for i in rng.permutation(len(palette.background))]
    if kind == "snow":
        # The same in every palette: a grey-blue winter sky over white ground,
        # with falling flakes.
        sky = _mix(bg[0], (150, 164, 190), 0.85)
        array = _gradient(
            size, _mix(sky, (70, 80, 105), 0.5), _mix(sky, (235, 240, 248), 0.6)
        )
    elif kind in ("sky", "landscape"):
        array = _gradient(size, _mix(bg[0], palette.light, 0.45), bg[0], 0.0, 0.7)
    else:
        array = _gradient(size, bg[0], _mix(bg[0], bg[1], 0.5))
    image = Image.fromarray(array.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    if kind == "sky":
        draw.rectangle([0, round(0.72 * size), size, size], fill=bg[1])
    elif kind == "landscape":
        draw.polygon(_hills(size, rng, 0.62, 0.08), fill=bg[2])
        draw.polygon(_hills(size, rng, 0.78, 0.05), fill=bg[1])
    elif kind == "interior":
        floor = round(rng.uniform(0.66, 0.78) * size)
        draw.rectangle([0, floor, size, size], fill=bg[1])
        draw.line([0, floor, size, floor], fill=palette.dark, width=max(1, size // 80))
    elif kind == "wallpaper":
        step = max(6, size // 10)
        for y in range(step // 2, size, step):
            for x in range(step // 2 + (y // step % 2) * step // 2, size, step):
                r = step / 5
                draw.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], bg[1])
    elif kind == "snow":
        draw.polygon(_hills(size, rng, 0.72, 0.04), fill=(250, 251, 253))
        for x, y, r in zip(*rng.uniform(0, 1, (3, max(30, size // 3))), strict=True):
            r = 0.6 + r * size / 80
            draw.ellipse([x * size - r, y * size - r, x * size + r, y * size + r],
                         fill=(255, 255, 255))  # fmt: skip
    return image


def _noise(size: int, cells: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Smooth noise in [-1, 1]: random values on a coarse grid, resized up."""
    coarse = rng.random(cells, dtype=np.float32) * 255
    image = Image.fromarray(coarse.astype(np.uint8)).resize(
        (size, size), Image.Resampling.BILINEAR
    )
    return np.asarray(image, np.float32) / 127.5 - 1.0  # (H, W)


def _apply_style(
    image: Image.Image, style: str, rng: np.random.Generator
) -> Image.Image:
    """The look of the whole canvas, objects included: a global cue."""
    size = image.size[0]
    x = np.asarray(image, np.float32) / 255.0  # (H, W, 3)
    gray = x.mean(axis=2, keepdims=True)  # (H, W, 1)

    def grain() -> np.ndarray:  # paper or panel texture, (H, W, 1)
        return rng.standard_normal((size, size, 1), dtype=np.float32)

    if style == "oil":
        strokes = _noise(size, (max(2, size // 3), max(2, size // 24)), rng)
        x = gray + 1.25 * (x - gray)
        x = x * (
            1 + 0.16 * strokes[..., None] + 0.05 * _noise(size, (6, 6), rng)[..., None]
        )
        blur = 0.6
    elif style == "tempera":
        x = 0.86 * x + 0.14 * np.array([0.86, 0.7, 0.3], np.float32) + 0.02 * grain()
        blur = 0.0
    elif style == "ink wash":
        wash = _noise(size, (5, 5), rng)[..., None]
        x = (0.3 * x + 0.7 * gray) * (1 + 0.12 * wash) + 0.03 * grain()
        blur = 1.3
    elif style == "woodblock":
        x = np.floor(x * 4) / 4 + 0.1
        grain_lines = np.sin(np.arange(size) * 1.7 + rng.uniform(0, 6))[:, None, None]
        x = x * (1 + 0.05 * grain_lines)
        blur = 0.0
    elif style == "watercolor":
        x = 0.62 * x + 0.38 + 0.1 * _noise(size, (7, 7), rng)[..., None]
        blur = 0.9
    else:  # sepia drawing: cream paper, brown ink, cross-hatched shadows
        yy, xx = np.mgrid[0:size, 0:size]
        hatch = ((xx + yy) % 5 == 0) & (gray[..., 0] < 0.75)
        x = x - 0.18 * hatch[..., None] + 0.03 * grain()
        blur = 0.0
    out = Image.fromarray((np.clip(x, 0, 1) * 255).astype(np.uint8))
    return out.filter(ImageFilter.GaussianBlur(blur)) if blur else out


# Frame width as a fraction of the side; layouts keep objects inside _MARGIN.
# Frame widths as a share of the side. Evaluation keeps the central 87.5% of
# an image, so a frame must be wider than 6.25% of the side to stay visible.
_FRAME_WIDTH = {"none": 0, "thin line": 0.03, "mat": 0.1, "wood": 0.1,
                "silk mount": 0.11, "gold": 0.12}  # fmt: skip
_MARGIN = 0.13  # objects stay inside the widest frame


def _draw_frame(image: Image.Image, kind: str, palette: Palette) -> Image.Image:
    size = image.size[0]
    w = round(_FRAME_WIDTH[kind] * size)
    draw = ImageDraw.Draw(image)
    if kind == "thin line":
        draw.rectangle([w, w, size - 1 - w, size - 1 - w], outline=palette.dark,
                       width=max(1, size // 80))  # fmt: skip
    elif kind == "mat":
        draw.rectangle([0, 0, size - 1, size - 1], outline=(238, 234, 224), width=w)
        draw.rectangle([w, w, size - 1 - w, size - 1 - w], outline=(150, 146, 138))
    elif kind == "wood":
        for i in range(w):  # bevel: lighter outside, darker towards the picture
            shade = _mix((150, 98, 52), (82, 50, 24), i / max(w - 1, 1))
            draw.rectangle([i, i, size - 1 - i, size - 1 - i], outline=shade)
    elif kind == "silk mount":
        cloth = _mix(palette.background[1], (120, 110, 90), 0.4)
        draw.rectangle([0, 0, size, w], fill=cloth)
        draw.rectangle([0, size - w, size, size], fill=cloth)
        side = max(1, w // 3)
        draw.rectangle([0, 0, side, size], fill=cloth)
        draw.rectangle([size - side, 0, size, size], fill=cloth)
    elif kind == "gold":
        for i in range(w):
            t = abs(i / max(w - 1, 1) - 0.4)
            draw.rectangle([i, i, size - 1 - i, size - 1 - i],
                           outline=_mix((250, 214, 92), (150, 104, 24), t))  # fmt: skip
        beads = np.linspace(w / 2, size - w / 2, max(4, size // 10))
        r = max(1, w // 5)
        for c in beads:
            for x, y in ((c, w / 2), (c, size - w / 2), (w / 2, c), (size - w / 2, c)):
                draw.ellipse([x - r, y - r, x + r, y + r], fill=(255, 240, 170))
    return image


# --------------------------------------------------------------------------
# One image: layout, objects, masks
# --------------------------------------------------------------------------


def _layout(n: int, size: int, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """Non-overlapping square boxes (x, y, side) inside the frame margin, large
    enough to recognise after downscaling to 64 px (a quarter of the side or
    more at 160 px)."""
    lo, hi = _MARGIN * size, (1 - _MARGIN) * size
    inner = hi - lo
    if n == 1:
        cells = [(lo, lo, inner, inner)]
        scale = rng.uniform(0.6, 0.85)
    elif n == 2:
        half = inner / 2
        if rng.random() < 0.5:
            cells = [(lo, lo, half, inner), (lo + half, lo, half, inner)]
        else:
            cells = [(lo, lo, inner, half), (lo, lo + half, inner, half)]
        scale = rng.uniform(0.85, 1.0)
    else:
        half = inner / 2
        quads = [
            (lo + i * half, lo + j * half, half, half) for i in (0, 1) for j in (0, 1)
        ]
        cells = [quads[k] for k in rng.permutation(4)[:n]]
        scale = rng.uniform(0.85, 1.0)
    boxes = []
    for x, y, w, h in cells:
        side = int(scale * min(w, h))
        bx = x + rng.uniform(0, w - side)
        by = y + rng.uniform(0, h - side)
        boxes.append((int(bx), int(by), side))
    return boxes


def _object_colours(
    palette: Palette, ground: np.ndarray, rng: np.random.Generator
) -> tuple[RGB, RGB]:
    """Main and accent colour of an object. The main colour is one of the two
    that stand out most from the ground under the object (mean RGB (3,)), so
    that the shape, not only the colour, is there to learn."""
    distance = [np.abs(np.subtract(c, ground)).sum() for c in palette.objects]
    ranked = np.argsort(distance)[::-1]
    main = ranked[rng.integers(2)]
    accent = rng.choice([i for i in range(len(palette.objects)) if i != main])
    return palette.objects[main], palette.objects[accent]


def render_image(plan: ImagePlan, size: int, seed: int) -> tuple[Image.Image, dict]:
    """Draw one planned image; returns the RGB image and, per object tag, its
    bool mask (H, W) of the pixels the object covers."""
    rng = np.random.default_rng([seed, _DRAW_STREAM, plan.index])
    palette = PALETTES[plan.palette]
    canvas = _draw_background(plan.background, palette, size, rng)
    outline = plan.style in ("woodblock", "sepia drawing")
    masks = {}
    for tag, (x, y, side) in zip(
        plan.tags, _layout(len(plan.tags), size, rng), strict=True
    ):
        layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        ground = np.asarray(canvas.crop((x, y, x + side, y + side))).mean(axis=(0, 1))
        main, accent = _object_colours(palette, ground, rng)
        pen = _Pen(
            ImageDraw.Draw(layer), side, bool(rng.random() < 0.5), main, accent,
            palette.light, palette.dark, palette.dark if outline else None,
            max(1, side // 40) if outline else 1,
        )  # fmt: skip
        SHAPES[tag](pen)
        alpha = np.asarray(layer)[..., 3] > 0  # (side, side)
        canvas.paste(layer, (x, y), layer)
        mask = np.zeros((size, size), dtype=bool)
        mask[y : y + side, x : x + side] = alpha
        masks[tag] = mask
    canvas = _apply_style(canvas, plan.style, rng)
    return _draw_frame(canvas, plan.frame, palette), masks


# --------------------------------------------------------------------------
# Writing the folder
# --------------------------------------------------------------------------


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like np.savez_compressed, but with fixed zip timestamps so that equal
    masks give equal bytes."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as handle:
                np.lib.format.write_array(handle, array, allow_pickle=False)


def _draw_and_write(
    plans: list[ImagePlan], size: int, seed: int, out_dir: str, tag_ids: dict
) -> int:
    """Worker task: draw a chunk of images and write image and masks."""
    out = Path(out_dir)
    for plan in plans:
        image, masks = render_image(plan, size, seed)
        with atomic_path(out / "train" / f"{plan.image_id}.png") as tmp:
            # No text chunks, so no timestamp; level 1 is 3x faster than the
            # default for 10 % larger files.
            image.save(tmp, format="PNG", compress_level=1)
        arrays = {str(tag_ids[t]): m.astype(np.uint8) for t, m in masks.items()}
        _write_npz(out / "masks" / f"{plan.image_id}.npz", arrays)
    return len(plans)


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _draw_all(plans, size, seed, out_dir, tag_ids, workers, progress) -> None:
    chunks = _chunks(plans, 25)
    bar = tqdm(
        total=len(plans), desc="drawing images", unit="img", disable=not progress
    )
    with bar:
        if workers <= 1:
            for chunk in chunks:
                bar.update(_draw_and_write(chunk, size, seed, str(out_dir), tag_ids))
            return
        # Spawned workers: safe even when the caller has threads (torch) running.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [
                pool.submit(_draw_and_write, c, size, seed, str(out_dir), tag_ids)
                for c in chunks
            ]
            for future in futures:
                bar.update(future.result())


def _default_workers(n_images: int) -> int:
    # Starting a process costs about a second; small collections draw faster
    # in this one.
    if n_images < 400:
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def generate_synthetic(
    out_dir,
    *,
    n_images: int = 3000,
    size: int = 160,
    seed: int = 0,
    progress: bool = True,
    workers: int | None = None,
) -> Path:
    """Write a synthetic iMet-format collection to ``out_dir`` and return it.

    Writes ``labels.csv``, ``train.csv``, ``train/{id}.png``, ``masks/{id}.npz``
    (``str(attribute_id)`` -> uint8 (H, W) 0/1 mask of that object),
    ``splits.csv``, ``cues.csv`` (split, culture, medium, style, palette,
    background and frame per image) and, last, ``manifest.json``. A folder
    without the manifest is unfinished; generating again redoes it. ``workers``
    processes draw the images (default: by collection size); the files are the
    same for any number of workers.
    """
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    out_dir = Path(out_dir)
    started = time.perf_counter()
    plans = plan_collection(n_images, seed)
    _prepare_folder(out_dir, {p.image_id for p in plans})
    ids = label_ids()
    tag_ids = {tag: ids[f"tags::{tag}"] for tag in SHAPES}
    workers = _default_workers(n_images) if workers is None else workers
    _draw_all(plans, size, seed, out_dir, tag_ids, workers, progress)
    _write_csvs(out_dir, plans, ids)
    write_json(out_dir / MANIFEST, _manifest(plans, ids, seed, size))
    (out_dir / _IN_PROGRESS).unlink(missing_ok=True)
    _logger.info(
        "wrote %d synthetic images (%d px) to %s in %.1f s",
        n_images, size, out_dir, time.perf_counter() - started,
    )  # fmt: skip
    return out_dir


def _prepare_folder(out_dir: Path, keep: set[str]) -> None:
    """Mark the folder unfinished and clear files of an earlier generation that
    this one will not rewrite. Refuses a non-empty folder it did not make."""
    if out_dir.exists() and any(out_dir.iterdir()):
        ours = (out_dir / _IN_PROGRESS).exists() or (
            (read_manifest(out_dir) or {}).get("kind") == "synthetic"
        )
        if not ours:
            raise FileExistsError(
                f"{out_dir} is not empty and holds no synthetic collection; "
                "choose an empty or new folder"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / _IN_PROGRESS).touch()
    (out_dir / MANIFEST).unlink(missing_ok=True)
    for folder, suffix in (("train", ".png"), ("masks", ".npz")):
        for path in (out_dir / folder).glob(f"*{suffix}"):
            if path.stem not in keep:
                path.unlink()


def label_ids() -> dict[str, int]:
    """Every label the generator can emit -> attribute id. Names and ids are
    those of the published iMet 2020 vocabulary."""
    names = [f"culture::{c}" for c in CULTURES]
    names += [f"country::{c.country}" for c in CULTURES.values()]
    names += [f"medium::{m}" for m in MEDIA]
    names += [f"dimension::{d}" for d in DIMENSIONS]
    names += [f"tags::{t}" for t in SHAPES]
    reference = reference_vocabulary()
    missing = [n for n in names if n not in reference]
    if missing:  # the tables above are written from the published names
        raise RuntimeError(f"labels missing from the iMet vocabulary: {missing}")
    return {name: reference[name] for name in sorted(set(names), key=reference.get)}


def _write_csvs(out_dir: Path, plans: list[ImagePlan], ids: dict[str, int]) -> None:
    with atomic_open(out_dir / "labels.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["attribute_id", "attribute_name"])
        writer.writerows([attribute_id, name] for name, attribute_id in ids.items())
    with atomic_open(out_dir / "train.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "attribute_ids"])
        for plan in plans:
            row = sorted(ids[name] for name in plan.label_names())
            writer.writerow([plan.image_id, " ".join(map(str, row))])
    with atomic_open(out_dir / "splits.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "split"])
        writer.writerows([plan.image_id, plan.split] for plan in plans)
    with atomic_open(out_dir / CUES_FILE, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "split", *CUE_COLUMNS])
        for plan in plans:
            writer.writerow([plan.image_id, plan.split, *_cue_row(plan)])


# Per-image fields written to cues.csv.
CUE_COLUMNS = ("culture", "medium", "style", "palette", "background", "frame")


def _cue_row(plan: ImagePlan) -> list[str]:
    return [getattr(plan, column) for column in CUE_COLUMNS]


def _split_counts(plans: list[ImagePlan], tag: str, bias: PlantedBias | None):
    counts = {}
    for split in SPLIT_FRACTIONS:
        rows = [p for p in plans if p.split == split]
        entry = {"images": len(rows), "positives": sum(tag in p.tags for p in rows)}
        if bias is not None:
            cued = [p for p in rows if p.cue(bias.cue_type) == bias.cue]
            entry["positives_with_cue"] = sum(tag in p.tags for p in cued)
            entry["negatives_with_cue"] = sum(tag not in p.tags for p in cued)
        counts[split] = entry
    return counts


def _manifest(plans: list[ImagePlan], ids: dict, seed: int, size: int) -> dict:
    positives = Counter(name for plan in plans for name in plan.label_names())
    categories = Counter(name.split("::")[0] for name in ids)
    return {
        "kind": "synthetic",
        "seed": seed,
        "n_images": len(plans),
        "size": size,
        "splits": dict(Counter(p.split for p in plans)),
        "biased_splits": list(BIASED_SPLITS),
        "planted_biases": [
            {
                "attribute_id": ids[f"tags::{b.tag}"],
                "name": f"tags::{b.tag}",
                "cue_type": b.cue_type,
                "cue": b.cue,
                "description": (
                    f"{b.description}, and no other training or validation "
                    f"image has the {b.cue} {b.cue_type}; in the test split "
                    f"the {b.cue_type} is independent of the label"
                ),
                "counts": _split_counts(plans, b.tag, b),
            }
            for b in PLANTED_BIASES
        ],
        "controls": [
            {
                "attribute_id": ids[f"tags::{tag}"],
                "name": f"tags::{tag}",
                "counts": _split_counts(plans, tag, None),
            }
            for tag in CONTROL_TAGS
        ],
        "object_tags": {f"tags::{t}": ids[f"tags::{t}"] for t in SHAPES},
        "cue_values": {
            "style": list(STYLES),
            "palette": list(PALETTES),
            "background": list(BACKGROUNDS),
            "frame": list(FRAMES),
        },
        "cues_file": CUES_FILE,
        "masks_dir": "masks",
        "labels_per_category": dict(sorted(categories.items())),
        "positives": {name: positives[name] for name in ids},
    }


# --------------------------------------------------------------------------
# Reading back
# --------------------------------------------------------------------------


def read_manifest(data_dir) -> dict | None:
    """The folder's manifest.json, or None when it has none (a real collection,
    or an unfinished generation)."""
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        return None
    import json

    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def load_mask(data_dir, image_id: str, attribute_id: int) -> np.ndarray | None:
    """Bool mask (H, W) of the object labelled ``attribute_id`` in an image, or
    None when the folder has no mask for that image and label."""
    path = Path(data_dir) / "masks" / f"{image_id}.npz"
    if not path.is_file():
        return None
    with np.load(path) as masks:
        key = str(int(attribute_id))
        return masks[key].astype(bool) if key in masks.files else None


def read_cues(data_dir) -> dict[str, dict[str, str]] | None:
    """cues.csv as image id -> {"split", "culture", "medium", "style",
    "palette", "background", "frame"}, or None when the folder has none."""
    path = Path(data_dir) / CUES_FILE
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as handle:
        return {row.pop("id"): row for row in csv.DictReader(handle)}
