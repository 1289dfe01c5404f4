import numpy as np
import scipy.sparse as sp
from sklearn.metrics import mutual_info_score

from imet.tanb.mutual_info import pairwise_mutual_information

from .conftest import correlated_labels


def test_every_pair_matches_sklearn_plug_in_estimate():
    labels = correlated_labels(400, 9, seed=1)
    mi = pairwise_mutual_information(sp.csr_matrix(labels))
    for i in range(9):
        for j in range(9):
            expected = 0.0 if i == j else mutual_info_score(labels[:, i], labels[:, j])
            assert abs(mi[i, j] - expected) < 1e-12


def test_result_is_exactly_symmetric_non_negative_with_zero_diagonal():
    labels = correlated_labels(300, 15, seed=2)
    mi = pairwise_mutual_information(labels)
    assert np.array_equal(mi, mi.T)
    assert (mi >= 0).all() and (np.diag(mi) == 0).all()


def test_dense_and_sparse_inputs_agree_and_nonzero_values_count_as_present():
    labels = correlated_labels(200, 6, seed=3)
    weighted = labels * 7  # any non-zero entry means present
    assert np.array_equal(
        pairwise_mutual_information(labels),
        pairwise_mutual_information(sp.csc_matrix(weighted)),
    )


def test_constant_labels_have_zero_information_not_nan():
    labels = correlated_labels(50, 4, seed=4)
    labels[:, 0] = 0
    labels[:, 1] = 1
    mi = pairwise_mutual_information(labels)
    assert np.isfinite(mi).all()
    assert (mi[0] == 0).all() and (mi[1] == 0).all()
