"""The torch view of a collection: (image tensor, label vector) pairs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import scipy.sparse
import torch
from PIL import Image
from torch.utils.data import Dataset


class ImageSource(Protocol):
    """Anything with ``get(row) -> PIL RGB image``: ImageCache, SourceImages."""

    def get(self, row: int) -> Image.Image: ...


class ImageDataset(Dataset):
    """Item i is image ``rows[i]`` of ``images`` through ``transform`` and its
    row of ``targets`` (the collection's full label matrix) as float32."""

    def __init__(
        self,
        images: ImageSource,
        rows: Sequence[int] | np.ndarray,
        targets: scipy.sparse.spmatrix,
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
    ):
        self.images = images
        self.rows = np.asarray(rows, dtype=np.int64)  # (N,) collection rows
        self.targets = scipy.sparse.csr_matrix(targets)  # (n_images, L)
        self.transform = transform
        if len(self.rows) and self.rows.max() >= self.targets.shape[0]:
            raise IndexError(
                f"row {self.rows.max()} is past the {self.targets.shape[0]} "
                "rows of targets"
            )

    def __len__(self) -> int:
        return len(self.rows)

    def target(self, i: int) -> torch.Tensor:
        """The (L,) float32 0/1 label vector of item ``i``."""
        row = self.rows[i]
        start, end = self.targets.indptr[row], self.targets.indptr[row + 1]
        vector = np.zeros(self.targets.shape[1], dtype=np.float32)  # (L,)
        vector[self.targets.indices[start:end]] = self.targets.data[start:end]
        return torch.from_numpy(vector)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images.get(int(self.rows[i]))
        if self.transform is None:
            # (3, H, W) in [0, 1], for callers that resize elsewhere.
            pixels = torch.from_numpy(np.array(image, dtype=np.uint8))
            tensor: Any = pixels.permute(2, 0, 1).float() / 255
        else:
            tensor = self.transform(image)
        return tensor, self.target(i)
