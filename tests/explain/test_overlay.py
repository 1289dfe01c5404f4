import numpy as np
from PIL import Image

from imet.explain import normalise_map, render_overlay


def test_normalise_clips_at_the_99th_percentile_and_uses_magnitude():
    values = -np.linspace(0, 1, 10_000, dtype=np.float32).reshape(100, 100)
    values[0, 0] = -50.0  # one extreme pixel must not wash out the rest
    out = normalise_map(values)
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() == 1.0
    assert out[50, 0] == np.float32(abs(values[50, 0]) / np.percentile(-values, 99))
    assert (out == 1.0).mean() < 0.02


def test_normalise_handles_sparse_and_empty_maps():
    sparse = np.zeros((50, 50), dtype=np.float32)
    sparse[3, 4] = 2.0
    assert normalise_map(sparse)[3, 4] == 1.0
    assert not normalise_map(np.zeros((4, 4))).any()


def test_overlay_keeps_the_image_size_and_leaves_zero_saliency_untouched():
    rng = np.random.default_rng(0)
    image = Image.fromarray((rng.random((30, 40, 3)) * 255).astype(np.uint8))
    saliency = np.zeros((30, 40), dtype=np.float32)
    saliency[10:20, 10:20] = 1.0
    overlay = render_overlay(image, saliency)
    assert overlay.size == (40, 30) and overlay.mode == "RGB"
    before, after = np.asarray(image), np.asarray(overlay)
    assert np.array_equal(before[:5], after[:5])
    assert not np.array_equal(before[12:18, 12:18], after[12:18, 12:18])


def test_overlay_resizes_a_map_of_another_size():
    image = Image.new("RGB", (64, 48), "white")
    overlay = render_overlay(image, np.ones((12, 16)))
    assert overlay.size == (64, 48)
    assert np.asarray(overlay).std(axis=(0, 1)).max() < 1  # uniform map, uniform tint
