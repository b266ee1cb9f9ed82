"""Config values are checked by type and bounds from the field declarations, whatever their source
(Python, a JSON config file, the CLI); API tensors must be floats in [0, 1]."""

from __future__ import annotations

import json

import pytest
import torch

import painterly
from painterly import GatysConfig, PainterlyError, StrotssConfig, cli


@pytest.mark.parametrize("cls,field,value,fragment", [
    (GatysConfig, "size", "512", "size must be a whole number, got str '512'"),
    (GatysConfig, "size", 512.0, "size must be a whole number"),
    (GatysConfig, "iterations", True, "iterations must be a whole number, got bool"),
    (GatysConfig, "style_weight", "10", "style-weight must be a number"),
    (GatysConfig, "style_layers", "relu1_1", "style-layers must be a list of strings"),
    (GatysConfig, "style_blend_weights", (1, "a"), "style-blend-weights must be a list of numbers"),
    (GatysConfig, "style_set", 1, "style-set must be true or false"),
    (StrotssConfig, "samples", 10.5, "samples must be a whole number"),
    (StrotssConfig, "max_memory", "4", "max-memory must be a number or None"),
])
def test_a_value_of_the_wrong_type_names_the_field(cls, field, value, fragment):
    with pytest.raises(PainterlyError, match=fragment.replace("(", r"\(")):
        cls(**{field: value})


def test_numbers_and_lists_are_taken_as_their_field_types():
    c = GatysConfig(style_weight=5, style_blend_weights=[1, 2], scale_iterations=[3, 2])
    assert c.style_weight == 5.0 and isinstance(c.style_weight, float)
    assert c.style_blend_weights == (1.0, 2.0) and c.scale_iterations == (3, 2)


@pytest.mark.parametrize("options,fragment", [
    ({"size": 8}, "size must be at least 16"), ({"content_weight": -1}, "content-weight must not be negative"),
    ({"max_time": 0}, "max-time must be positive"), ({"optimizer": "sgd"}, "optimizer must be lbfgs or adam"),
    ({"tile_rounds": 0}, "tile-rounds must be at least 1"), ({"style_layer_weights": (1, -1, 1, 1, 1)},
                                                             "style-layer-weights must not be negative"),
])
def test_bounds_and_choices(options, fragment):
    with pytest.raises(PainterlyError, match=fragment):
        GatysConfig(**options)


