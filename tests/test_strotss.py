"""STROTSS: its losses against hand-computed values and gradcheck, the Laplacian pyramid, the
sampling, the config, and one short real-VGG run."""

from __future__ import annotations

import math

import pytest
import torch

from painterly import hypercolumns
from painterly.checkpoint import read_checkpoint
from painterly.driver import make_plan, run
from painterly.errors import PainterlyError
from painterly.guidance import region_pairs
from painterly.hypercolumns import StyleFeatures, StylePool, grid_positions, random_positions, sample_hypercolumns
from painterly.losses import functional as LF
from painterly.methods import strotss
from painterly.methods.strotss import STROTSS, StrotssConfig, StrotssObjective
from painterly.optimize import make_optimizer
from painterly.param import LaplacianPyramidImage, laplacian_pyramid, reconstruct_pyramid
from painterly.schedule import Scale, plan_from_json

from helpers import run_context, use_fake_clock

A = 1.0 - 1.0 / math.sqrt(2.0)  # cosine distance between (1, 0) and (1, 1)


def t(rows):
    return torch.tensor(rows, dtype=torch.float64)


# --- losses: hand values -------------------------------------------------------------------------

def test_cosine_distance_hand_values():
    d = LF.pairwise_cosine_distance(t([[1, 0], [0, 1]]), t([[1, 1], [-1, 0], [0, 3]]))
    assert torch.allclose(d, t([[A, 2, 1], [A, 1, 0]]))


def test_relaxed_emd_of_identical_sets_is_zero():
    x = torch.randn(7, 5, dtype=torch.float64)
    assert float(LF.remd_loss(x, x)) == pytest.approx(0.0, abs=1e-12)


def test_relaxed_emd_two_point_sets_hand_value():
    # Costs: x1-y1 = A, x1-y2 = 2, x2-y1 = A, x2-y2 = 1. Row minima A, A (mean A); column minima
    # A, 1 (mean (A + 1) / 2); the relaxed EMD is the larger one-sided term.
    x, y = t([[1, 0], [0, 1]]), t([[1, 1], [-1, 0]])
    assert float(LF.remd_loss(x, y)) == pytest.approx((A + 1) / 2, abs=1e-12)
    assert float(LF.remd_loss(y, x)) == pytest.approx((A + 1) / 2, abs=1e-12)  # symmetric
    assert float(LF.relaxed_emd(t([[0, 5], [3, 4]]))) == pytest.approx(max((0 + 3) / 2, (0 + 4) / 2))


def test_palette_loss_hand_value():
    # Red vs green: cosine distance 1, RMS distance sqrt(2/3); the colour basis is a rotation.
    x, y = t([[1, 0, 0]]), t([[0, 1, 0]])
    assert float(LF.palette_loss(x, y)) == pytest.approx(1 + math.sqrt(2 / 3), abs=1e-6)
    # Identical colours cost only the floor: the squared distance (a sum over the 3 channels) is
    # floored at 1e-5 before the division by 3, as in the original's clamp(dist, 1e-5) / d.
    same = torch.rand(4, 3, dtype=torch.float64) + 0.1
    assert float(LF.palette_loss(same, same)) == pytest.approx(math.sqrt(1e-5 / 3), abs=1e-9)
    close = t([[0.5, 0.5, 0.5]]), t([[0.5, 0.5, 0.501]])  # squared distance 1e-6 < 1e-5: floored
    assert float(LF.pairwise_euclidean_distance(*close)) == pytest.approx(math.sqrt(1e-5 / 3), abs=1e-12)
    far = t([[0.0, 0.0, 0.0]]), t([[0.0, 0.3, 0.4]])  # squared distance 0.25, mean 0.25 / 3
    assert float(LF.pairwise_euclidean_distance(*far)) == pytest.approx(math.sqrt(0.25 / 3), abs=1e-12)


def test_strotss_yuv_basis_is_orthonormal():
    basis = torch.tensor(LF.STROTSS_YUV, dtype=torch.float64)
    assert torch.allclose(basis @ basis.T, torch.eye(3, dtype=torch.float64), atol=1e-5)


def test_moment_loss_hand_values():
    # x: mean (1, 1), covariance [[1, 1], [1, 1]]; y: mean (1, 0), covariance 0.
    x, y = t([[0, 0], [2, 2]]), t([[1, 0], [1, 0]])
    assert float(LF.moment_loss(x, y)) == pytest.approx(0.5 + 1.0)
    assert float(LF.moment_loss(x, x)) == pytest.approx(0.0)
    mu, cov = LF.feature_moments(x)
    assert torch.allclose(mu, t([[1, 1]])) and torch.allclose(cov, t([[1, 1], [1, 1]]))


def test_self_similarity_loss_zero_for_identical_and_hand_value():
    x = torch.randn(6, 4, dtype=torch.float64)
    assert float(LF.self_similarity_loss(x, x)) == pytest.approx(0.0, abs=1e-12)
    # x = (1,0), (0,1), (1,1): distances 1, A, A. y = (1,0), (0,1), (1,0): distances 1, 0, 1.
    x, y = t([[1, 0], [0, 1], [1, 1]]), t([[1, 0], [0, 1], [1, 0]])
    dx = t([[0, 1, A], [1, 0, A], [A, A, 0]])
    dx = dx / t([[1 + A, 1 + A, 2 * A]])            # columns divided by their sums
    dy = t([[0, 1 / 2, 0], [1, 0, 1], [0, 1 / 2, 0]])  # column sums 1, 2, 1
    expected = float((dx - dy).abs().sum()) / 3      # mean |difference| x n = sum / n
    assert float(LF.self_similarity_loss(x, y)) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("loss", [LF.remd_loss, LF.palette_loss, LF.moment_loss, LF.self_similarity_loss])
