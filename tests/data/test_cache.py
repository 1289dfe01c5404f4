"""The image cache: same pixels as a direct decode, rebuilt when sources change."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from PIL import Image

from imet.data import ImageCache, ImageError, SourceImages, load_collection
from imet.data import cache as cache_module
from tests.data.conftest import gradient_image, write_folder


def _direct(path, short_side):
    """Decode and resize with PIL alone, as the cache promises to."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    width, height = rgb.size
    if width <= height:
        size = (short_side, round(height * short_side / width))
    else:
        size = (round(width * short_side / height), short_side)
    return rgb.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


@pytest.fixture
def count_decodes(monkeypatch):
    calls = []
    original = cache_module._decode

    def counting(path, **kwargs):
        calls.append(path.name)
        return original(path, **kwargs)

    monkeypatch.setattr(cache_module, "_decode", counting)
    return calls


def test_cached_pixels_equal_a_direct_decode_and_resize(good_folder):
    col = load_collection(good_folder, progress=False)
    cache = ImageCache.build(col, short_side=16, progress=False)
    assert cache.directory == good_folder / ".imet-cache" / "s16"
    for row, path in enumerate(col.paths):
        cached = cache.get(row)
        assert cached.mode == "RGB"
        assert min(cached.size) == 16
        np.testing.assert_array_equal(np.asarray(cached), np.asarray(_direct(path, 16)))


def test_cached_jpeg_equals_the_uncached_reader(tmp_path):
    images = {"x.jpg": gradient_image(200, 120), "y.jpg": gradient_image(90, 300)}
    folder = write_folder(tmp_path, [("x", "0"), ("y", "1")], images)
    col = load_collection(folder, progress=False)
    cache = ImageCache.build(col, short_side=24, progress=False)
    source = SourceImages(col, short_side=24)
    for row in range(2):
        np.testing.assert_array_equal(
            np.asarray(cache.get(row)), np.asarray(source.get(row))
        )
    assert cache.get(0).size == (40, 24) and cache.get(1).size == (24, 80)


def test_unchanged_sources_are_not_decoded_again(good_folder, count_decodes):
    col = load_collection(good_folder, progress=False)
    ImageCache.build(col, short_side=12, progress=False)
    assert len(count_decodes) == 8
    ImageCache.build(col, short_side=12, progress=False)
    assert len(count_decodes) == 8


def test_changed_source_is_rebuilt_and_only_it(good_folder, count_decodes):
    col = load_collection(good_folder, progress=False)
    before = ImageCache.build(col, short_side=12, progress=False)
    old_pixels = np.asarray(before.get(3)).copy()
    path = col.paths[2]
    Image.new("RGB", (30, 60), (9, 200, 30)).save(path)
    os.utime(path, ns=(1, 1))  # a distinct mtime even on coarse clocks
    count_decodes.clear()
    after = ImageCache.build(col, short_side=12, progress=False)
    assert count_decodes == [path.name]
    assert np.asarray(after.get(2))[0, 0].tolist() == [9, 200, 30]
    assert after.get(2).size == (12, 24)
    np.testing.assert_array_equal(np.asarray(after.get(3)), old_pixels)
    assert len(list(after.directory.glob("pixels-*.u8"))) == 1  # old file gone


def test_other_size_is_a_separate_cache(good_folder, count_decodes):
    col = load_collection(good_folder, progress=False)
    ImageCache.build(col, short_side=12, progress=False)
    ImageCache.build(col, short_side=20, progress=False)
    assert len(count_decodes) == 16
    assert min(ImageCache.build(col, short_side=12, progress=False).get(0).size) == 12


def test_incomplete_pixel_file_triggers_a_rebuild(good_folder, count_decodes):
    col = load_collection(good_folder, progress=False)
    cache = ImageCache.build(col, short_side=12, progress=False)
    pixels = next(cache.directory.glob("pixels-*.u8"))
    pixels.write_bytes(pixels.read_bytes()[:100])
    count_decodes.clear()
    rebuilt = ImageCache.build(col, short_side=12, progress=False)
    assert len(count_decodes) == 8
    np.testing.assert_array_equal(
        np.asarray(rebuilt.get(7)), np.asarray(_direct(col.paths[7], 12))
    )


def test_undecodable_image_raises_on_get_only(tmp_path):
    images = {"x": gradient_image(20, 20), "y": b"not an image"}
    folder = write_folder(tmp_path, [("x", "0"), ("y", "1")], images)
    col = load_collection(folder, check_images=False, progress=False)
    cache = ImageCache.build(col, short_side=10, progress=False)
    assert cache.get(0).size == (10, 10)
    with pytest.raises(ImageError, match="y.png"):
        cache.get(1)


def test_read_only_data_folder_caches_in_user_cache(good_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    real = cache_module.is_writable
    monkeypatch.setattr(
        cache_module,
        "is_writable",
        lambda d: good_folder not in d.parents and real(d),
    )
    col = load_collection(good_folder, progress=False)
    cache = ImageCache.build(col, short_side=12, progress=False)
    assert (tmp_path / "xdg" / "imet") in cache.directory.parents
    assert not (good_folder / ".imet-cache").exists()


def test_pickled_cache_reads_the_same_images(good_folder):
    col = load_collection(good_folder, progress=False)
    cache = ImageCache.build(col, short_side=12, progress=False)
    cache.get(0)  # opens the memory map, which must not be pickled
    clone = pickle.loads(pickle.dumps(cache))
    np.testing.assert_array_equal(np.asarray(clone.get(5)), np.asarray(cache.get(5)))


def test_parallel_build_equals_serial_build(good_folder, tmp_path):
    col = load_collection(good_folder, progress=False)
    serial = ImageCache.build(
        col, short_side=12, cache_dir=tmp_path / "one", progress=False, workers=1
    )
    parallel = ImageCache.build(
        col, short_side=12, cache_dir=tmp_path / "two", progress=False, workers=2
    )
    for row in range(len(col)):
        np.testing.assert_array_equal(
            np.asarray(serial.get(row)), np.asarray(parallel.get(row))
        )


def test_source_images_without_size_give_full_resolution(good_folder):
    col = load_collection(good_folder, progress=False)
    assert SourceImages(col).get(3).size == (64, 20)
