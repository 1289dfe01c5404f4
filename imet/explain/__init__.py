"""Saliency maps and measurements of how far they can be trusted.

``compute_maps`` explains one label of one image with every method in
``METHODS``; ``render_overlay`` draws a map over its image; the functions of
:mod:`imet.explain.faithfulness` measure a map (deletion and insertion,
model randomisation, localisation against an object mask);
:mod:`imet.explain.evaluate` runs those measurements over a run's test images.
"""

from imet.explain.faithfulness import (
    Faithfulness,
    PerturbationConfig,
    deletion_insertion,
    faithfulness,
    localisation,
    randomised_copy,
    rank_correlation,
)
from imet.explain.methods import (
    METHODS,
    MethodUnsupported,
    compute_maps,
    prepare,
    run_method,
    to_image_frame,
    to_input_frame,
)
from imet.explain.overlay import normalise_map, render_overlay

__all__ = [
    "METHODS",
    "Faithfulness",
    "MethodUnsupported",
    "PerturbationConfig",
    "compute_maps",
    "deletion_insertion",
    "faithfulness",
    "localisation",
    "normalise_map",
    "prepare",
    "randomised_copy",
    "rank_correlation",
    "render_overlay",
    "run_method",
    "to_image_frame",
    "to_input_frame",
]