def test_gradcheck(loss):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, dtype=torch.float64, generator=gen).add(0.1).requires_grad_()
    y = torch.rand(6 if loss is not LF.self_similarity_loss else 5, 3, dtype=torch.float64, generator=gen) + 0.1
    assert torch.autograd.gradcheck(lambda a: loss(a, y), (x,))


def _autograd_remd(x, y):
    return LF.relaxed_emd(LF.pairwise_cosine_distance(x, y))


def _autograd_self_similarity(x, y):
    dx, dy = LF.pairwise_cosine_distance(x, x), LF.pairwise_cosine_distance(y, y)
    dx, dy = dx / dx.sum(0, keepdim=True), dy / dy.sum(0, keepdim=True)
    return (dx - dy).abs().mean() * x.shape[0]


@pytest.mark.parametrize("n, m", [(7, 9), (9, 7), (12, 12)])
def test_hand_written_backwards_equal_autograd(n, m):
    # remd's sparse backward and the self-similarity's one-matmul backward against plain autograd.
    gen = torch.Generator().manual_seed(n * m)
    x = torch.rand(n, 5, dtype=torch.float64, generator=gen).requires_grad_()
    y = torch.rand(m, 5, dtype=torch.float64, generator=gen).requires_grad_()
    c = torch.rand(n, 5, dtype=torch.float64, generator=gen)
    for fast, slow, args in ((LF.remd_loss, _autograd_remd, (x, y)),
                             (LF.self_similarity_loss, _autograd_self_similarity, (x, c))):
        wrt = [a for a in args if a.requires_grad]
        value = fast(*args)
        grads = torch.autograd.grad(value, wrt)
        expected = slow(*args)
        assert float(value.detach()) == pytest.approx(float(expected.detach()), abs=1e-12)
        for g, e in zip(grads, torch.autograd.grad(expected, wrt)):
            assert torch.allclose(g, e, atol=1e-12)
    # Identical sets: R_a = R_b = 0, a tie whose gradient is zero either way.
    same = x.detach().clone().requires_grad_()
    assert float(torch.autograd.grad(LF.remd_loss(same, x.detach()), same)[0].abs().max()) < 1e-12


def test_bf16_products_stay_close_to_float32():
    # What precision='bf16' does to the STROTSS terms: bf16 inputs and outputs of the big products.
    # Values move by < 1%; the relaxed EMD's gradient moves most, as near-tied cheapest partners swap
    # (on real hypercolumns ~10% of them, far less than drawing a new style sample changes).
    gen = torch.Generator().manual_seed(3)
    x, c, s = (torch.rand(256, 300, generator=gen) ** 4 for _ in range(3))  # sparse, like ReLU features
    mu, cov = LF.feature_moments(s)
    for loss, targets, min_cos in ((LF.remd_loss, (s,), 0.9), (LF.self_similarity_loss, (c,), 0.99),
                                   (LF.moment_loss_to, (mu, cov), 0.99)):
        a32, a16 = x.clone().requires_grad_(), x.clone().requires_grad_()
        exact, fast = loss(a32, *targets), loss(a16, *targets, matmul_dtype=torch.bfloat16)
        (g32,), (g16,) = torch.autograd.grad(exact, a32), torch.autograd.grad(fast, a16)
        assert fast.dtype == torch.float32 and g16.dtype == torch.float32
        assert float(fast.detach()) == pytest.approx(float(exact.detach()), rel=0.01)
        assert float(torch.nn.functional.cosine_similarity(g16.flatten(), g32.flatten(), dim=0)) > min_cos


def test_strotss_terms_weighting():
    gen = torch.Generator().manual_seed(1)
    x, c, s = (torch.rand(8, 5, generator=gen) for _ in range(3))
    alpha = 4.0
    terms = strotss.strotss_terms(x, c, s, alpha).terms
    norm = alpha + 2.0
    assert float(terms["content"]) == pytest.approx(alpha * float(LF.self_similarity_loss(x, c)) / norm, rel=1e-5)
    assert float(terms["style"]) == pytest.approx(float(LF.remd_loss(x, s)) / norm, rel=1e-5)
    assert float(terms["moments"]) == pytest.approx(float(LF.moment_loss(x, s)) / norm, rel=1e-5)
    assert float(terms["palette"]) == pytest.approx(float(LF.palette_loss(x[:, :3], s[:, :3])) / alpha / norm, rel=1e-5)


# --- Laplacian pyramid ---------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(37, 53), (64, 43), (5, 3)])
def test_pyramid_round_trips(size):
    image = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
    param = LaplacianPyramidImage(image, levels=5)
    assert len(param.bands) == 6
    assert (param() - image).abs().max() < 1e-6
    assert (reconstruct_pyramid(laplacian_pyramid(image, 3)) - image).abs().max() < 1e-6
    assert torch.equal(param.image(), param().detach().clamp(0, 1))


def test_pyramid_gradient_reaches_every_level_and_rmsprop_steps():
    param = LaplacianPyramidImage(torch.rand(1, 3, 32, 32), levels=5)
    opt = make_optimizer("rmsprop", param.parameters())
    assert isinstance(opt, torch.optim.RMSprop) and opt.param_groups[0]["lr"] == 2e-3
    param().mean().backward()
    assert all(b.grad is not None and b.grad.abs().sum() > 0 for b in param.bands)
    before = param().detach()
    opt.step()
    assert not torch.equal(before, param().detach())


# --- sampling --------------------------------------------------------------------------------------

