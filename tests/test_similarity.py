import numpy as np
import pytest

from imet import runs
from imet.similarity import SimilarityIndex


def _unit_rows(n, d, seed=0):
    e = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def _brute_force(embeddings, q, k, rows=None):
    q = q / np.linalg.norm(q)
    pool = np.arange(len(embeddings)) if rows is None else rows
    scores = embeddings[pool] @ q
    order = np.argsort(-scores, kind="stable")[:k]
    return list(pool[order]), scores[order]


@pytest.mark.parametrize("n", [500, 25_000])  # float32 scan and float16 shortlist
def test_query_equals_exact_float32_search(n):
    e = _unit_rows(n, 48)
    index = SimilarityIndex([f"im{i}" for i in range(n)], e)
    rng = np.random.default_rng(1)
    for _ in range(5):
        # near an existing row, so the top scores are close together
        q = e[rng.integers(n)] + 0.3 * rng.standard_normal(48).astype(np.float32)
        rows, scores = _brute_force(e, q, 10)
        got = index.query(q, k=10)
        assert [nb.row for nb in got] == rows
        np.testing.assert_allclose([nb.similarity for nb in got], scores, atol=1e-6)
        assert got[0].id == f"im{rows[0]}"


def test_query_of_a_stored_embedding_finds_itself_first():
    e = _unit_rows(30_000, 32)
    index = SimilarityIndex(np.arange(30_000).astype(str), e)
    best = index.query(e[1234], k=3)[0]
    assert best.row == 1234 and best.similarity == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("n", [400, 24_000])
def test_label_filter_returns_only_images_with_that_label(n):
    e = _unit_rows(n, 16)
    rng = np.random.default_rng(2)
    targets = (rng.random((n, 3)) < [0.5, 0.01, 0.0]).astype(np.uint8)
    index = SimilarityIndex(
        np.arange(n).astype(str), e, targets=targets, label_names=["a", "b", "c"]
    )
    q = rng.standard_normal(16).astype(np.float32)
    for label, column in (("a", 0), (1, 1)):
        rows = np.flatnonzero(targets[:, column])
        expected, _ = _brute_force(e, q, 5, rows)
        got = index.query(q, k=5, label=label)
        assert [nb.row for nb in got] == expected
        assert all(targets[nb.row, column] for nb in got)
    assert index.query(q, k=5, label="c") == []


def test_query_rejects_wrong_dimension_and_unknown_label():
    index = SimilarityIndex(["a", "b"], _unit_rows(2, 8), targets=np.eye(2))
    with pytest.raises(ValueError, match="dimensions"):
        index.query(np.ones(9), k=1)
    with pytest.raises(KeyError):
        index.query(np.ones(8), k=1, label="missing")


def test_from_run_aligns_training_targets_by_id(tmp_path):
    e = _unit_rows(6, 4)
    ids = np.array([f"img{i}" for i in range(6)])
    runs.write_embeddings(tmp_path, ids, e)
    runs.write_labels(tmp_path, [10, 11], ["tags::a", "tags::b"])
    targets = np.zeros((6, 2), dtype=np.uint8)
    targets[[1, 4], 1] = 1
    # stored scores list the images in another order than the embeddings
    order = np.array([5, 3, 1, 0, 2, 4])
    runs.write_scores(
        tmp_path,
        "train",
        runs.Scores(ids[order], np.zeros((6, 2), np.float32), targets[order]),
    )
    index = SimilarityIndex.from_run(tmp_path)
    got = index.query(e[0], k=6, label="tags::b")
    assert sorted(nb.id for nb in got) == ["img1", "img4"]
    assert len(index.query(e[0], k=6)) == 6


def test_embed_image_gives_the_unit_pooled_features_of_the_eval_input():
    import torch
    from PIL import Image

    from imet.models import build_model
    from imet.similarity import embed_image
    from imet.transforms import eval_transform

    torch.manual_seed(0)
    model = build_model("cnn", 4, image_size=32, arch={"widths": [8, 16]}).eval()
    image = Image.fromarray(
        (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    )
    embedding = embed_image(model, image, 32)
    with torch.no_grad():
        expected = model.forward_features(eval_transform(32)(image)[None])[0].numpy()
    assert embedding.shape == (16,) and embedding.dtype == np.float32
    np.testing.assert_allclose(
        embedding, expected / np.linalg.norm(expected), rtol=1e-5
    )
