"""The Tree-Augmented Naive Bayes label network: learning, exact inference, and
the screening strategies that use it.

``learn_network`` builds a Chow-Liu tree over every label from one sparse
co-occurrence product; ``TreeInference`` gives exact posteriors (sum-product)
and the most probable joint assignment (max-product) for many images at once;
``imet.tanb.screening`` holds the study's four strategies; ``run_tanb`` applies
them all to a trained run and writes ``RUN/tanb/``.
"""

from imet.tanb.calibration import CalibrationConfig, ScoreCalibration, fit_calibration
from imet.tanb.inference import Marginals, TreeInference, map_assignment, marginals
from imet.tanb.label_matrix import LabelMatrix, read_train_csv
from imet.tanb.mutual_info import pairwise_mutual_information
from imet.tanb.network import (
    TreeConfig,
    TreeNetwork,
    learn_network,
    network_from_json,
    network_to_json,
)
from imet.tanb.pgmpy_export import to_pgmpy
from imet.tanb.run import (
    TanbConfig,
    image_decisions,
    load_decisions,
    load_report,
    load_tree,
    run_tanb,
)
from imet.tanb.screening import tanb_screen, threshold_cap, top_n
from imet.tanb.structure import TreeStructure, chow_liu

__all__ = [
    "CalibrationConfig",
    "LabelMatrix",
    "Marginals",
    "ScoreCalibration",
    "TanbConfig",
    "TreeConfig",
    "TreeInference",
    "TreeNetwork",
    "TreeStructure",
    "chow_liu",
    "fit_calibration",
    "image_decisions",
    "learn_network",
    "load_decisions",
    "load_report",
    "load_tree",
    "map_assignment",
    "marginals",
    "network_from_json",
    "network_to_json",
    "pairwise_mutual_information",
    "read_train_csv",
    "run_tanb",
    "tanb_screen",
    "threshold_cap",
    "to_pgmpy",
    "top_n",
]
