"""ImageDataset: transformed images paired with their label rows."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from imet.data import ImageCache, ImageDataset, load_collection


def _to_square_tensor(image):
    pixels = np.asarray(image.resize((10, 10)), dtype=np.float32) / 255
    return torch.from_numpy(pixels).permute(2, 0, 1)  # (3, 10, 10)


def test_items_pair_transformed_image_with_float_target_row(good_folder):
    col = load_collection(good_folder, progress=False)
    cache = ImageCache.build(col, short_side=12, progress=False)
    rows = [4, 0, 6]
    dataset = ImageDataset(cache, rows, col.targets, _to_square_tensor)
    assert len(dataset) == 3
    image, target = dataset[0]
    assert image.shape == (3, 10, 10)
    assert target.dtype == torch.float32
    assert target.tolist() == col.targets[4].toarray().ravel().astype(float).tolist()
    assert dataset[2][1].tolist() == [0, 0, 0, 1, 0, 1]


def test_without_transform_items_are_unit_range_chw(good_folder):
    col = load_collection(good_folder, progress=False)
    cache = ImageCache.build(col, short_side=12, progress=False)
    image, _ = ImageDataset(cache, [3], col.targets)[0]
    assert image.shape == (3, 12, 38)
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0


def test_loader_batches_items_in_worker_processes(good_folder):
    col = load_collection(good_folder, progress=False)
    cache = ImageCache.build(col, short_side=12, progress=False)
    dataset = ImageDataset(cache, np.arange(8), col.targets, _to_square_tensor)
    loader = DataLoader(dataset, batch_size=4, num_workers=1)
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(4, 3, 10, 10)] * 2
    targets = torch.cat([b[1] for b in batches])
    np.testing.assert_array_equal(targets.numpy(), col.targets.toarray())