def test_json_config_with_a_wrong_type_is_one_line(tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"size": "512"}))
    code = cli.main(["--config", str(path), "--config-json"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "size must be a whole number" in err[0] and str(path) in err[0]
    assert GatysConfig.from_json(GatysConfig(size=64).to_json()) == GatysConfig(size=64)
    with pytest.raises(PainterlyError, match="unknown option"):
        GatysConfig.from_json('{"sise": 64}')


def test_api_refuses_a_wrong_type_before_any_work():
    with pytest.raises(PainterlyError, match="size must be a whole number"):
        painterly.stylize(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), size="64")


@pytest.mark.parametrize("tensor,fragment", [
    (torch.rand(1, 3, 32, 32) * 255, "looks like 0..255"),
    (torch.rand(1, 3, 32, 32) - 0.5, r"values in \[-"),
    ((torch.rand(1, 3, 32, 32) * 255).to(torch.uint8), "float tensors"),
    (torch.full((1, 3, 32, 32), float("nan")), "values in"),
])
def test_api_refuses_tensors_outside_zero_one(tensor, fragment):
    with pytest.raises(PainterlyError, match=fragment):
        painterly.stylize(tensor, torch.rand(1, 3, 32, 32), size=32, iterations=1)


def test_api_accepts_a_tensor_barely_outside_by_rounding():
    from painterly.image import as_tensor

    t = as_tensor(torch.rand(1, 3, 8, 8) * 1.004 - 0.002)
    assert float(t.min()) >= 0 and float(t.max()) <= 1


def test_an_input_a_method_does_not_take_is_refused_naming_it():
    with pytest.raises(PainterlyError, match="method 'strotss' takes no style masks"):
        painterly.stylize(torch.rand(1, 3, 32, 32), [torch.rand(1, 3, 32, 32)], method="strotss", size=32,
                          style_masks=[torch.ones(1, 1, 32, 32)])
    # before the maps are counted against the styles: a network has none, and the count said so
    guide = torch.zeros(1, 3, 32, 32)
    for maps in ({"content_guidance": guide, "style_guidance": [guide]}, {"content_guidance": guide}):
        with pytest.raises(PainterlyError, match="method 'network' takes no guidance maps"):
            painterly.stylize(torch.rand(1, 3, 32, 32), model="starry_night", size=32, **maps)


@pytest.mark.parametrize("make", [
    lambda v: GatysConfig(style_weight=v), lambda v: GatysConfig(max_time=v),
    lambda v: GatysConfig(style_blend_weights=(v, 1.0)), lambda v: painterly.VideoConfig(temporal_weight=v),
    lambda v: painterly.make_config("adain", strength=v), lambda v: painterly.make_config("network", style_weights=(v,)),
    lambda v: StrotssConfig.from_json(json.dumps({"content_weight": v}))])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_number_that_is_not_finite_is_refused(make, value):
    """A NaN strength made a black picture, a NaN temporal weight black frames, with exit 0."""
    with pytest.raises(PainterlyError, match=r"must be a finite number, got .*(nan|inf)"):
        make(value)


def test_seeds_span_what_torch_takes_and_numpy_numbers_count():
    assert GatysConfig(seed=2**64 - 1).seed == 2**64 - 1 and GatysConfig(seed=-(2**63)).seed == -(2**63)
    with pytest.raises(PainterlyError, match="seed must be at most 18446744073709551615, got 18446744073709551616"):
        GatysConfig(seed=2**64)
    with pytest.raises(PainterlyError, match="seed must be at least -9223372036854775808"):
        GatysConfig(seed=-(2**63) - 1)
    with pytest.raises(PainterlyError, match="seed must be at most"):
        painterly.TrainConfig(seed=2**64)
    assert GatysConfig(seed=-1).seed is None and GatysConfig(seed=-2).seed == -2  # -1 draws one, as neural-style's
    np = pytest.importorskip("numpy")
    config = GatysConfig(size=np.int64(48), style_weight=np.float32(2.5), seed=np.uint32(7))
    assert (config.size, config.style_weight, config.seed) == (48, 2.5, 7)
    assert type(config.size) is int and type(config.seed) is int  # JSON and fingerprints see plain numbers
    with pytest.raises(PainterlyError, match="size must be"):
        GatysConfig(size=np.float64(48.5))


def test_a_plan_of_an_empty_size_is_refused():
    with pytest.raises(PainterlyError, match=r"each at least 1; got \(0, 0\)"):
        painterly.plan((0, 0))


def test_preflight_refuses_what_the_run_would_and_returns_its_plan():
    """What a queue calls before accepting a job: the run's refusals without the run (the web app used to
    copy them), and the plan it would follow."""
    content, style = torch.rand(1, 3, 32, 48), torch.rand(1, 3, 32, 32)
    made = painterly.preflight(content, style, size=48, scales=1, iterations=3)
    assert made.method == "gatys" and made.scales[-1].size == (32, 48) and made.scales[-1].iterations == 3
    for options, words in (({"threads": 10**6}, "threads 1000000 is more than the"),
                           ({"style_blend_weights": (1, 2)}, "style-blend-weights has 2 values for 1 style image"),
                           ({"content_guidance": torch.zeros(1, 3, 32, 48)}, "guidance needs both"),
                           ({"max_memory": 0.01}, "no size fits")):
        with pytest.raises(PainterlyError, match=words):
            painterly.preflight(content, style, size=48, **options)
    with pytest.raises(PainterlyError, match="style weights must be non-negative and not all zero"):
        painterly.preflight(content, model="four_paintings", style_weights=(0, 0, 0, 0), size=48)
    # the memory of the style images given, not of one (STROTSS holds each style's features: one fits in
    # 0.685 GiB, four do not, and the run refuses them, so preflight does)
    options = dict(method="strotss", size=64, max_memory=0.685, iterations=1, precision="fp32")
    painterly.preflight(content, style, **options)
    with pytest.raises(PainterlyError, match=r"a 64x43 image needs about [\d.]+ GiB, over the 0.685 GiB available"):
        painterly.preflight(content, [style] * 4, **options)


def test_file_options_take_paths_and_refuse_a_loaded_network_as_what_it_is_not():
    """model=, decoder=, decoders= and init= name files: a pathlib.Path is taken as its string (every
    other path argument takes one); a network load_model() returned is refused, saying the file is read."""
    from pathlib import Path

    model = Path(painterly.__file__).parent / "models" / "starry_night.safetensors"
    assert painterly.make_config(model=model).model == str(model)
    assert painterly.make_config(method="wct", levels=["relu4_1", "relu2_1"],
                                 decoders=[Path("a.safetensors"), "b.safetensors"]).decoders == ("a.safetensors",
                                                                                                  "b.safetensors")
    assert painterly.make_config(init=Path("start.png")).init == "start.png"
    with pytest.raises(PainterlyError, match=r"^model must be a name or a file path, got TransformerNet: give the "
                                             r"file load_model read \(it is loaded once a process and kept\)$"):
        painterly.make_config(model=painterly.load_model("starry_night"))


def test_the_largest_seed_runs_every_scale():
    """Each scale seeds its generator with the seed plus a stride; near 2**64 - 1 the sum passed what
    torch takes ("Overflow when unpacking long long" at the second scale). It wraps instead."""
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = painterly.stylize(image, image.flip(-1), size=32, iterations=1, coarse_iterations=1, scales=2,
                            seed=2**64 - 1, precision="fp32", init="noise")
    assert out.size == (32, 32) and out.info["seed"] == 2**64 - 1
    # what else sets the pixels is said beside the seed, as it was resolved (auto's precision, None's threads)
    assert out.info["precision"] == "fp32" and out.info["device"] == "cpu"
    assert out.info["threads"] == painterly.usable_cpus()


def test_options_that_size_work_are_bounded_before_any_is_planned():
    """One web request of size 10**30, scales 10**6 or pyramid levels 10**6 had the planner allocate until the
    server was killed or spin for minutes; each bound is where no run needs more, refused at once."""
    from painterly.config import MAX_SCALES, MAX_SIZE

    for make, words in [(lambda: GatysConfig(size=10**30), f"size must be at most {MAX_SIZE}"),
                        (lambda: GatysConfig(scales=10**6), f"scales must be at most {MAX_SCALES}"),
                        (lambda: GatysConfig(scale_iterations=(1,) * (MAX_SCALES + 1)), "at most 13 scales"),
                        (lambda: painterly.StrotssConfig(pyramid_levels=10**6), "pyramid-levels must be at most"),
                        (lambda: painterly.StrotssConfig(samples=65536), "samples must be at most 4096"),
                        (lambda: painterly.plan((4000, 4000), size=MAX_SIZE, tile_size=64),
                         "--tile-size 64 makes over 20000 tiles of a 65536x65536 image; use --tile-size 464")]:
        with pytest.raises(PainterlyError, match=words):
            make()
    assert GatysConfig(size=MAX_SIZE, scales=MAX_SCALES).scales == MAX_SCALES  # 65536 px down to 16 px
