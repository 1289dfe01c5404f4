import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from imet.transforms import (
    MEAN,
    STD,
    CropBox,
    TrainAugmentConfig,
    TrainParams,
    TrainTransform,
    denormalize,
    eval_crop_box,
    eval_transform,
    gaussian_blur,
    gaussian_kernel,
    normalize,
    sample_blur_sigma,
    sample_crop,
    to_tensor,
    train_transform,
)

DRAWS = 4000


def _noise_image(width=96, height=64, seed=0, mode="RGB"):
    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    array = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    return Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode)


def _areas(width, height, generator, draws=DRAWS):
    boxes = [sample_crop(width, height, generator=generator) for _ in range(draws)]
    return np.array([b.width * b.height / (width * height) for b in boxes]), boxes


def _expected_area_cdf(x, attempts=10, area=(0.2, 1.0), ratio=(3 / 4, 4 / 3)):
    """CDF of the crop area fraction for a square image, ignoring pixel rounding.

    A draw (a, r) fits a square image when a * r <= 1 and a / r <= 1, i.e. when
    |log r| <= -log a; r is log-uniform, so the chance to fit is 1 for
    a <= min ratio and -log(a) / log(max ratio) above (symmetric range).
    """
    grid = np.linspace(area[0], area[1], 20001)
    fit = np.clip(-np.log(grid) / math.log(ratio[1]), 0.0, 1.0)
    density = fit / (area[1] - area[0])  # accepted-draw density per attempt
    cumulative = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2)])
    cumulative *= grid[1] - grid[0]
    p_fit = cumulative[-1]
    p_fallback = (1 - p_fit) ** attempts  # the whole (square) image
    cdf = np.interp(x, grid, cumulative / p_fit) * (1 - p_fallback)
    return np.where(x >= 1.0, 1.0, cdf)


def test_crop_area_fraction_stays_within_bounds_and_covers_range():
    g = torch.Generator().manual_seed(0)
    areas, boxes = _areas(300, 200, g)
    assert areas.min() >= 0.2
    assert areas.max() <= 1.0
    for b in boxes:
        assert b.left >= 0 and b.left + b.width <= 300
        assert b.top >= 0 and b.top + b.height <= 200
    # every quarter of the allowed range is used; large crops are rarer because
    # a 3:2 image holds no 4:3 crop above 89% of its area
    shares = np.histogram(areas, bins=np.linspace(0.2, 1.0, 5))[0] / DRAWS
    assert (shares[:3] > 0.15).all() and shares[3] > 0.01, shares
    assert areas.min() < 0.21 and areas.max() > 0.85


def test_crop_area_distribution_matches_rejection_sampling_model():
    g = torch.Generator().manual_seed(1)
    areas, _ = _areas(1000, 1000, g)
    sorted_areas = np.sort(areas)
    empirical = np.arange(1, DRAWS + 1) / DRAWS
    model = _expected_area_cdf(sorted_areas)
    below_one = sorted_areas < 0.999
    ks = np.abs(empirical - model)[below_one].max()
    # Kolmogorov-Smirnov distance; 1.95 / sqrt(n) is the 0.1% critical value
    assert ks < 1.95 / math.sqrt(DRAWS), ks


def test_crop_aspect_ratio_stays_in_range_on_ordinary_images():
    g = torch.Generator().manual_seed(2)
    _, boxes = _areas(400, 300, g)
    ratios = np.array([b.width / b.height for b in boxes])
    # sides are rounded up by at most one pixel
    assert ratios.min() > 3 / 4 - 0.02 and ratios.max() < 4 / 3 + 0.02
    assert np.log(ratios).std() > 0.1  # spread over the range, not fixed


def test_crop_positions_cover_the_whole_image():
    g = torch.Generator().manual_seed(3)
    _, boxes = _areas(400, 300, g)
    centres_x = np.array([b.left + b.width / 2 for b in boxes])
    assert centres_x.min() < 400 * 0.25 and centres_x.max() > 400 * 0.75


@pytest.mark.parametrize("size", [(2000, 100), (100, 2000), (31, 1)])
def test_crop_falls_back_to_centre_and_keeps_min_area_on_elongated_images(size):
    width, height = size
    g = torch.Generator().manual_seed(4)
    areas, boxes = _areas(width, height, g, draws=200)
    assert areas.min() >= 0.2
    for b in boxes:
        assert abs((b.left + b.width / 2) - width / 2) <= 1
        assert abs((b.top + b.height / 2) - height / 2) <= 1


