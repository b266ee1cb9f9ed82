"""Colour: YIQ conversions, luminance-only transfer and colour-statistics matching."""

import torch

from painterly.image import match_color, rgb_to_yiq, transfer_luminance, yiq_to_rgb


def _mid_range(seed, shape=(1, 3, 12, 10), lo=0.3, hi=0.7, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return (lo + (hi - lo) * torch.rand(*shape, generator=gen)).to(dtype)


def _channel_stats(image):
    flat = image[0].reshape(3, -1).double()
    return flat.mean(1), torch.cov(flat)


# --- YIQ ---------------------------------------------------------------------------------------


def test_yiq_round_trip_float64():
    x = torch.rand(2, 3, 5, 4, dtype=torch.float64)
    torch.testing.assert_close(yiq_to_rgb(rgb_to_yiq(x)), x, rtol=0, atol=1e-12)
    y = torch.randn(1, 3, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(rgb_to_yiq(yiq_to_rgb(y)), y, rtol=0, atol=1e-12)


def test_yiq_round_trip_float32_and_dtype():
    x = torch.rand(1, 3, 6, 6)
    yiq = rgb_to_yiq(x)
    assert yiq.dtype == torch.float32 and yiq.shape == x.shape
    torch.testing.assert_close(yiq_to_rgb(yiq), x, rtol=0, atol=1e-5)


def test_yiq_known_values():
    grey = torch.full((1, 3, 1, 1), 0.6, dtype=torch.float64)
    # Greys have luminance equal to their value and no chroma.
    torch.testing.assert_close(rgb_to_yiq(grey).flatten(), torch.tensor([0.6, 0.0, 0.0], dtype=torch.float64),
                               rtol=0, atol=1e-6)
    red = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).view(1, 3, 1, 1)
    torch.testing.assert_close(rgb_to_yiq(red).flatten(), torch.tensor([0.299, 0.595716, 0.211456], dtype=torch.float64))
    blue = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).view(1, 3, 1, 1)
    torch.testing.assert_close(rgb_to_yiq(blue).flatten(), torch.tensor([0.114, -0.321263, 0.311135], dtype=torch.float64))


def test_yiq_is_linear():
    a, b = torch.rand(1, 3, 2, 2, dtype=torch.float64), torch.rand(1, 3, 2, 2, dtype=torch.float64)
    torch.testing.assert_close(rgb_to_yiq(2 * a + b), 2 * rgb_to_yiq(a) + rgb_to_yiq(b))


def test_yiq_gradcheck():
    x = torch.rand(1, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rgb_to_yiq, (x,))
    assert torch.autograd.gradcheck(yiq_to_rgb, (x,))


# --- transfer_luminance ------------------------------------------------------------------------


def test_transfer_luminance_keeps_content_chroma_and_stylised_luminance():
    stylised = _mid_range(0, lo=0.35, hi=0.65)
    content = _mid_range(1, lo=0.35, hi=0.65)
    out = transfer_luminance(stylised, content)
    assert out.shape == stylised.shape
    assert 0 < out.min() and out.max() < 1  # mid-range colours: nothing was clamped
    out_yiq, s_yiq, c_yiq = rgb_to_yiq(out), rgb_to_yiq(stylised), rgb_to_yiq(content)
    torch.testing.assert_close(out_yiq[:, 1:], c_yiq[:, 1:], rtol=0, atol=1e-3)
    torch.testing.assert_close(out_yiq[:, :1], s_yiq[:, :1], rtol=0, atol=1e-3)


def test_transfer_luminance_hand_computed_grey():
    # A grey stylised image over a grey content: the result is the stylised grey.
    stylised = torch.full((1, 3, 2, 2), 0.3)
    content = torch.full((1, 3, 2, 2), 0.8)
    torch.testing.assert_close(transfer_luminance(stylised, content), stylised, rtol=0, atol=1e-5)


def test_transfer_luminance_of_identical_images_is_identity():
    x = _mid_range(2)
    torch.testing.assert_close(transfer_luminance(x, x), x, rtol=0, atol=1e-5)


def test_transfer_luminance_resizes_content_and_clamps():
    stylised = _mid_range(3, shape=(1, 3, 8, 12))
    content = torch.rand(1, 3, 16, 24)
    out = transfer_luminance(stylised, content)
    assert out.shape == (1, 3, 8, 12)
    # Saturated chroma with extreme luminance leaves [0, 1]: the result is clamped.
    vivid = torch.zeros(1, 3, 4, 4)
    vivid[:, 0] = 1.0
    out = transfer_luminance(torch.ones(1, 3, 4, 4), vivid)
    assert out.min() >= 0 and out.max() <= 1


# --- match_color -------------------------------------------------------------------------------


def _correlated(seed, mixing, centre, n=24):
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(3, n * n, generator=gen, dtype=torch.float64) - 0.5
    pixels = torch.tensor(mixing, dtype=torch.float64) @ u + torch.tensor(centre, dtype=torch.float64).view(3, 1)
    return pixels.reshape(1, 3, n, n).float()


def test_match_color_gives_reference_mean_and_covariance():
    source = _correlated(0, [[0.3, 0.05, 0.0], [0.1, 0.25, 0.05], [0.0, 0.1, 0.2]], [0.4, 0.45, 0.5])
    reference = _correlated(1, [[0.2, 0.0, 0.1], [0.05, 0.3, 0.0], [0.1, 0.05, 0.35]], [0.55, 0.5, 0.45])
    out = match_color(source, reference)
    assert out.shape == source.shape and out.dtype == source.dtype
    assert 0 < out.min() and out.max() < 1  # nothing clamped, so the statistics are exact
    mean_out, cov_out = _channel_stats(out)
    mean_ref, cov_ref = _channel_stats(reference)
    mean_src, cov_src = _channel_stats(source)
    torch.testing.assert_close(mean_out, mean_ref, rtol=0, atol=1e-4)
    torch.testing.assert_close(cov_out, cov_ref, rtol=0.01, atol=2e-5)
    assert (cov_src - cov_ref).abs().max() > 1e-3  # the test is not trivial


def test_match_color_random_images():
    torch.manual_seed(0)
    source = 0.3 + 0.3 * torch.rand(1, 3, 20, 20)
    reference = 0.4 + 0.2 * torch.rand(1, 3, 20, 20)
    reference[:, 1] = 0.5 * reference[:, 0] + 0.5 * reference[:, 1]  # correlated channels
    out = match_color(source, reference)
    assert 0 < out.min() and out.max() < 1
    mean_out, cov_out = _channel_stats(out)
    mean_ref, cov_ref = _channel_stats(reference)
    torch.testing.assert_close(mean_out, mean_ref, rtol=0, atol=1e-4)
    torch.testing.assert_close(cov_out, cov_ref, rtol=0.01, atol=2e-5)


def test_match_color_with_itself_is_identity():
    x = _mid_range(5)
    torch.testing.assert_close(match_color(x, x), x, rtol=0, atol=1e-3)


def test_match_color_keeps_structure_of_source():
    # It is a per-image affine map of colours: the spatial layout of the source is kept.
    source = _mid_range(6, shape=(1, 3, 8, 8))
    reference = _mid_range(7, shape=(1, 3, 16, 16), lo=0.45, hi=0.55)
    out = match_color(source, reference)
    assert out.shape == (1, 3, 8, 8)
    flat_s = source[0].reshape(3, -1)
    flat_o = out[0].reshape(3, -1)
    corr = torch.corrcoef(torch.cat([flat_s, flat_o]))[:3, 3:]
    assert torch.diagonal(corr).abs().min() > 0.5