def test_grid_positions_in_bounds_regular_and_resampled():
    size = (300, 400)  # stride floor(sqrt(120000 // 128^2)) = 2
    offsets = set()
    for seed in range(8):
        gen = torch.Generator().manual_seed(seed)
        pos = grid_positions(size, 10**6, gen)
        assert pos[:, 0].min() >= 0 and pos[:, 0].max() <= 299 and pos[:, 1].min() >= 0 and pos[:, 1].max() <= 399
        oy, ox = int(pos[:, 0].min()), int(pos[:, 1].min())
        assert oy < 2 and ox < 2
        assert torch.all((pos[:, 0] - oy) % 2 == 0) and torch.all((pos[:, 1] - ox) % 2 == 0)
        offsets.add((oy, ox))
    assert len(offsets) > 1  # the offset changes with the generator's state
    gen = torch.Generator().manual_seed(0)
    a, b = grid_positions(size, 1024, gen), grid_positions(size, 1024, gen)
    assert a.shape == b.shape == (1024, 2) and not torch.equal(a, b)
    assert len({tuple(p) for p in a.tolist()}) == 1024  # a subset, no repeats


def test_random_positions_in_bounds():
    pos = random_positions((7, 11), 500, torch.Generator().manual_seed(0))
    assert pos.shape == (500, 2)
    assert pos[:, 0].min() >= 0 and pos[:, 0].max() <= 6 and pos[:, 1].min() >= 0 and pos[:, 1].max() <= 10
    assert len({tuple(p) for p in pos.tolist()}) > 50


def test_sample_hypercolumns_reads_pixels_and_layers():
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 8, 6, generator=gen)
    fmap = torch.rand(1, 4, 4, 3, generator=gen)  # half resolution
    pos = torch.tensor([[0.0, 0.0], [5.0, 3.0], [7.0, 5.0]])
    cols = sample_hypercolumns(image, {"relu2_1": fmap}, ["relu2_1"], pos)
    assert cols.shape == (3, 7)
    assert torch.allclose(cols[:, :3], image[0, :, [0, 5, 7], [0, 3, 5]].T)
    # Full-res pixel (5, 3) lies between half-res rows 2 and 3 (2.25) and columns 1 and 2 (1.25).
    f = fmap[0]
    expected = (f[:, 2, 1] * 0.75 * 0.75 + f[:, 3, 1] * 0.25 * 0.75 + f[:, 2, 2] * 0.75 * 0.25
                + f[:, 3, 2] * 0.25 * 0.25)
    assert torch.allclose(cols[1, 3:], expected * hypercolumns.FEATURE_SCALE, atol=1e-6)


# --- config ----------------------------------------------------------------------------------------

def test_config_round_trips_and_validates():
    c = StrotssConfig(size=96, scales=2, layers=("block1_relu1", "relu2_1"))
    assert c.layers == ("relu1_1", "relu2_1")
    assert StrotssConfig.from_json(c.to_json()) == c
    for bad in ({"content_weight": -1}, {"samples": 0}, {"learning_rate": 0}, {"layers": ("nope",)},
                {"size": 8}, {"scales": 0}, {"precision": "fp16"}):
        with pytest.raises(PainterlyError):
            StrotssConfig(**bad)


def test_api_and_cli_know_strotss():
    import painterly
    from painterly.api import make_config

    assert painterly.available_methods()["strotss"] is STROTSS and STROTSS.config_class is StrotssConfig
    assert painterly.get_method("strotss") is STROTSS
    assert make_config("strotss", iterations=3).iterations == 3
    with pytest.raises(PainterlyError, match="unknown option.* for strotss: style_weight"):
        make_config("strotss", style_weight=3.0)


# --- end to end ------------------------------------------------------------------------------------