def test_crop_falls_back_to_centre_when_no_attempts_allowed():
    box = sample_crop(300, 200, attempts=0)
    # 300 / 200 = 1.5 exceeds 4/3: full height, width clamped to the ratio
    assert box == CropBox(left=(300 - 267) // 2, top=0, width=267, height=200)


def test_blur_sigma_is_uniform_on_its_range():
    g = torch.Generator().manual_seed(5)
    sigmas = np.array([sample_blur_sigma(generator=g) for _ in range(DRAWS)])
    assert sigmas.min() >= 0.1 and sigmas.max() <= 1.0
    assert sigmas.min() < 0.11 and sigmas.max() > 0.99
    sorted_sigmas = np.sort(sigmas)
    uniform_cdf = (sorted_sigmas - 0.1) / 0.9
    ks = np.abs(np.arange(1, DRAWS + 1) / DRAWS - uniform_cdf).max()
    assert ks < 1.95 / math.sqrt(DRAWS), ks


def test_flip_and_blur_happen_about_half_the_time():
    transform = train_transform(32, generator=torch.Generator().manual_seed(6))
    params = [transform.sample(64, 48) for _ in range(DRAWS)]
    flips = np.mean([p.flip for p in params])
    blurs = np.array([p.blur_sigma for p in params if p.blur_sigma is not None])
    # 4 standard deviations of a binomial proportion at p = 0.5
    tolerance = 4 * 0.5 / math.sqrt(DRAWS)
    assert abs(flips - 0.5) < tolerance
    assert abs(len(blurs) / DRAWS - 0.5) < tolerance
    assert blurs.min() >= 0.1 and blurs.max() <= 1.0


def test_flip_and_blur_probabilities_follow_config():
    never = train_transform(32, flip_p=0.0, blur_p=0.0)
    always = train_transform(32, flip_p=1.0, blur_p=1.0)
    for _ in range(50):
        p = never.sample(64, 48)
        assert not p.flip and p.blur_sigma is None
        q = always.sample(64, 48)
        assert q.flip and q.blur_sigma is not None


def test_gaussian_kernel_is_5x5_normalised_and_symmetric():
    for sigma in (0.1, 0.5, 1.0):
        k = gaussian_kernel(sigma)
        assert k.shape == (5, 5) and k.dtype == torch.float32
        assert k.sum().item() == pytest.approx(1.0, abs=1e-6)
        assert torch.allclose(k, k.T)
        assert torch.allclose(k, k.flip(0)) and torch.allclose(k, k.flip(1))
        assert k[2, 2] == k.max()
    # a wider sigma spreads weight away from the centre
    assert gaussian_kernel(1.0)[2, 2] < gaussian_kernel(0.5)[2, 2] < 1.0
    assert gaussian_kernel(0.1)[2, 2] > 0.999


def test_blur_equals_convolution_with_the_2d_kernel():
    image = torch.rand(3, 12, 17, generator=torch.Generator().manual_seed(10))
    for sigma in (0.1, 0.6, 1.0):
        kernel = gaussian_kernel(sigma).expand(3, 1, 5, 5)
        padded = F.pad(image.unsqueeze(0), (2, 2, 2, 2), mode="reflect")
        reference = F.conv2d(padded, kernel, groups=3)[0]
        assert torch.allclose(gaussian_blur(image, sigma), reference, atol=1e-6)


def test_blur_keeps_constant_images_and_smooths_edges():
    flat = torch.full((3, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(flat, 1.0), flat, atol=1e-6)
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2
    checker = checker.float().expand(3, 16, 16)
    blurred = gaussian_blur(checker, 1.0)
    assert blurred.shape == checker.shape
    assert blurred.var() < 0.2 * checker.var()
    assert blurred.min() >= 0.0 and blurred.max() <= 1.0


def test_train_output_has_shape_dtype_and_range():
    transform = train_transform(48, generator=torch.Generator().manual_seed(7))
    image = _noise_image(120, 80)
    for _ in range(20):
        out = transform(image)
        assert out.shape == (3, 48, 48) and out.dtype == torch.float32
        assert out.min() >= -1.0 and out.max() <= 1.0
    black = transform(Image.new("RGB", (50, 70), (0, 0, 0)))
    white = transform(Image.new("RGB", (50, 70), (255, 255, 255)))
    assert torch.allclose(black, torch.full_like(black, -1.0), atol=1e-6)
    assert torch.allclose(white, torch.full_like(white, 1.0), atol=1e-6)


def test_train_is_reproducible_from_generator_and_global_seed():
    image = _noise_image()
    a = train_transform(32, generator=torch.Generator().manual_seed(8))
    b = train_transform(32, generator=torch.Generator().manual_seed(8))
    assert all(torch.equal(a(image), b(image)) for _ in range(5))
    # without a generator the global one is used (what DataLoader workers seed)
    unseeded = train_transform(32)
    torch.manual_seed(9)
    first = [unseeded(image) for _ in range(3)]
    torch.manual_seed(9)
    second = [unseeded(image) for _ in range(3)]
    assert all(torch.equal(x, y) for x, y in zip(first, second, strict=True))
    assert not torch.equal(first[0], first[1])


def test_apply_crops_flips_and_blurs_as_the_parameters_say():
    transform = TrainTransform(TrainAugmentConfig(image_size=16))
    image = _noise_image(40, 30)
    crop = CropBox(left=5, top=3, width=16, height=16)
    plain = transform.apply(image, TrainParams(crop, flip=False, blur_sigma=None))
    expected = normalize(to_tensor(image.crop((5, 3, 21, 19))))
    assert torch.allclose(plain, expected, atol=1e-6)
    flipped = transform.apply(image, TrainParams(crop, flip=True, blur_sigma=None))
    assert torch.equal(flipped, plain.flip(-1))
    blurred = transform.apply(image, TrainParams(crop, flip=False, blur_sigma=0.8))
    assert blurred.var() < plain.var()


def test_eval_is_deterministic_and_centred():
    transform = eval_transform(32)
    image = _noise_image(90, 60)
    out = transform(image)
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    assert torch.equal(out, transform(image))
    assert out.min() >= -1.0 and out.max() <= 1.0
    mirrored = transform(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    assert torch.allclose(mirrored, out.flip(-1), atol=1e-5)


def test_eval_crop_box_matches_resize_then_centre_crop():
    left, top, right, bottom = eval_crop_box(200, 100, crop_fraction=0.8)
    assert (right - left, bottom - top) == (80, 80)
    assert (left + right) / 2 == 100 and (top + bottom) / 2 == 50
    # with crop_fraction 1 and a square image, eval is a plain resize
    image = _noise_image(64, 64)
    out = eval_transform(32, crop_fraction=1.0)(image)
    resized = image.resize((32, 32), Image.Resampling.BILINEAR)
    assert torch.allclose(out, normalize(to_tensor(resized)), atol=1e-6)


def test_eval_keeps_only_the_centre():
    # a red frame outside the kept square must not reach the output
    image = Image.new("RGB", (100, 100), (255, 0, 0))
    image.paste((0, 0, 255), (5, 5, 95, 95))
    out = eval_transform(20, crop_fraction=0.8)(image)
    assert torch.allclose(out[2], torch.ones(20, 20), atol=1e-6)
    assert torch.allclose(out[0], -torch.ones(20, 20), atol=1e-6)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_non_rgb_inputs_become_three_channels(mode):
    gray = _noise_image(50, 40, mode="L")
    image = gray.convert(mode)
    for transform in (eval_transform(24), train_transform(24, blur_p=0.0)):
        torch.manual_seed(0)
        out = transform(image)
        torch.manual_seed(0)
        reference = transform(image.convert("RGB"))
        assert out.shape == (3, 24, 24)
        assert torch.equal(out, reference)
    channels = eval_transform(24)(gray)
    assert torch.equal(channels[0], channels[1]) and torch.equal(
        channels[1], channels[2]
    )


def test_normalize_and_denormalize_are_inverse():
    assert MEAN == STD == (0.5, 0.5, 0.5)
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(denormalize(normalize(x)), x, atol=1e-6)
    assert normalize(x).min() >= -1.0 and normalize(x).max() <= 1.0
    assert denormalize(torch.full((3, 2, 2), 5.0)).max() == 1.0


@pytest.mark.parametrize(
    "options",
    [
        {"crop_area": (0.0, 1.0)},
        {"crop_area": (0.5, 1.2)},
        {"crop_ratio": (2.0, 1.0)},
        {"blur_kernel": 4},
        {"flip_p": 1.5},
        {"blur_sigma": (-1.0, 1.0)},
    ],
)
def test_invalid_options_are_rejected(options):
    with pytest.raises(ValueError):
        train_transform(32, **options)


def test_invalid_eval_options_are_rejected():
    with pytest.raises(ValueError, match="crop_fraction"):
        eval_transform(32, crop_fraction=0.0)
    with pytest.raises(ValueError, match="image_size"):
        eval_transform(0)
