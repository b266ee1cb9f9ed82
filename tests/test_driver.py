"""The one driver: a toy method plugs in through the registry and runs through the CLI; a forward
stage runs one pass per tile; a session reuses its style targets frame after frame and takes extra
named loss terms; --max-time is split over a tiled scale's tiles."""

from __future__ import annotations

import ast
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import painterly
from painterly import PainterlyError, cli
from painterly.driver import Session
from painterly.features import FeatureExtractor
from painterly.methods.gatys import GATYS, Gatys, GatysConfig
from painterly.recipe import REGISTRY, Recipe, register
from painterly.schedule import Scale


# --- a toy method: colour statistics transfer, one forward pass per scale or tile (~30 lines) ------
@dataclass(frozen=True)
class ToyConfig(painterly.CommonConfig):
    strength: float = painterly.option(1.0, "how far to move the colours", minimum=0, group="toy")


@dataclass(frozen=True)
class ToyMemory:
    def scale_bytes(self, size, tiling, iterations):
        return 64 * (size[0] * size[1] if tiling is None else tiling.tile ** 2)


class Toy(Recipe):
    name, config_class, summary, optimises = "toy", ToyConfig, "per-channel colour statistics of the style", False

    def layers(self, config): return []
    def scales(self, config, final): return [Scale(*final, 1)]
    def memory(self, config, style_hws, precision): return ToyMemory()
    def start(self, run, k, scale, previous): return painterly.api.resize(run.content, scale.size)

    def style_targets(self, run, k, scale):
        s = torch.cat([x.flatten(2) for x in run.styles], dim=2)
        return s.mean(2, keepdim=True)[..., None], s.std(2, keepdim=True)[..., None]

    def targets(self, run, k, scale, style, box):  # statistics of the whole content, so tiles match
        c = painterly.api.resize(run.content, scale.size)
        return style, (c.mean((2, 3), keepdim=True), c.std((2, 3), keepdim=True))

    def forward(self, run, targets, image):
        (sm, ss), (cm, cs) = targets
        moved = (image - cm) / cs.clamp_min(1e-5) * ss + sm
        return image + run.config.strength * (moved - image)


@pytest.fixture
def toy():
    recipe = register(Toy())
    yield recipe
    REGISTRY.pop("toy")


def _gradient(h, w, flip=False):
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 0] = np.linspace(20, 220, w, dtype=np.uint8)[None]
    a[..., 1] = np.linspace(40, 200, h, dtype=np.uint8)[:, None]
    a[..., 2] = 90
    return a[::-1, ::-1].copy() // 2 + 100 if flip else a


