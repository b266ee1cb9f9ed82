"""AdaIN and WCT feature transforms against hand-computed statistics, on tiny tensors."""

import torch

from painterly.transforms import Moments, WctMap, adain, by_regions, whitening_matrix, wct


def _features(seed, c=4, h=6, w=7, scale=None):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, c, h, w, generator=g, dtype=torch.float64)
    if scale is not None:
        x = x * torch.tensor(scale, dtype=torch.float64).view(1, -1, 1, 1)
    return x + torch.arange(c, dtype=torch.float64).view(1, -1, 1, 1)


def _cov(x):
    flat = x.reshape(x.shape[1], -1)
    centred = flat - flat.mean(1, keepdim=True)
    return centred @ centred.T / flat.shape[1]


def test_moments_match_torch_and_accumulate_over_pieces():
    x = _features(0)
    whole = Moments.of(x, full=True)
    pieces = Moments.of(x[..., :3], full=True).merged(Moments.of(x[..., 3:], full=True))
    assert torch.allclose(whole.mean, x.mean((0, 2, 3)))
    assert torch.allclose(whole.variance, x.var((0, 2, 3), unbiased=False))
    assert torch.allclose(whole.covariance, _cov(x))
    assert torch.allclose(pieces.covariance, whole.covariance) and torch.allclose(pieces.mean, whole.mean)
    mask = torch.zeros(6, 7, dtype=torch.bool)
    mask[:, :3] = True
    assert torch.allclose(Moments.of(x, mask).mean, x[..., :3].mean((0, 2, 3)))


def test_adain_output_takes_the_style_mean_and_std_per_channel():
    content, style = _features(1).float(), _features(2, scale=[0.5, 2.0, 3.0, 0.1]).float()
    out = adain(content, Moments.of(content), Moments.of(style))
    assert torch.allclose(out.mean((0, 2, 3)), style.mean((0, 2, 3)), atol=1e-4)
    assert torch.allclose(out.std((0, 2, 3), unbiased=False), style.std((0, 2, 3), unbiased=False), atol=1e-3)
    assert torch.equal(adain(content, Moments.of(content), Moments.of(style), strength=0.0), content)
    half = adain(content, Moments.of(content), Moments.of(style), strength=0.5)
    assert torch.allclose(half, (content + out) / 2, atol=1e-6)


def test_wct_gives_exactly_the_style_covariance_and_whitening_gives_the_identity():
    content, style = _features(3), _features(4, scale=[3.0, 1.0, 0.2, 2.0])
    style = style + 0.8 * style[:, :1]  # correlated channels
    cm, sm = Moments.of(content, full=True), Moments.of(style, full=True)
    white = whitening_matrix(cm.covariance)
    assert torch.allclose(white @ cm.covariance @ white.T, torch.eye(4, dtype=torch.float64), atol=1e-9)
    out = wct(content.float(), WctMap.between(cm, sm)).double()
    assert torch.allclose(_cov(out), _cov(style), atol=1e-4)
    assert torch.allclose(out.mean((0, 2, 3)), style.mean((0, 2, 3)), atol=1e-5)
    assert torch.equal(wct(content.float(), WctMap.between(cm, sm), strength=0.0), content.float())


def test_wct_with_rank_deficient_and_flat_styles_is_finite_and_exact():
    content = _features(5)
    # a style whose 4 channels span only 2 directions
    base = _features(6, c=2)
    style = torch.cat([base, 2 * base[:, :1], base[:, :1] - base[:, 1:]], dim=1)
    out = wct(content.float(), WctMap.between(Moments.of(content, full=True), Moments.of(style, full=True))).double()
    assert torch.isfinite(out).all()
    assert torch.allclose(_cov(out), _cov(style), atol=1e-4)
    # a flat-colour style: zero covariance -> every position becomes the style's colour
    flat = torch.full((1, 4, 5, 5), 0.3, dtype=torch.float64)
    out = wct(content.float(), WctMap.between(Moments.of(content, full=True), Moments.of(flat, full=True)))
    assert torch.isfinite(out).all() and torch.allclose(out, torch.full_like(out, 0.3), atol=1e-6)
    # a one-colour content region: whitening drops everything, the output is the style mean
    one = torch.full((1, 4, 3, 3), 2.0, dtype=torch.float64)
    out = wct(one.float(), WctMap.between(Moments.of(one, full=True), Moments.of(style, full=True)))
    assert torch.isfinite(out).all() and torch.allclose(out.mean((0, 2, 3)).double(), style.mean((0, 2, 3)), atol=1e-5)
    # deterministic
    a = WctMap.between(Moments.of(content, full=True), Moments.of(style, full=True)).matrix
    b = WctMap.between(Moments.of(content, full=True), Moments.of(style, full=True)).matrix
    assert torch.equal(a, b)


def test_regions_keep_their_own_statistics():
    content = _features(7, h=4, w=8).float()
    styles = [_features(8).float() * 0.1, _features(9).float() * 3 + 5]
    left = torch.zeros(1, 1, 4, 8)
    left[..., :4] = 1
    masks = [left, 1 - left]
    out = by_regions(content, masks, lambda x, r: adain(x, Moments.of(content, masks[r]), Moments.of(styles[r])))
    for r, part in enumerate((out[..., :4], out[..., 4:])):
        assert torch.allclose(part.mean((0, 2, 3)), styles[r].mean((0, 2, 3)), atol=1e-3)
        assert torch.allclose(part.std((0, 2, 3), unbiased=False), styles[r].std((0, 2, 3), unbiased=False), atol=1e-2)