def test_short_run_lowers_style_and_content_terms():
    from painterly.features import FeatureExtractor

    gen = torch.Generator().manual_seed(0)
    # A smooth content (a gradient with a bright square) and a high-contrast striped style.
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 64), indexing="ij")
    content = torch.stack([xx, yy, 0.5 * torch.ones_like(xx)])[None]
    content[..., 16:32, 20:40] = 0.9
    stripes = ((torch.arange(64) // 4) % 2).float()
    style = torch.stack([stripes.expand(64, 64), 0.2 * torch.ones(64, 64), 1 - stripes.expand(64, 64)])[None]
    style = (style + 0.05 * torch.rand(style.shape, generator=gen)).clamp(0, 1)

    config = StrotssConfig(size=64, scales=1, iterations=20, seed=0, precision="fp32", samples=256,
                           style_samples=256, learning_rate=1e-2, final_learning_rate=None)
    extractor = FeatureExtractor.vgg19(pooling="max", last_layer=config.sorted_layers[-1], precision="fp32")
    infos = []
    out = run(content, [style], config, callback=infos.append, extractor=extractor)
    assert out.shape == (1, 3, 48, 64) and out.min() >= 0 and out.max() <= 1
    assert [i.iteration for i in infos] == list(range(1, 21))

    def mean(key, rows):
        return sum(i.losses[key] for i in rows) / len(rows)

    for key in ("style", "content", "total"):
        assert mean(key, infos[-4:]) < mean(key, infos[:4]), key

    # Scored on the same samples, the output is closer to the style than the content image is.
    def style_term(image):
        objective = StrotssObjective(extractor, config, content, [style], 1.0, torch.Generator().manual_seed(5))
        with torch.no_grad():
            return float(objective(image).terms["style"])

    assert style_term(out) < style_term(content)


def test_a_style_too_short_at_a_coarse_scale_is_read_at_the_least_vgg_takes():
    """A style read at a scale's long side fell under VGG's 16 px on its short side (a 96 px run's coarsest
    scale; a panorama at any scale) and crashed VGG ("Output size is too small"); it is read longer."""
    from painterly.features import FeatureExtractor

    assert strotss.style_size_at((100, 1000), 128) == (16, 160)
    assert strotss.style_size_at((300, 400), 12) == (16, 22)
    assert strotss.style_size_at((300, 400), 512) == (384, 512)  # long enough: the scale's long side
    g = torch.Generator().manual_seed(0)
    content, panorama = torch.rand(1, 3, 48, 64, generator=g), torch.rand(1, 3, 20, 200, generator=g)
    config = StrotssConfig(size=64, scales=2, iterations=2, seed=0, precision="fp32", samples=64, style_samples=64)
    extractor = FeatureExtractor.random(seed=0, last_layer=config.sorted_layers[-1], precision="fp32")
    out = run(content, [panorama], config, extractor=extractor)
    assert out.shape == (1, 3, 48, 64) and torch.isfinite(out).all()


# --- API and command line ----------------------------------------------------------------------------

@pytest.fixture
def image_files(tmp_path):
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    content = (torch.rand(40, 48, 3, generator=gen) * 255).to(torch.uint8).numpy()
    style = (torch.rand(36, 36, 3, generator=gen) * 255).to(torch.uint8).numpy()
    Image.fromarray(content).save(tmp_path / "c.png")
    Image.fromarray(style).save(tmp_path / "s.png")
    return tmp_path


def test_cli_runs_strotss_with_mapped_flags(image_files, capsys):
    import json

    from PIL import Image

    from painterly import cli

    out = image_files / "out.png"
    code = cli.main([str(image_files / "c.png"), str(image_files / "s.png"), "-o", str(out), "--method", "strotss",
                     "--size", "32", "--scales", "1", "--iterations", "2", "--seed", "1", "--content-weight", "8",
                     "--precision", "fp32", "--quiet", "--log"])
    assert code == 0, capsys.readouterr().err
    assert Image.open(out).size == (32, 27)
    records = json.loads(out.with_suffix(".json").read_text())
    assert len(records) == 2 and {"content", "style", "moments", "palette", "total"} <= set(records[0])


def test_cli_refuses_gatys_only_flags_for_strotss(image_files, capsys):
    from painterly import cli

    code = cli.main([str(image_files / "c.png"), str(image_files / "s.png"), "-o", str(image_files / "o.png"),
                     "--method", "strotss", "--style-weight", "3", "--tv-weight", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "--style-weight, --tv-weight does not apply to --method strotss" in err
    assert not (image_files / "o.png").exists()
    # without --method, options of two methods name the clash
    code = cli.main([str(image_files / "c.png"), str(image_files / "s.png"), "-o", str(image_files / "o.png"),
                     "--tv-weight", "1", "--strength", "0.5"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "do not pick one method: --tv-weight (gatys), --strength (adain, wct); give --method" in err, err


def test_cli_config_json_round_trips_for_strotss(image_files, capsys):
    from painterly import cli

    assert cli.main(["--method", "strotss", "--config-json", "--iterations", "9", "--content-weight", "4"]) == 0
    text = capsys.readouterr().out
    assert StrotssConfig.from_json(text) == StrotssConfig(iterations=9, content_weight=4.0)
    path = image_files / "cfg.json"
    path.write_text(text)
    assert cli.main(["--method", "strotss", "--config", str(path), "--config-json", "--seed", "2"]) == 0
    assert StrotssConfig.from_json(capsys.readouterr().out) == StrotssConfig(iterations=9, content_weight=4.0, seed=2)


def test_stylize_picks_the_method_from_the_config():
    import painterly

    content = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(0))
    style = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    steps = []
    image = painterly.stylize(content, style, config=StrotssConfig(size=32, scales=1, iterations=1, seed=0,
                                                                  precision="fp32"), callback=steps.append)
    assert image.size == (32, 24) and len(steps) == 1 and "moments" in steps[0].losses
    with pytest.raises(PainterlyError, match="StrotssConfig"):
        painterly.stylize(content, style, method="gatys", config=StrotssConfig())


# --- spatial guidance --------------------------------------------------------------------------------

def _two_region_guide(h, w, split, colors, noise=0.0, seed=0):
    """1x3xHxW map: columns < split painted colors[0], the rest colors[1], plus JPEG-like noise."""
    guide = torch.empty(1, 3, h, w)
    guide[..., :split] = torch.tensor(colors[0]).view(1, 3, 1, 1)
    guide[..., split:] = torch.tensor(colors[1]).view(1, 3, 1, 1)
    return (guide + noise * torch.randn(guide.shape, generator=torch.Generator().manual_seed(seed))).clamp(0, 1)


RED, BLUE, GREEN = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)


def test_region_pairs_match_colours_within_tolerance():
    from painterly.guidance import region_pairs

    content = _two_region_guide(20, 30, 10, (RED, BLUE), noise=0.03)
    style = _two_region_guide(16, 16, 4, (BLUE, GREEN))
    style[..., :8, :] = torch.tensor(RED).view(1, 3, 1, 1)  # top half red, bottom blue / green
    pairs = region_pairs(content, [style])
    colors = sorted(p.color for p in pairs)
    assert colors == sorted([RED, BLUE])  # green is only in the style: no pair
    red = next(p for p in pairs if p.color == RED)
    assert red.content[:, :10].all() and not red.content[:, 10:].any()
    assert red.styles[0][:8].all() and not red.styles[0][8:].any()
    with pytest.raises(PainterlyError, match="share no region"):
        region_pairs(_two_region_guide(8, 8, 4, (GREEN, GREEN)), [_two_region_guide(8, 8, 4, (RED, BLUE))])


def test_positions_stay_inside_masks():
    gen = torch.Generator().manual_seed(0)
    mask = torch.zeros(40, 50, dtype=torch.bool)
    mask[5:20, 30:45] = True
    pos = grid_positions((40, 50), 1024, gen, mask).long()
    assert pos.shape[0] > 0 and mask[pos[:, 0], pos[:, 1]].all()
    pos = random_positions((40, 50), 300, gen, mask).long()
    assert mask[pos[:, 0], pos[:, 1]].all()
    tiny = torch.zeros(300, 400, dtype=torch.bool)
    tiny[7, 9] = True  # on the stride-2 grid or not (offset-dependent): either way only that pixel
    for seed in range(4):
        assert grid_positions((300, 400), 1024, torch.Generator().manual_seed(seed), tiny).tolist() == [[7.0, 9.0]]


def test_guided_objective_samples_style_only_from_the_paired_region():
    from painterly.features import FeatureExtractor

    extractor = FeatureExtractor.random(seed=0, last_layer="relu5_3")
    config = StrotssConfig(samples=64, style_samples=64, precision="fp32")
    content = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    style = _two_region_guide(32, 32, 16, (RED, BLUE))  # the style image itself: red left, blue right
    left = torch.zeros(32, 32, dtype=torch.bool)
    left[:, :16] = True
    regions = [(left, [left]), (~left, [~left])]
    objective = StrotssObjective(extractor, config, content, [style], 4.0, torch.Generator().manual_seed(0), regions)
    assert torch.allclose(objective.sample_style(region=0)[:, :3], torch.tensor(RED).expand(64, 3))
    assert torch.allclose(objective.sample_style(region=1)[:, :3], torch.tensor(BLUE).expand(64, 3))
    terms = objective(content.clone().requires_grad_())
    assert set(terms.terms) == {"content", "style", "moments", "palette"}
    terms.total.backward()


def _texture(colour, seed, h, w):
    gen = torch.Generator().manual_seed(seed)
    return (torch.tensor(colour).view(1, 3, 1, 1) + 0.15 * torch.randn(1, 3, h, w, generator=gen)).clamp(0, 1)


def test_guided_run_sends_each_content_region_toward_its_paired_style_region():
    """Crossed pairing (untiled): the content's left (red on its map) takes the style's right half
    (red on the style map, a blue texture in the image), the content's right the red-textured left;
    with the style map's colours swapped, the halves swap. Measured RGB means: left (0.20, 0.22, 0.89),
    right (0.89, 0.10, 0.20); unguided both about (0.53, 0.16, 0.58)."""
    from painterly.features import FeatureExtractor

    extractor = FeatureExtractor.random(seed=0, last_layer="relu5_3")
    content = 0.45 + 0.1 * torch.rand(1, 3, 32, 40, generator=torch.Generator().manual_seed(3))
    style = torch.cat([_texture((0.9, 0.15, 0.1), 1, 32, 16), _texture((0.1, 0.2, 0.9), 2, 32, 16)], dim=3)
    content_guide = _two_region_guide(32, 40, 20, (RED, BLUE), noise=0.05)
    crossed = region_pairs(content_guide, [_two_region_guide(32, 32, 16, (BLUE, RED))])
    straight = region_pairs(content_guide, [_two_region_guide(32, 32, 16, (RED, BLUE))])
    config = StrotssConfig(size=40, scales=1, iterations=20, seed=0, precision="fp32", samples=64, style_samples=64,
                           content_weight=1.0, learning_rate=1e-2, final_learning_rate=None)
    steps = []
    guided = run(content, [style], config, callback=steps.append, extractor=extractor, guidance=crossed)
    assert guided.shape == (1, 3, 32, 40) and len(steps) == 20

    def halves(image):  # mean colour of each half, away from the seam
        return image[..., 2:18].mean(dim=(0, 2, 3)), image[..., 22:38].mean(dim=(0, 2, 3))

    blue, red = style[..., 16:].mean(dim=(0, 2, 3)), style[..., :16].mean(dim=(0, 2, 3))
    start_left, start_right = halves(_start(config, content, style, [Scale(32, 40, 20)], extractor))
    left, right = halves(guided)
    assert (left - blue).norm() < 0.5 * (start_left - blue).norm()    # left moved toward the blue region ...
    assert (right - red).norm() < 0.5 * (start_right - red).norm()    # ... right toward the red one
    assert left[2] - left[0] > 0.4 and right[0] - right[2] > 0.4, (left, right)
    left, right = halves(run(content, [style], config, extractor=extractor, guidance=straight))
    assert left[0] - left[2] > 0.4 and right[2] - right[0] > 0.4, (left, right)


def test_guidance_errors():
    import painterly

    gen = torch.Generator().manual_seed(0)
    content, style = torch.rand(1, 3, 32, 40, generator=gen), torch.rand(1, 3, 32, 32, generator=gen)
    cg, sg = _two_region_guide(32, 40, 20, (RED, BLUE), noise=0.05), _two_region_guide(32, 32, 8, (BLUE, RED))
    options = dict(method="strotss", size=40, scales=1, iterations=1, precision="fp32", device="cpu")
    with pytest.raises(PainterlyError, match="needs both"):
        painterly.stylize(content, [style], content_guidance=cg, **options)
    with pytest.raises(PainterlyError, match="2 style guidance map.* for 1 style image.*; give one per style image"):
        painterly.stylize(content, [style], content_guidance=cg, style_guidance=[sg, sg], **options)
    with pytest.raises(PainterlyError, match="method 'strotss' takes no style masks"):
        run(content, [style], StrotssConfig(**{k: v for k, v in options.items() if k != "method"}),
            style_masks=[torch.ones(1, 1, 32, 40)])
    # a photo given as a map (no colour covers 1% of it) was an IndexError, "please report it"
    with pytest.raises(PainterlyError, match="style guidance map 1 has no colour covering 1% of it"):
        painterly.preflight(content, [style], content_guidance=content, style_guidance=[style], **options)


def test_cli_and_api_take_guidance_maps(image_files, capsys):
    from PIL import Image

    import painterly
    from painterly import cli

    cg, sg = image_files / "cg.png", image_files / "sg.jpg"
    Image.fromarray((_two_region_guide(40, 48, 24, (RED, BLUE))[0].permute(1, 2, 0) * 255).byte().numpy()).save(cg)
    Image.fromarray((_two_region_guide(36, 36, 12, (BLUE, RED))[0].permute(1, 2, 0) * 255).byte().numpy()).save(sg)
    out = image_files / "g.png"
    code = cli.main([str(image_files / "c.png"), str(image_files / "s.png"), "-o", str(out), "--method", "strotss",
                     "--size", "32", "--scales", "1", "--iterations", "1", "--precision", "fp32", "--quiet",
                     "--content-guidance", str(cg), "--style-guidance", str(sg)])
    assert code == 0, capsys.readouterr().err
    assert Image.open(out).size == (32, 27)
    # A guide of another shape than its image is refused up front, in one line.
    code = cli.main([str(image_files / "c.png"), str(image_files / "s.png"), "-o", str(out), "--method", "strotss",
                     "--quiet", "--content-guidance", str(sg), "--style-guidance", str(sg)])
    err = capsys.readouterr().err
    assert code == 2 and "aspect ratio" in err and err.count("\n") == 1
    with pytest.raises(PainterlyError, match="style guidance map 1 is 48x40 but style image 1 is 36x36"):
        painterly.stylize(str(image_files / "c.png"), str(image_files / "s.png"), method="strotss",
                          content_guidance=str(cg), style_guidance=str(cg))


def test_checkpoint_stop_and_resume_equals_an_uninterrupted_run(tmp_path):
    from painterly.checkpoint import Checkpointer, Interrupted
    from painterly.features import FeatureExtractor

    extractor = FeatureExtractor.random(seed=0, last_layer="relu5_3")
    gen = torch.Generator().manual_seed(0)
    content, style = torch.rand(1, 3, 32, 40, generator=gen), torch.rand(1, 3, 32, 32, generator=gen)
    config = StrotssConfig(size=40, scales=2, iterations=3, seed=0, precision="fp32", samples=64, style_samples=64)
    whole = run(content, [style], config, extractor=extractor)

    path = tmp_path / "run.ckpt"
    ckpt = Checkpointer(path, every=None, seconds=None)

    def stop_at_step_4(info):
        if info.step == 4:  # scale 2, iteration 1
            ckpt.request_stop()

    with pytest.raises(Interrupted) as exc:
        run(content, [style], config, callback=stop_at_step_4, extractor=extractor, checkpoint=ckpt)
    assert (exc.value.scale, exc.value.iteration) == (1, 1) and path.exists()
    steps = []
    resumed = run(content, [style], config, callback=steps.append, extractor=extractor,
                  checkpoint=Checkpointer(path, every=None, seconds=None, resume=True))
    assert [s.step for s in steps] == [5, 6] and not path.exists()
    assert (resumed - whole).abs().max() == 0, float((resumed - whole).abs().max())
    with pytest.raises(PainterlyError, match="other input images or options"):
        ckpt2 = Checkpointer(path, every=None, seconds=None, keep=True)
        ckpt2.request_stop()
        with pytest.raises(Interrupted):
            run(content, [style], config, extractor=extractor, checkpoint=ckpt2)
        run(content, [style], dataclasses_replace(config, seed=1), extractor=extractor,
            checkpoint=Checkpointer(path, every=None, seconds=None, resume=True))


def dataclasses_replace(config, **changes):
    import dataclasses

    return dataclasses.replace(config, **changes)


def test_max_time_cuts_the_run_short(monkeypatch):
    """A fake clock that moves 1 s per step: --max-time 3.5 lets exactly 4 steps start."""
    from painterly.features import FeatureExtractor

    clock = use_fake_clock(monkeypatch, "painterly.driver", "painterly.optimize", "painterly.schedule")
    extractor = FeatureExtractor.random(seed=0, last_layer="relu5_3")
    gen = torch.Generator().manual_seed(0)
    content, style = torch.rand(1, 3, 32, 32, generator=gen), torch.rand(1, 3, 32, 32, generator=gen)
    steps = []

    def step(info):
        steps.append(info.iteration)
        clock.advance(1.0)

    config = StrotssConfig(size=32, scales=1, iterations=1000, seed=0, precision="fp32", samples=32,
                           style_samples=32, max_time=3.5)
    out = run(content, [style], config, callback=step, extractor=extractor)
    assert out.shape == (1, 3, 32, 32) and steps == [1, 2, 3, 4]


# --- tiled scales ------------------------------------------------------------------------------------

def _tiled_inputs():
    """A 96x128 content (a gradient with a bright block) and a striped 96x96 style."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 96), torch.linspace(0, 1, 128), indexing="ij")
    content = torch.stack([xx, yy, 0.5 * torch.ones_like(xx)])[None]
    content[..., 30:60, 40:90] = 0.9
    stripes = ((torch.arange(96) // 6) % 2).float()
    style = torch.stack([stripes.expand(96, 96), 0.2 * torch.ones(96, 96), 1 - stripes.expand(96, 96)])[None]
    style = (style + 0.05 * torch.rand(style.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    return content, style


def _start(config, content, style, plan, extractor):
    """The image STROTSS's first scale starts from (the styles' mean colour and the content's finest band)."""
    ctx = run_context(config, content, [style], plan, extractor=extractor)
    return STROTSS.start(ctx, 0, plan[0], None)


def test_tiled_run_lowers_the_whole_image_objective():
    from painterly.features import FeatureExtractor

    extractor = FeatureExtractor.random(seed=0, last_layer="relu5_3")
    content, style = _tiled_inputs()
    config = StrotssConfig(size=128, scales=1, iterations=4, seed=0, precision="fp32", samples=256, style_samples=256,
                           tile_size=64, tile_overlap=16)
    plan = make_plan(STROTSS, config, (96, 128), [(96, 96)], "cpu", "fp32")
    tiling = plan[-1].tiling
    assert tiling is not None and tiling.tile_count(plan[-1].size) >= 12
    steps = []
    out = run(content, [style], config, extractor=extractor, callback=steps.append)
    assert out.shape == (1, 3, 96, 128) and out.min() >= 0 and out.max() <= 1
    assert len(steps) == steps[-1].iteration == steps[-1].iterations == 2 * tiling.tile_count(plan[-1].size)
    start = _start(config, content, style, plan, extractor)

    def objective(image, seed):  # the whole image's objective on the same samples for both images
        whole = StrotssObjective(extractor, config, content, [style], config.content_weight,
                                 torch.Generator().manual_seed(seed))
        with torch.no_grad():
            return whole(image).floats()

    for seed in (1, 2):
        before, after = objective(start, seed), objective(out, seed)
        assert after["total"] < 0.9 * before["total"] and after["style"] < before["style"], (before, after)


def test_style_pool_covers_the_style_and_keeps_regions_apart():
    from painterly.features import FeatureExtractor
    from painterly.tiling import Tiling

    extractor = FeatureExtractor.random(seed=0, last_layer="relu5_3")
    layers = StrotssConfig().sorted_layers
    style = _two_region_guide(96, 128, 64, (RED, BLUE))  # the image itself: red left, blue right
    left = torch.zeros(96, 128, dtype=torch.bool)
    left[:, :64] = True
    gen = torch.Generator().manual_seed(0)
    pool = StylePool(extractor, layers, [style], gen, [[None], [left]], Tiling(64, 16, rounds=1), 2000)
    assert [p.shape[0] for p in pool.pools] == [2000, 2000]
    red = (pool.pools[0][:, :3] - torch.tensor(RED)).abs().sum(1) < 1e-4
    assert 0.45 < float(red.float().mean()) < 0.55  # the whole image, evenly: half of it red
    assert torch.allclose(pool.pools[1][:, :3], torch.tensor(RED).expand(2000, 3))  # region 1: only its mask
    assert pool.sample(256, 0).shape == (256, pool.pools[0].shape[1])
    # drawn without replacement: asking for the whole pool returns every row once
    assert torch.allclose(pool.sample(2000, 1).sum(0), pool.pools[1].sum(0), rtol=1e-4)
    # moments from the pool are those of the style's features, read whole
    whole = StyleFeatures(extractor, layers, [style], gen, [[None]])
    mean_pool, mean_whole = pool.moments[0][0], whole.moments[0][0]
    assert float((mean_pool - mean_whole).norm() / mean_whole.norm()) < 0.1


def test_tiled_guided_run_leaves_tiles_outside_every_region_alone():
    from painterly.features import FeatureExtractor

    extractor = FeatureExtractor.random(seed=0, last_layer="relu5_3")
    content, style = _tiled_inputs()
    # Only red is in both maps: content right of x = 40 is in no region.
    cg, sg = _two_region_guide(96, 128, 40, (RED, GREEN)), _two_region_guide(96, 96, 48, (BLUE, RED))
    config = StrotssConfig(size=128, scales=1, iterations=2, seed=0, precision="fp32", samples=64, style_samples=64,
                           tile_size=64, tile_overlap=16)
    steps = []
    out = run(content, [style], config, extractor=extractor, callback=steps.append,
              guidance=region_pairs(cg, [sg]))
    assert out.shape == (1, 3, 96, 128) and 0 < len(steps) < steps[-1].iterations
    start = _start(config, content, style, make_plan(STROTSS, config, (96, 128), [(96, 96)], "cpu", "fp32"),
                   extractor).clamp(0, 1)
    # no tile that reaches a region reaches past x = 72
    assert torch.allclose(out[..., 72:], start[..., 72:], atol=1e-6)
    assert not torch.allclose(out[..., :40], start[..., :40], atol=1e-3)


def test_tiled_run_resumes_mid_tile_exactly(tmp_path):
    import signal

    from painterly.checkpoint import Checkpointer, Interrupted
    from painterly.features import FeatureExtractor

    extractor = FeatureExtractor.random(seed=0, last_layer="relu5_3")
    gen = torch.Generator().manual_seed(1)
    content, style = torch.rand(1, 3, 72, 96, generator=gen), torch.rand(1, 3, 40, 40, generator=gen)
    config = StrotssConfig(size=96, scales=2, iterations=4, seed=3, precision="fp32", samples=64, style_samples=64,
                           tile_size=64, tile_overlap=16)
    plan = make_plan(STROTSS, config, (72, 96), [(40, 40)], "cpu", "fp32")
    assert plan[0].tiling is None and plan[1].tiling is not None
    reference = run(content, [style], config, extractor=extractor)
    path = tmp_path / "run.ckpt"
    ckpt = Checkpointer(path, every=1, seconds=None)

    def stop(info):
        if info.scale == 1 and info.iteration == 3:  # the second tile of the first round, its first step
            ckpt.request_stop(signal.SIGINT)

    with pytest.raises(Interrupted):
        run(content, [style], config, extractor=extractor, checkpoint=ckpt, callback=stop)
    saved = read_checkpoint(path)["state"]
    assert tuple(saved["tile"]) == (0, 1) and saved["iteration"] == 1 and plan_from_json(saved["plan"]) == plan
    resumed = run(content, [style], config, extractor=extractor,
                  checkpoint=Checkpointer(path, seconds=None, resume=True))
    assert torch.equal(resumed, reference)


# --- the memory model: the properties the planner relies on (agreement with measured peak RSS is
# benchmarks/memory_model.py's business) -------------------------------------------------------------

LONG_SIDES = [64, 128, 256, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144]


def _memory(precision="fp32", style_hws=((300, 400),)):
    return STROTSS.memory(StrotssConfig(), list(style_hws), precision)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("style_hws", [((300, 400),), ((512, 512), (200, 800))])
def test_memory_estimate_grows_with_the_size(precision, style_hws):
    from painterly.image import fit_long_side

    model = _memory(precision, style_hws)
    sizes = [fit_long_side(3, 4, side) for side in range(16, 6145)]  # every long side, 4:3
    peaks = [model.scale_bytes(size, None, 250) for size in sizes]
    assert all(a < b for a, b in zip(peaks, peaks[1:]))
    # and with the number of style images (each one's features are held whole)
    more = _memory(precision, (*style_hws, (300, 400)))
    for side in LONG_SIDES:
        size = fit_long_side(3, 4, side)
        assert more.scale_bytes(size, None, 250) > model.scale_bytes(size, None, 250), side


def test_memory_estimate_bf16_is_never_above_fp32():
    from painterly.image import fit_long_side

    for side in LONG_SIDES:
        size = fit_long_side(3, 4, side)
        assert _memory("bf16").scale_bytes(size, None, 250) <= _memory("fp32").scale_bytes(size, None, 250), side


@pytest.mark.parametrize("tile", [256, 512, 1024])
def test_tiled_memory_estimate_is_below_the_whole_one_for_a_large_size(tile):
    from painterly.image import fit_long_side
    from painterly.tiling import choose_tiling

    size, model = fit_long_side(3, 4, 4096), _memory()
    tiled = model.scale_bytes(size, choose_tiling(tile, None, 2), 250)
    assert tiled < model.scale_bytes(size, None, 250)
    assert model.scale_bytes(size, choose_tiling(tile // 2, None, 2), 250) < tiled


def test_plan_tiles_what_does_not_fit_within_the_budget():
    import painterly
    from painterly.schedule import scale_peak_bytes

    plan = painterly.plan((3000, 4000), method="strotss", size=4000, max_memory=4, precision="fp32", device="cpu")
    *coarse, last = plan.scales
    model = STROTSS.memory(StrotssConfig(), [(3000, 4000)], "fp32")
    assert not plan.problem and last.size == (3000, 4000) and last.tiling is not None
    assert all(s.tiling is None for s in coarse[:-1])
    assert model.scale_bytes(last.size, None, last.iterations) > 4 * 2**30  # whole, it would not fit
    assert plan.peak_bytes == max(scale_peak_bytes(s, model) for s in plan.scales)
    assert plan.peak_bytes <= 4 * 2**30
    assert "per tile in 2 round(s)" in plan.describe().splitlines()[4]
    # tile_size=0 refuses instead, naming a size that fits
    refused = painterly.plan((3000, 4000), method="strotss", size=4000, max_memory=4, precision="fp32", tile_size=0,
                             device="cpu")
    assert "allow tiling or use --size" in refused.problem


def test_config_checks_tiling_fields():
    for bad, message in (({"tile_size": -1}, "tile-size"), ({"tile_rounds": 0}, "tile-rounds"),
                         ({"max_memory": 0}, "max-memory")):
        with pytest.raises(PainterlyError, match=message):
            StrotssConfig(**bad)


def test_cli_runs_strotss_in_tiles(image_files, capsys):
    import json

    from PIL import Image

    from painterly import cli
    from painterly.tiling import Tiling

    out = image_files / "tiled.png"
    code = cli.main([str(image_files / "c.png"), str(image_files / "s.png"), "-o", str(out), "--method", "strotss",
                     "--size", "96", "--scales", "1", "--iterations", "1", "--seed", "1", "--precision", "fp32",
                     "--tile-size", "64", "--tile-overlap", "16", "--tile-rounds", "1", "--quiet", "--log"])
    assert code == 0, capsys.readouterr().err
    assert Image.open(out).size == (96, 80)
    records = json.loads(out.with_suffix(".json").read_text())
    assert len(records) == Tiling(64, 16, rounds=1, packed=True).tile_count((80, 96)) == 4  # 2x2: one round, packed


def test_default_scales_are_the_authors_four_where_the_picture_holds_them():
    """64, 128, 256, 512 px at 512; a small picture gets fewer (4 made 128 px's coarsest 16x12 and was
    refused); asked-for scales are kept, and refused where they do not fit."""
    sizes = lambda hw, **o: [s.size for s in STROTSS.scales(StrotssConfig(**o), hw)]
    assert sizes((384, 512)) == [(48, 64), (96, 128), (192, 256), (384, 512)]
    assert sizes((96, 128)) == [(24, 32), (48, 64), (96, 128)]
    assert sizes((24, 32)) == [(24, 32)]
    assert sizes((96, 128), scales=2) == [(48, 64), (96, 128)]
    with pytest.raises(PainterlyError, match="4 scales make the coarsest image 16x12"):
        sizes((96, 128), scales=4)