def test_toy_method_runs_through_the_registry_the_api_and_the_cli(toy, tmp_path, capsys):
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    Image.fromarray(_gradient(48, 64)).save(content)
    Image.fromarray(_gradient(40, 40, flip=True)).save(style)
    assert "toy" in painterly.available_methods()
    code = cli.main([str(content), str(style), "-o", str(tmp_path / "out.png"), "--method", "toy",
                     "--size", "64", "--strength", "1", "-q"])
    assert code == 0, capsys.readouterr().err
    out = np.asarray(Image.open(tmp_path / "out.png"), dtype=np.float64) / 255
    target = np.asarray(Image.open(style), dtype=np.float64) / 255
    assert np.abs(out.mean((0, 1)) - target.mean((0, 1))).max() < 0.01   # the style's mean colour
    assert np.abs(out.std((0, 1)) - target.std((0, 1))).max() < 0.01
    # a flag the toy lacks is refused in one line naming the method; its own flag shows in --help
    assert cli.main([str(content), str(style), "-o", str(tmp_path / "x.png"), "--method", "toy",
                     "--tv-weight", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--tv-weight does not apply to --method toy" in err[0]
    assert cli.main(["--method", "toy", "--help"]) == 0
    assert "--strength" in capsys.readouterr().out


def test_a_method_from_outside_the_package_reaches_the_command_line_as_a_plugin(tmp_path, capsys, monkeypatch):
    """A method registered in one's own module worked in stylize() but `painterly --method NAME` was an
    invalid choice: the command line loads $PAINTERLY_PLUGINS (and entry points of painterly.methods)."""
    (tmp_path / "my_method.py").write_text(
        "from dataclasses import dataclass\n"
        "import painterly\n"
        "from test_driver import Toy, ToyConfig\n\n"
        "@dataclass(frozen=True)\n"
        "class MineConfig(ToyConfig):\n"
        "    pass\n\n"
        "class Mine(Toy):\n"
        "    name, config_class = 'mine', MineConfig\n\n"
        "painterly.register(Mine())\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    Image.fromarray(_gradient(48, 64)).save(content)
    Image.fromarray(_gradient(40, 40, flip=True)).save(style)
    words = [str(content), str(style), "-o", str(tmp_path / "out.png"), "--method", "mine", "--size", "32", "-q"]
    assert cli.main(words) == 2 and "invalid choice: 'mine'" in capsys.readouterr().err
    monkeypatch.setenv("PAINTERLY_PLUGINS", "my_method")
    try:
        assert cli.main(words) == 0, capsys.readouterr().err
        assert Image.open(tmp_path / "out.png").size == (32, 24)
    finally:
        painterly.unregister("mine")
    # a broken plugin is a warning: it must not take --help or the built-in methods with it
    monkeypatch.setenv("PAINTERLY_PLUGINS", "no_such_module")
    assert cli.main(["--help"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["painterly: warning: plugin 'no_such_module' could not be loaded (ModuleNotFoundError: No module "
                   "named 'no_such_module')"]
    with pytest.raises(PainterlyError, match="plugin 'no_such_module' could not be loaded"):
        painterly.load_plugins()  # a script asking for them is told


def test_forward_stage_runs_one_pass_per_tile_with_whole_image_statistics(toy):
    g = torch.Generator().manual_seed(0)
    content, style = torch.rand(1, 3, 80, 120, generator=g), torch.rand(1, 3, 50, 50, generator=g) * 0.5
    seen = []
    whole = painterly.stylize(content, style, method="toy", size=120, strength=0.7)
    tiled = painterly.stylize(content, style, method="toy", size=120, strength=0.7, tile_size=64, tile_overlap=16,
                              callback=seen.append)
    with pytest.raises(PainterlyError, match="unknown option.*tile_rounds"):  # one pass: no rounds to ask for
        painterly.stylize(content, style, method="toy", size=120, tile_rounds=2)
    plan = painterly.plan((80, 120), method="toy", size=120, tile_size=64, tile_overlap=16)
    tiles = plan.scales[0].tiling.tile_count((80, 120))
    assert len(seen) == tiles > 2                       # one forward pass (and one report) per tile
    assert [s.iteration for s in seen] == list(range(1, tiles + 1))
    diff = np.abs(np.asarray(whole, dtype=int) - np.asarray(tiled, dtype=int)).max()
    assert diff <= 1                                    # global statistics: tiles agree with the whole image


@pytest.fixture(scope="module")
def tiny():
    return FeatureExtractor.random(seed=0, last_layer="relu5_1", precision="fp32")


class CountingGatys(Gatys):
    def __init__(self):
        self.style_calls = 0

    def style_targets(self, run, k, scale):
        self.style_calls += 1
        return super().style_targets(run, k, scale)


def session_plan_final(session, content):
    from painterly.driver import make_plan
    return make_plan(session.recipe, session.config, tuple(content.shape[-2:]), [(32, 32)], "cpu", "fp32")[-1]


def test_session_reuses_style_targets_across_frames_and_takes_extra_terms(tiny):
    g = torch.Generator().manual_seed(2)
    frames = [torch.rand(1, 3, 32, 48, generator=g) for _ in range(3)]
    style = torch.rand(1, 3, 32, 32, generator=g)
    config = GatysConfig(size=48, iterations=4, scales=2, precision="fp32", device="cpu", seed=1, style_weight=1e4)
    recipe = CountingGatys()
    session = Session(recipe, config, [style], extractor=tiny)
    teal = torch.tensor([0.1, 0.6, 0.6]).view(1, 3, 1, 1)
    infos = []

    def pull(image, place):  # the shape of video's temporal term: a map resized and cut to the place
        return 50.0 * ((image - place.crop(teal.expand(1, 3, 32, 48))) ** 2).mean()

    plain = [session.run(f, frame=i) for i, f in enumerate(frames[:2])]
    pulled = session.run(frames[2], extra_terms={"pull": pull}, frame=2, callback=infos.append)
    # the final scale's once, not once per frame; the coarser scale's each frame, since they are not held
    # through the finer scale's peak (video's later frames run the final scale alone)
    assert recipe.style_calls == 1 + 3
    assert list(session._style_cache) == [(1, session_plan_final(session, frames[0]))]
    assert all(info.frame == 2 and "pull" in info.losses for info in infos)
    assert infos[-1].losses["pull"] < infos[0].losses["pull"]
    reference = Session(GATYS, config, [style], extractor=tiny).run(frames[2])
    distance = lambda img: float((img - teal).abs().mean())
    assert distance(pulled) < distance(reference) - 0.02
    assert not torch.equal(plain[0], plain[1])


def test_max_time_is_split_over_the_tiles_of_a_tiled_scale(tiny, monkeypatch):
    """A fake clock advances 1 s per step: with --max-time shorter than the scale's iterations, every
    tile still gets steps (before the fix the first tiles took the whole scale's time)."""
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    g = torch.Generator().manual_seed(3)
    content, style = torch.rand(1, 3, 96, 128, generator=g), torch.rand(1, 3, 40, 40, generator=g)
    steps = []

    def tick(info):
        steps.append(info.iteration)
        now[0] += 1.0

    config = GatysConfig(size=128, iterations=10, scales=1, tile_size=64, tile_overlap=16, tile_rounds=1,
                         max_time=12.5, precision="fp32", device="cpu", seed=0, optimizer="adam")
    painterly.driver.run(content, [style], config, extractor=tiny, callback=tick)
    tiles = config_tiles = len(painterly.plan((96, 128), config=config).scales[0].tiling.boxes((96, 128), 0))
    per_tile = [sum(1 for i in steps if (i - 1) // 10 == t) for t in range(config_tiles)]
    assert tiles >= 4 and all(n >= 1 for n in per_tile), per_tile
    assert len(steps) <= 13


def test_a_callback_that_raises_stop_run_ends_the_run_there_at_the_size_asked_for(tiny):
    """A researcher stopping once the loss levels off got an exception and lost the picture; StopRun ends
    the run after that step (its later tiles and scales skipped) and returns the picture so far."""
    g = torch.Generator().manual_seed(3)
    content, style = torch.rand(1, 3, 48, 64, generator=g), torch.rand(1, 3, 40, 40, generator=g)
    config = GatysConfig(size=64, iterations=6, scales=2, precision="fp32", device="cpu", seed=0)
    seen = []

    def stop_at(scale: int, iteration: int):
        def callback(info):
            seen.append((info.scale, info.iteration))
            if (info.scale, info.iteration) == (scale, iteration):
                raise painterly.StopRun
        return callback

    session = Session(GATYS, config, [style], extractor=tiny)
    out = session.run(content, callback=stop_at(0, 2))
    assert seen == [(0, 1), (0, 2)] and session.stopped_early == "callback"
    assert out.shape == content.shape and (out - content).abs().mean() > 1e-3  # the coarse picture, enlarged
    seen.clear()
    tiled = dataclasses.replace(config, size=96, scales=1, tile_size=64, tile_overlap=16, tile_rounds=1)
    big = torch.rand(1, 3, 72, 96, generator=g)
    session = Session(GATYS, tiled, [style], extractor=tiny)
    out = session.run(big, callback=stop_at(0, 8))  # the second tile's second iteration
    assert seen[-1] == (0, 8) and len(seen) == 8 and out.shape == big.shape
    assert session.stopped_early == "callback"
    full = session.run(big)
    assert session.stopped_early is None
    assert not torch.equal(out, full)


def test_a_run_max_time_cuts_short_says_so(tiny, monkeypatch):
    """--max-time that left no time for any iteration returned the start image with no sign of it."""
    from helpers import use_fake_clock

    clock = use_fake_clock(monkeypatch, "painterly.driver", "painterly.optimize")
    g = torch.Generator().manual_seed(3)
    content, style = torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g)
    config = GatysConfig(size=32, iterations=4, scales=1, precision="fp32", device="cpu", seed=0, max_time=2.5)
    session = Session(GATYS, config, [style], extractor=tiny)
    session.run(content, callback=lambda info: clock.advance(1.0))
    assert session.stopped_early == "max_time"
    session = Session(GATYS, dataclasses.replace(config, max_time=None), [style], extractor=tiny)
    session.run(content, callback=lambda info: clock.advance(1.0))
    assert session.stopped_early is None


@pytest.mark.parametrize("module", ["cli.py", "cli_train.py", "cli_serve.py", "cli_video.py", "cli_batch.py", "cli_flags.py"])
def test_cli_imports_nothing_but_the_public_api(module):
    tree = ast.parse((Path(cli.__file__).parent / module).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level and node.module in ("cli", "cli_args", "cli_train",
                                                                                "cli_serve", "cli_video", "cli_batch",
                                                                                "cli_flags"):
            continue  # the command line's modules share their parser helpers
        if module == "cli_serve.py" and isinstance(node, ast.ImportFrom) and node.module == "web":
            continue  # `painterly serve` starts the web app, itself held to the public API (next test)
        if isinstance(node, ast.ImportFrom) and node.level:
            assert node.module is None, f"cli imports painterly.{node.module}"
            assert all(a.name in painterly.__all__ or a.name == "__version__" for a in node.names), \
                [a.name for a in node.names if a.name not in painterly.__all__]
        elif isinstance(node, ast.ImportFrom):
            assert not node.module.startswith("painterly"), node.module
    for name in ("api", "driver", "web"):
        assert not any(isinstance(n, ast.Import) and any(a.name.startswith("painterly") for a in n.names)
                       for n in ast.walk(tree)), name


def test_web_app_uses_nothing_but_the_public_api():
    """painterly.web reaches painterly only as `painterly.NAME` with NAME public, or its own modules."""
    folder = Path(painterly.__file__).parent / "web"
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 1 or not (node.module or "").startswith("painterly"), (path.name, node.module)
            elif isinstance(node, ast.Import):
                assert all(a.name == "painterly" or not a.name.startswith("painterly") for a in node.names)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "painterly":
                assert node.attr in painterly.__all__ or node.attr == "__version__", (path.name, node.attr)


def test_no_method_name_is_tested_outside_its_module():
    """No `== "gatys"` or `in ("gatys", ...)` anywhere but in the method's own module."""
    root = Path(painterly.__file__).parent
    names = set(painterly.available_methods())
    for path in root.rglob("*.py"):
        if path.parent.name == "methods":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                constants = [c for c in ast.walk(node) if isinstance(c, ast.Constant) and c.value in names]
                assert not constants, f"{path.name}:{node.lineno} compares with a method name"


def test_an_optimising_method_needs_the_optimisation_options():
    """The driver reads seed, max_time and tile_rounds from an optimising method's config: register()
    refuses one whose config lacks them, in one line, before any run can fail on them."""
    class Optimising(Toy):
        name, optimises = "optimising toy", True

    with pytest.raises(PainterlyError, match="must derive from OptimisationConfig"):
        register(Optimising())
    assert "optimising toy" not in REGISTRY


def test_register_refuses_what_would_go_wrong_later_and_a_subclassed_config_is_its_own_method():
    """A config subclassing GatysConfig ran Gatys (method_of took the first isinstance match); a recipe named as
    a built-in replaced it unseen; one missing a hook registered, then failed with a bare NotImplementedError."""
    from painterly.methods.gatys import Gatys

    @dataclass(frozen=True)
    class VariantConfig(painterly.GatysConfig):
        extra: float = painterly.option(1.0, "a variant's own weight", minimum=0)

    class Variant(Gatys):
        name, config_class = "variant", VariantConfig

    register(Variant())
    try:
        assert painterly.method_of(VariantConfig()) == "variant" and painterly.method_of(GatysConfig()) == "gatys"
        assert painterly.plan((48, 64), config=VariantConfig(size=64)).method == "variant"

        class Variant(Gatys):  # noqa: F811 - the same recipe defined again (a module reloaded, a cell run twice)
            name, config_class = "variant", VariantConfig

        register(Variant())
        assert type(REGISTRY["variant"]) is Variant
    finally:
        painterly.unregister("variant")

    class Impostor(Gatys):
        name, config_class = "strotss", VariantConfig

    with pytest.raises(PainterlyError, match="a method named 'strotss' is registered already"):
        register(Impostor())
    assert type(REGISTRY["strotss"]).__name__ == "Strotss"

    class Twin(Gatys):
        name = "twin"

    with pytest.raises(PainterlyError, match="method 'gatys' has the config class GatysConfig already"):
        register(Twin())

    class Unfinished(Recipe):
        name, config_class, summary, optimises = "unfinished", ToyConfig, "", False

        def layers(self, config): return []

    with pytest.raises(PainterlyError, match="method 'unfinished' must define scales, memory, targets, start, "
                                             "forward"):
        register(Unfinished())
    assert "twin" not in REGISTRY and "unfinished" not in REGISTRY
    with pytest.raises(PainterlyError, match="no method named 'nothing'"):
        painterly.unregister("nothing")


def test_options_no_one_method_takes_are_named_with_their_methods():
    with pytest.raises(PainterlyError, match=r"do not pick one method: model \(network\), seed \(gatys, strotss\)"):
        painterly.make_config(model="starry_night", seed=0)
    with pytest.raises(PainterlyError, match=r"^unknown option sede \(did you mean seed\?\)$"):  # a typo
        painterly.make_config(sede=1)
    # a misspelt name beside a network's option is told as a misspelling, not as `model` unknown to gatys;
    # stylize()'s own keywords are suggested too
    with pytest.raises(PainterlyError, match=r"^unknown option style_mask \(did you mean style_masks\?\)$"):
        painterly.make_config(model="four_paintings", style_mask=["a.png"])
    with pytest.raises(PainterlyError, match=r"^unknown options flavour, iteratons \(did you mean iterations\?\)$"):
        painterly.make_config(iteratons=3, flavour=1)
    with pytest.raises(PainterlyError, match=r"^unknown method 'AdaIN' \(did you mean adain\?\); choose from "):
        painterly.get_method("AdaIN")  # names are lower case, as the CLI's --method takes them
