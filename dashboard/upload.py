"""Checking an uploaded image before any model sees it."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from PIL import Image

# Streamlit's own cap is server.maxUploadSize in .streamlit/config.toml; this
# one also holds where that file is not used (AppTest, other launchers).
MAX_MB = 10
FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG"}  # MPO: camera JPEGs


def read_image(name: str, data: bytes) -> tuple[Image.Image | None, str | None]:
    """The upload as an RGB image, or (None, a message saying what is wrong)."""
    from imet.data import ImageError, open_image

    if len(data) > MAX_MB * 1024 * 1024:
        return None, f"{name} is {len(data) / 2**20:.1f} MB; the limit is {MAX_MB} MB."
    if not data:
        return None, f"{name} is empty."
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind = probe.format
    except Exception:  # noqa: BLE001 - PIL raises many types for non-images
        return None, f"{name} is not an image. Upload a PNG or JPEG file."
    if kind not in FORMATS:
        return None, f"{name} is a {kind} image; upload a PNG or JPEG file."
    # Decode through the project's guarded reader (decompression-bomb limit).
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload.{FORMATS[kind].lower()}"
        path.write_bytes(data)
        try:
            return open_image(path), None
        except ImageError as err:
            return None, f"{name} could not be read: {err}"
