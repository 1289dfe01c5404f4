"""The iMet reader on good folders, damaged folders and awkward images."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imet.data
from imet.data import (
    DataError,
    ImageError,
    load_collection,
    open_image,
)
from imet.data.check import ProblemReport
from imet.data.reader import check_image, read_labels, to_rgb
from tests.data.conftest import LABELS, gradient_image, write_folder

# The published iMet 2020 vocabulary, shipped inside the package.
REAL_LABELS = Path(imet.data.__file__).with_name("imet2020_labels.csv")


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


# ---------------------------------------------------------------- vocabulary


def test_real_2020_vocabulary_loads_exactly():
    labels = read_labels(REAL_LABELS, ProblemReport())
    assert len(labels) == 3474
    assert labels.category_counts() == {
        "country": 100,
        "culture": 681,
        "dimension": 5,
        "medium": 1920,
        "tags": 768,
    }
    assert labels.names[labels.column_of[786]] == 'medium::"tinned" surface'
    assert labels.names[labels.column_of[2066]] == (
        'medium::plant remains ("balanites aegyptiaca")'
    )
    assert labels.ids.dtype == np.int64
    assert list(labels.ids) == sorted(labels.column_of)


def test_2019_vocabulary_has_culture_and_tag_categories(tmp_path):
    labels = [(i, f"culture::c{i}") for i in range(398)]
    labels += [(398 + i, f"tag::t{i}") for i in range(705)]
    folder = write_folder(
        tmp_path, [("x", "0 398")], {"x": gradient_image(8, 8)}, labels=labels
    )
    col = load_collection(folder, progress=False)
    assert len(col.labels) == 1103
    assert col.labels.category_counts() == {"culture": 398, "tag": 705}
    assert col.targets[0].nonzero()[1].tolist() == [0, 398]


def test_names_with_quotes_commas_semicolons_parentheses_round_trip(good_folder):
    col = load_collection(good_folder, progress=False)
    assert col.labels.names == [name for _, name in LABELS]
    assert col.labels.categories == [
        "country",
        "culture",
        "medium",
        "medium",
        "tags",
        "dimension",
    ]


def test_label_without_category_is_reported_as_other(tmp_path):
    folder = write_folder(
        tmp_path, [("x", "0")], {"x": gradient_image(8, 8)}, labels=[(0, "plain")]
    )
    col = load_collection(folder, progress=False)
    assert col.labels.categories == ["other"]
    assert col.problems.count("labels_no_category") == 1


def test_same_name_under_two_ids_is_kept_and_reported(tmp_path):
    labels = [(0, "tags::cats"), (1, "tags::cats")]
    folder = write_folder(
        tmp_path, [("x", "0 1")], {"x": gradient_image(8, 8)}, labels=labels
    )
    col = load_collection(folder, progress=False)
    assert len(col.labels) == 2
    assert col.problems.examples["duplicate_label_name"] == [
        "'tags::cats': ids 0 and 1"
    ]


def test_problem_report_counts_all_and_keeps_five_examples():
    report = ProblemReport()
    for k in range(8):
        report.add("missing_image", f"img{k}")
    report.add("unknown_label", "label id 9 on image a", count=1)
    assert report.count("missing_image") == 8
    assert report.examples["missing_image"] == [f"img{k}" for k in range(5)]
    lines = report.summary_lines()
    assert lines[0].split()[:2] == ["1", "unknown_label:"]
    assert lines[2].split()[:2] == ["8", "missing_image:"]
    assert report.to_dict()["problems"]["missing_image"]["count"] == 8
    with pytest.raises(KeyError):
        report.add("not_a_kind")


# ---------------------------------------------------------------- CSV rows


def test_good_folder_gives_row_aligned_sparse_targets(good_folder):
    col = load_collection(good_folder, progress=False)
    assert col.ids == [f"a{i}" for i in range(8)]
    assert [p.name for p in col.paths] == [f"a{i}.png" for i in range(8)]
    assert col.targets.shape == (8, 6)
    assert col.targets.dtype == np.uint8
    assert col.targets[0].nonzero()[1].tolist() == [0, 1, 2]
    assert col.targets[4].nonzero()[1].tolist() == [0, 4, 5]
    assert int(col.targets.sum()) == 17
    assert not col.problems


def test_unknown_label_id_is_dropped_from_row_and_named(tmp_path):
    rows = [("x", "1 99 2"), ("y", "77")]
    images = {"x": gradient_image(8, 8), "y": gradient_image(8, 8)}
    col = load_collection(write_folder(tmp_path, rows, images), progress=False)
    assert col.ids == ["x", "y"]
    # x keeps its known labels only; nothing is mapped onto another column.
    assert col.targets[0].nonzero()[1].tolist() == [1, 2]
    assert col.targets[1].nnz == 0
    assert col.problems.count("unknown_label") == 2
    assert any("99" in e for e in col.problems.examples["unknown_label"])
    assert col.problems.count("no_labels") == 1


def test_row_without_labels_is_kept_as_all_zero_and_counted(tmp_path):
    rows = [("x", ""), ("y", "0")]
    images = {"x": gradient_image(8, 8), "y": gradient_image(8, 8)}
    col = load_collection(write_folder(tmp_path, rows, images), progress=False)
    assert col.ids == ["x", "y"]
    assert col.targets[0].nnz == 0
    assert col.problems.count("no_labels") == 1
    assert col.problems.examples["no_labels"] == ["x"]


def test_duplicate_id_with_same_labels_keeps_first(tmp_path):
    rows = [("x", "0 1"), ("y", "2"), ("x", "1 0")]
    images = {"x": gradient_image(8, 8), "y": gradient_image(8, 8)}
    col = load_collection(write_folder(tmp_path, rows, images), progress=False)
    assert col.ids == ["x", "y"]
    assert col.problems.count("duplicate_id") == 1


def test_conflicting_duplicate_id_is_skipped_not_merged(tmp_path):
    rows = [("x", "0 1"), ("y", "2"), ("x", "3")]
    images = {"x": gradient_image(8, 8), "y": gradient_image(8, 8)}
    col = load_collection(write_folder(tmp_path, rows, images), progress=False)
    assert col.ids == ["y"]
    assert col.problems.count("conflicting_duplicate") == 1
    assert "x" in col.problems.examples["conflicting_duplicate"][0]


def test_repeated_label_in_row_counts_once(tmp_path):
    folder = write_folder(tmp_path, [("x", "2 2 1")], {"x": gradient_image(8, 8)})
    col = load_collection(folder, progress=False)
    assert col.targets[0].toarray().tolist() == [[0, 1, 1, 0, 0, 0]]
    assert col.problems.count("repeated_label") == 1


def test_wrong_train_header_is_a_clear_error_on_line_1(tmp_path):
    folder = write_folder(tmp_path, [("x", "0")], {"x": gradient_image(8, 8)})
    (folder / "train.csv").write_text("image,labels\nx,0\n")
    with pytest.raises(DataError, match=r"train.csv: line 1: expected the header"):
        load_collection(folder, progress=False)


def test_non_integer_label_id_names_its_line(tmp_path):
    folder = write_folder(tmp_path, [("x", "0"), ("y", "1 two")], {})
    with pytest.raises(DataError, match=r"line 3: attribute id 'two' is not an"):
        load_collection(folder, progress=False)


def test_non_integer_attribute_id_in_labels_csv_names_its_line(tmp_path):
    folder = write_folder(tmp_path, [("x", "0")], {"x": gradient_image(8, 8)})
    (folder / "labels.csv").write_text(
        "attribute_id,attribute_name\n0,culture::a\nseven,culture::b\n"
    )
    with pytest.raises(DataError, match=r"labels.csv: line 3: attribute_id"):
        load_collection(folder, progress=False)


def test_duplicate_attribute_id_in_labels_csv_is_an_error(tmp_path):
    folder = write_folder(
        tmp_path,
        [("x", "0")],
        {"x": gradient_image(8, 8)},
        labels=[(0, "culture::a"), (0, "culture::b")],
    )
    with pytest.raises(DataError, match="already defined on line 2"):
        load_collection(folder, progress=False)


def test_missing_labels_csv_is_fatal_with_reason(tmp_path):
    folder = write_folder(tmp_path, [("x", "0")], {"x": gradient_image(8, 8)})
    (folder / "labels.csv").unlink()
    with pytest.raises(DataError) as caught:
        load_collection(folder, progress=False)
    assert caught.value.problems.fatal == [f"labels.csv not found in {folder}"]


def test_folder_with_no_usable_image_is_fatal_and_keeps_the_report(tmp_path):
    folder = write_folder(tmp_path, [("x", "0"), ("y", "1")], {"x": b""})
    with pytest.raises(DataError, match="no usable images") as caught:
        load_collection(folder, progress=False)
    problems = caught.value.problems
    assert problems.count("empty_file") == 1
    assert problems.count("missing_image") == 1


# ---------------------------------------------------------------- image files


def test_missing_image_row_is_skipped_and_counted(tmp_path):
    rows = [("x", "0"), ("gone", "1")]
    folder = write_folder(tmp_path, rows, {"x": gradient_image(8, 8)})
    col = load_collection(folder, progress=False)
    assert col.ids == ["x"]
    assert col.problems.count("missing_image") == 1
    assert "gone" in col.problems.examples["missing_image"][0]


def test_jpg_and_jpeg_files_are_found(tmp_path):
    rows = [("x", "0"), ("y", "1")]
    images = {"x.jpg": gradient_image(16, 16), "y.JPEG": gradient_image(16, 16)}
    col = load_collection(write_folder(tmp_path, rows, images), progress=False)
    assert [p.name for p in col.paths] == ["x.jpg", "y.JPEG"]


def test_png_and_jpg_for_one_id_uses_png_and_reports(tmp_path):
    images = {"x.jpg": gradient_image(16, 16), "x.png": gradient_image(16, 16)}
    col = load_collection(write_folder(tmp_path, [("x", "0")], images), progress=False)
    assert col.paths[0].name == "x.png"
    assert col.problems.count("ambiguous_image") == 1


def test_image_without_csv_row_is_counted_as_unlisted(tmp_path):
    images = {"x": gradient_image(8, 8), "stray": gradient_image(8, 8)}
    col = load_collection(write_folder(tmp_path, [("x", "0")], images), progress=False)
    assert col.ids == ["x"]
    assert col.problems.examples["unlisted_image"] == ["stray.png"]


def test_empty_file_is_excluded_as_empty(tmp_path):
    images = {"x": gradient_image(8, 8), "y": b""}
    folder = write_folder(tmp_path, [("x", "0"), ("y", "1")], images)
    col = load_collection(folder, progress=False)
    assert col.ids == ["x"]
    assert col.problems.count("empty_file") == 1


def test_text_file_named_png_is_excluded_as_unreadable(tmp_path):
    images = {"x": gradient_image(8, 8), "y": b"id,attribute_ids\nnot an image\n"}
    folder = write_folder(tmp_path, [("x", "0"), ("y", "1")], images)
    col = load_collection(folder, progress=False)
    assert col.ids == ["x"]
    assert col.problems.count("unreadable_image") == 1
    with pytest.raises(ImageError, match="not an image"):
        open_image(folder / "train/y.png")


def test_truncated_jpeg_is_excluded_by_the_cheap_check(tmp_path):
    full = _jpeg_bytes(gradient_image(256, 192))
    images = {"x": gradient_image(8, 8), "y.jpg": full[: len(full) // 2]}
    folder = write_folder(tmp_path, [("x", "0"), ("y", "1")], images)
    col = load_collection(folder, progress=False)
    assert col.ids == ["x"]
    assert col.problems.count("unreadable_image") == 1
    assert "truncated" in col.problems.examples["unreadable_image"][0]


def test_truncated_png_is_excluded(tmp_path):
    full = _png_bytes(gradient_image(64, 64))
    images = {"x": gradient_image(8, 8), "y": full[: len(full) - 30]}
    folder = write_folder(tmp_path, [("x", "0"), ("y", "1")], images)
    col = load_collection(folder, progress=False)
    assert col.ids == ["x"]
    assert col.problems.count("unreadable_image") == 1


def test_unchecked_collection_keeps_broken_files_for_later(tmp_path):
    images = {"x": gradient_image(8, 8), "y": b"junk"}
    folder = write_folder(tmp_path, [("x", "0"), ("y", "1")], images)
    col = load_collection(folder, check_images=False, progress=False)
    assert col.ids == ["x", "y"]


def test_image_over_pixel_limit_is_refused_and_counted(tmp_path):
    images = {"small": gradient_image(10, 10), "big": gradient_image(40, 30)}
    folder = write_folder(tmp_path, [("small", "0"), ("big", "1")], images)
    col = load_collection(folder, progress=False, max_pixels=500)
    assert col.ids == ["small"]
    assert col.problems.count("too_large") == 1
    assert col.problems.examples["too_large"] == [
        "big.png: 40x30 = 1,200 pixels, above the limit of 500 (max_pixels)"
    ]
    with pytest.raises(ImageError, match="above the limit") as caught:
        open_image(folder / "train/big.png", max_pixels=500)
    assert caught.value.kind == "too_large"


def test_pil_decompression_bomb_error_becomes_image_error(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    gradient_image(40, 30).save(path)
    # PIL raises its own error above twice its global limit.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageError) as caught:
        open_image(path, max_pixels=10**9)
    assert caught.value.kind == "too_large"


def test_pil_decompression_bomb_warning_does_not_escape(tmp_path, monkeypatch):
    path = tmp_path / "near.png"
    gradient_image(30, 5).save(path)  # 150 pixels: above PIL's 100, below 200
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = open_image(path, max_pixels=10**9)
        check_image(path, max_pixels=10**9)
    assert image.size == (30, 5)


def test_parallel_check_matches_serial_check(tmp_path):
    rows = [(f"i{k}", "0") for k in range(6)]
    images = {f"i{k}": gradient_image(8 + k, 8) for k in range(5)}
    images["i5"] = b"broken"
    folder = write_folder(tmp_path, rows, images)
    serial = load_collection(folder, progress=False, workers=1)
    parallel = load_collection(folder, progress=False, workers=2)
    assert serial.ids == parallel.ids == [f"i{k}" for k in range(5)]
    assert parallel.problems.counts == serial.problems.counts


# ---------------------------------------------------------------- colour modes


def test_grayscale_image_becomes_rgb_with_equal_channels(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    path = tmp_path / "g.png"
    Image.fromarray(gray).save(path)
    rgb = np.asarray(open_image(path))
    assert rgb.shape == (8, 8, 3)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], gray)


def test_palette_image_becomes_its_palette_colours(tmp_path):
    image = Image.new("P", (4, 2))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putdata([0, 1, 0, 1, 1, 0, 1, 0])
    path = tmp_path / "p.png"
    image.save(path)
    rgb = np.asarray(open_image(path))
    assert rgb[0, 0].tolist() == [255, 0, 0]
    assert rgb[0, 1].tolist() == [0, 0, 255]


def test_palette_transparency_becomes_white(tmp_path):
    image = Image.new("P", (2, 1))
    image.putpalette([10, 20, 30, 200, 0, 0] + [0] * 762)
    image.putdata([0, 1])
    path = tmp_path / "pt.png"
    image.save(path, transparency=0)
    rgb = np.asarray(open_image(path))
    assert rgb[0, 0].tolist() == [255, 255, 255]
    assert rgb[0, 1].tolist() == [200, 0, 0]


def test_rgba_is_composited_over_white(tmp_path):
    pixels = np.array(
        [[[0, 0, 0, 0], [255, 0, 0, 255], [0, 0, 255, 128]]], dtype=np.uint8
    )
    path = tmp_path / "a.png"
    Image.fromarray(pixels).save(path)
    rgb = np.asarray(open_image(path)).astype(int)
    assert rgb[0, 0].tolist() == [255, 255, 255]  # fully transparent black
    assert rgb[0, 1].tolist() == [255, 0, 0]
    assert abs(rgb[0, 2, 0] - 127) <= 1 and rgb[0, 2, 2] == 255  # half blue


def test_gray_with_alpha_is_composited_over_white(tmp_path):
    pixels = np.array([[[0, 0], [0, 255]]], dtype=np.uint8)  # (1, 2, LA)
    path = tmp_path / "la.png"
    Image.frombytes("LA", (2, 1), pixels.tobytes()).save(path)
    rgb = np.asarray(open_image(path))
    assert rgb[0, 0].tolist() == [255, 255, 255]
    assert rgb[0, 1].tolist() == [0, 0, 0]


def test_cmyk_jpeg_becomes_the_right_rgb(tmp_path):
    # Pure cyan+yellow ink on one half, magenta+yellow on the other.
    cmyk = Image.new("CMYK", (16, 16), (255, 0, 255, 0))
    cmyk.paste((0, 255, 255, 0), (8, 0, 16, 16))
    path = tmp_path / "c.jpg"
    cmyk.save(path, quality=95)
    with Image.open(path) as opened:
        assert opened.mode == "CMYK"
    rgb = np.asarray(open_image(path)).astype(int)
    np.testing.assert_allclose(rgb[8, 2], [0, 255, 0], atol=12)  # green
    np.testing.assert_allclose(rgb[8, 13], [255, 0, 0], atol=12)  # red


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 1000, 32768, 65535]], dtype=np.uint16)
    path = tmp_path / "sixteen.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as opened:
        assert opened.mode.startswith("I")
    rgb = np.asarray(open_image(path))
    assert rgb[0, :, 0].tolist() == [0, 4, 128, 255]
    assert (rgb[..., 0] == rgb[..., 2]).all()


def test_32_bit_integer_and_float_images_are_scaled():
    ints = Image.fromarray(np.array([[0, 65535]], dtype=np.int32))
    assert ints.mode == "I"
    assert np.asarray(to_rgb(ints))[0, :, 0].tolist() == [0, 255]
    wide = Image.fromarray(np.array([[-10, 10**6]], dtype=np.int32))
    assert np.asarray(to_rgb(wide))[0, :, 0].tolist() == [0, 255]
    floats = Image.fromarray(np.array([[0.25, 0.5, 0.75]], dtype=np.float32))
    assert floats.mode == "F"
    assert np.asarray(to_rgb(floats))[0, :, 0].tolist() == [0, 128, 255]


def test_exif_rotated_jpeg_is_upright(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    gradient_image(40, 20).save(path, exif=exif)
    assert open_image(path).size == (20, 40)


def test_open_image_short_side_resizes_both_orientations(tmp_path):
    gradient_image(90, 60).save(tmp_path / "wide.png")
    (tmp_path / "tall.jpg").write_bytes(_jpeg_bytes(gradient_image(60, 120)))
    assert open_image(tmp_path / "wide.png", short_side=30).size == (45, 30)
    assert open_image(tmp_path / "tall.jpg", short_side=15).size == (15, 30)
    assert open_image(tmp_path / "wide.png", short_side=120).size == (180, 120)
