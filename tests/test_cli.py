"""The `painterly` command: flags reach the config, outputs appear, every user error is one line."""

from __future__ import annotations

import json
import shlex
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import torch

import painterly
import painterly.cli as cli
from painterly import GatysConfig
from painterly.image import as_tensor, pil_to_tensor, resize, rgb_to_yiq

FAST = ["--size", "48", "--iterations", "3", "--scales", "1", "--seed", "0"]


@pytest.fixture
def images(tmp_path):
    """Tiny content and style images (48x64 gradients) in tmp_path."""
    a = np.zeros((48, 64, 3), np.uint8)
    a[..., 0] = np.linspace(0, 255, 64, dtype=np.uint8)[None]
    a[..., 1] = np.linspace(0, 255, 48, dtype=np.uint8)[:, None]
    a[..., 2] = (np.arange(64)[None] // 8 % 2 * 200).astype(np.uint8)
    content, style, style2 = tmp_path / "content.png", tmp_path / "style.png", tmp_path / "style2.jpg"
    Image.fromarray(a).save(content)
    Image.fromarray(255 - a).save(style)
    Image.fromarray(a[::-1, ::-1].copy()).save(style2)
    return {"content": str(content), "style": str(style), "style2": str(style2), "dir": tmp_path}


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(err: str, *fragments: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("painterly: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def assert_nothing_written(folder: Path, stem: str = "out") -> None:
    left = [p.name for p in folder.rglob("*") if p.name.startswith((stem, f".{stem}")) or p.name.endswith(".part")]
    assert left == [], left


@pytest.fixture
def no_stylize(monkeypatch):
    """For error tests that must fail before any optimisation starts."""
    def forbidden(*args, **kwargs):
        raise AssertionError("stylize must not be called")

    monkeypatch.setattr(cli, "stylize", forbidden)


# --- success ----------------------------------------------------------------------------------------

def test_end_to_end_with_log_comparison_and_intermediates(images, capsys):
    d = images["dir"]
    out = d / "out.png"
    code, stdout, err = run([images["content"], images["style"], images["style2"], "-o", out, *FAST,
                             "--style-blend-weights", "1,2", "--log", "--comparison", "--save-every", "2"], capsys)
    assert code == 0, err
    assert "Traceback" not in err
    assert "scale 1/1" in err and "wrote" in err  # progress bar and summary on stderr
    assert stdout == ""

    result = Image.open(out)
    assert result.size == (48, 36) and result.mode == "RGB"

    records = json.loads((d / "out.json").read_text())
    assert [r["step"] for r in records] == [1, 2, 3]
    for r in records:
        assert {"content", "style", "total"} <= set(r)
        assert r["total"] == pytest.approx(r["content"] + r["style"])
        assert r["size"] == [48, 36]  # width first, as the summary line and the web API say sizes
    assert Image.open(d / "out.loss.png").size == (800, 480)

    compare = Image.open(d / "out.compare.png")
    assert compare.width > 3 * compare.height > 0  # content | style | style | result

    assert (d / "out_0002.png").is_file()
    assert not (d / "out_0001.png").exists() and not (d / "out_0003.png").exists()
    assert [p for p in d.iterdir() if p.name.endswith(".part")] == []


def test_quiet_run_with_jpeg_output(images, capsys):
    out = images["dir"] / "quiet.jpg"
    code, stdout, err = run([images["content"], images["style"], "-o", out, "--quiet", "--size", "32",
                             "--iterations", "1", "--scales", "1"], capsys)
    assert code == 0
    assert err == "" and stdout == ""
    result = Image.open(out)
    assert result.size == (32, 24) and result.format == "JPEG"
    assert not (images["dir"] / "quiet.json").exists()


def _pixels(path) -> torch.Tensor:
    return pil_to_tensor(Image.open(path))


def _at(path, hw) -> torch.Tensor:
    return resize(as_tensor(str(path)), hw)


def test_init_file_is_where_the_run_starts(images, capsys):
    """--init FILE: a 0-iteration run writes that image at the output's size; a short Adam run from it
    stays far closer to it than to the content."""
    d = images["dir"]
    common = [images["content"], images["style"], "--quiet", "--size", "32", "--scales", "1", "--seed", "0",
              "--precision", "fp32", "--device", "cpu", "--init", images["style2"]]
    code, _, err = run([*common, "-o", d / "zero.png", "--iterations", "0"], capsys)
    assert code == 0, err
    init, content = _at(images["style2"], (24, 32)), _at(images["content"], (24, 32))
    assert (_pixels(d / "zero.png") - init).abs().max() <= 0.5 / 255 + 1e-6
    code, _, err = run([*common, "-o", d / "adam.png", "--iterations", "2", "--optimizer", "adam"], capsys)
    assert code == 0, err
    out = _pixels(d / "adam.png")
    assert (out - init).abs().mean() < 0.25 * (out - content).abs().mean()


def test_init_takes_a_picture_in_python_as_content_and_styles_do(images):
    """stylize(init=PIL image) was refused ("init must be a name or a file path"), though every other image
    argument takes pictures; it starts from that picture as from its file, and preflight takes it too."""
    options = {"size": 32, "scales": 1, "seed": 0, "precision": "fp32", "iterations": 0}
    picture = Image.open(images["style2"])
    from_file = painterly.stylize(images["content"], images["style"], init=images["style2"], **options)
    for given in (picture, np.asarray(picture)):
        assert np.array_equal(np.asarray(painterly.stylize(images["content"], images["style"], init=given, **options)),
                              np.asarray(from_file))
    assert painterly.preflight(images["content"], images["style"], init=picture, **options).scales
    with pytest.raises(painterly.PainterlyError, match=r"^unknown option\(s\) for adain: init$"):
        painterly.stylize(images["content"], images["style"], method="adain", init=picture, size=32)


def test_init_model_starts_from_the_networks_picture(images, tmp_path, capsys):
    """--init model:FILE: a 0-iteration run writes the network's picture of the content; an unknown
    model or an empty name is one line, exit 2, no file; the web may offer model:NAME for bundled models."""
    from painterly.nets.io import save_model
    from painterly.nets.transformer import Architecture, TransformerNet

    torch.manual_seed(0)
    net = TransformerNet(Architecture((4, 8, 8), 1, 1)).eval()
    with torch.no_grad():  # a picture far from the content
        for norm in net.norms:
            norm.shift.add_(torch.randn_like(norm.shift))
    model = save_model(tmp_path / "m.safetensors", net, {"styles": ["a"]})
    d = images["dir"]
    common = [images["content"], images["style"], "--quiet", "--size", "32", "--scales", "1", "--seed", "0",
              "--precision", "fp32", "--device", "cpu", "--iterations", "0"]
    code, _, err = run([*common, "--init", f"model:{model}", "-o", d / "net.png"], capsys)
    assert code == 0, err
    picture = pil_to_tensor(painterly.stylize(images["content"], model=str(model), size=32, device="cpu",
                                              precision="fp32"))  # the picture is fp32 unless the run is bf16
    out, content = _pixels(d / "net.png"), _at(images["content"], (24, 32))
    assert (out - picture).abs().max() <= 1 / 255 + 1e-6
    assert (picture - content).abs().mean() > 0.05
    for init, words in ((f"model:{tmp_path / 'missing.safetensors'}", "does not exist"), ("model:", "names no model")):
        code, _, err = run([*common, "--init", init, "-o", d / "bad.png"], capsys)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
        assert not (d / "bad.png").exists()
    names = next(r["names"] for r in painterly.method_options("gatys") if r["name"] == "init")
    assert {"content", "noise", "style", "model:starry_night", "model:four_paintings"} <= set(names)


def test_preserve_color_luminance_keeps_the_contents_chroma(images, capsys):
    """--preserve-color luminance: the output's chroma (YIQ I, Q) is the content's, its luminance the
    run's; without it, a run started from another image keeps that image's chroma."""
    d = images["dir"]
    common = [images["content"], images["style"], "--quiet", "--size", "32", "--scales", "1", "--seed", "0",
              "--precision", "fp32", "--device", "cpu", "--init", images["style2"], "--iterations", "2"]
    code, _, err = run([*common, "-o", d / "kept.png", "--preserve-color", "luminance"], capsys)
    assert code == 0, err
    code, _, err = run([*common, "-o", d / "plain.png"], capsys)
    assert code == 0, err
    kept, plain = rgb_to_yiq(_pixels(d / "kept.png")), rgb_to_yiq(_pixels(d / "plain.png"))
    content = rgb_to_yiq(_at(images["content"], (24, 32)))
    rgb = _pixels(d / "kept.png")
    unclamped = ((rgb > 2 / 255) & (rgb < 253 / 255)).all(dim=1, keepdim=True).expand(-1, 2, -1, -1)
    assert unclamped.float().mean() > 0.5
    assert (kept[:, 1:] - content[:, 1:])[unclamped].abs().max() < 0.01  # 8-bit rounding only
    assert (plain[:, 1:] - content[:, 1:]).abs().mean() > 0.05
    # ... and the luminance is the run's (where the content's chroma on it stays in gamut, unclamped)
    assert (kept[:, :1] - plain[:, :1])[unclamped[:, :1]].abs().max() < 0.01


def test_flags_reach_the_config(images, capsys, monkeypatch):
    seen = {}

    def fake_stylize(content, styles, *, config, callback, **kwargs):
        seen.update(content=content, styles=styles, config=config, callback=callback)
        return Image.new("RGB", (8, 6))

    monkeypatch.setattr(cli, "stylize", fake_stylize)
    out = images["dir"] / "out.png"
    code, _, err = run([images["content"], "--quiet", images["style"], "-o", out, images["style2"],  # intermixed
                        "--size", "64", "--iterations", "7", "--coarse-iterations", "2", "--scales", "2",
                        "--seed", "3", "--optimizer", "adam", "--learning-rate", "0.5", "--init", "noise",
                        "--content-weight", "2", "--style-weight", "30", "--tv-weight", "0.1",
                        "--content-layers", "relu3_2,block4_conv2", "--style-layers", "relu1_1, relu2_1",
                        "--content-layer-weights", "1,2", "--style-layer-weights", "0.5,1.5",
                        "--style-blend-weights", "3,1", "--style-scale", "1.5", "--pooling", "max",
                        "--preserve-color", "histogram", "--precision", "fp32", "--max-time", "12.5",
                        "--device", "cpu"], capsys)
    assert code == 0, err
    c = seen["config"]
    assert (c.size, c.iterations, c.coarse_iterations, c.scales, c.seed) == (64, 7, 2, 2, 3)
    assert (c.optimizer, c.learning_rate, c.init) == ("adam", 0.5, "noise")
    assert (c.content_weight, c.style_weight, c.tv_weight) == (2.0, 30.0, 0.1)
    assert c.content_layers == ("relu3_2", "conv4_2") and c.style_layers == ("relu1_1", "relu2_1")
    assert c.content_layer_weights == (1.0, 2.0) and c.style_layer_weights == (0.5, 1.5)
    assert c.style_blend_weights == (3.0, 1.0) and c.style_scale == 1.5
    assert (c.pooling, c.preserve_color, c.precision, c.max_time, c.device) == ("max", "histogram", "fp32", 12.5, "cpu")
    assert seen["content"] == images["content"] and seen["styles"] == [images["style"], images["style2"]]
    assert seen["callback"] is None  # --quiet, no --log, no --save-every
    assert Image.open(out).size == (8, 6)


def test_defaults_come_from_gatys_config(capsys):
    code, stdout, _ = run(["--config-json"], capsys)
    assert code == 0
    assert GatysConfig.from_json(stdout) == GatysConfig()


def test_config_json_round_trips_through_config(tmp_path, capsys):
    code, stdout, _ = run(["--config-json", "--size", "64", "--style-layers", "relu1_1,relu3_1",
                           "--scales", "auto", "--content-layers", "none"], capsys)
    assert code == 0
    cfg = GatysConfig.from_json(stdout)
    assert cfg.size == 64 and cfg.style_layers == ("relu1_1", "relu3_1") and cfg.content_layers == ()
    (tmp_path / "cfg.json").write_text(stdout)
    code, stdout, _ = run(["--config", tmp_path / "cfg.json", "--config-json", "--iterations", "5"], capsys)
    assert code == 0
    again = GatysConfig.from_json(stdout)
    assert again == painterly.make_config(config=cfg, iterations=5)


@pytest.mark.parametrize("words", [["--method", "adain", "--strength", "0.5"], ["--model", "four_paintings"]])
def test_a_saved_config_of_another_method_is_read_back_without_naming_it(tmp_path, capsys, words):
    """--config-json's file names no method; read back without --method it selects the method whose options
    it holds (AdaIN's strength, a network's model), as options on the command line do."""
    code, stdout, _ = run(["--config-json", *words], capsys)
    assert code == 0
    (tmp_path / "cfg.json").write_text(stdout)
    code, again, _ = run(["--config", tmp_path / "cfg.json", "--config-json"], capsys)
    assert code == 0 and json.loads(again) == json.loads(stdout)


def test_a_config_file_may_name_its_method_as_the_web_apis_options_do(tmp_path, capsys):
    """Options copied from a web request or a manifest row carry "method", which --config refused."""
    (tmp_path / "cfg.json").write_text(json.dumps({"method": "strotss", "iterations": 7}))
    code, out, _ = run(["--config", tmp_path / "cfg.json", "--config-json"], capsys)
    assert code == 0 and painterly.StrotssConfig.from_json(out).iterations == 7
    code, _, err = run(["--config", tmp_path / "cfg.json", "--method", "gatys", "--config-json"], capsys)
    assert code == 2 and "is a strotss config" in err
    code, _, err = run(["--config", tmp_path / "cfg.json", "--model", "starry_night", "--config-json"], capsys)
    assert code == 2 and "config '" in err and "' names the method" in err  # not typed: said where it came from
    (tmp_path / "odd.json").write_text(json.dumps({"method": "pix2pix"}))
    code, _, err = run(["--config", tmp_path / "odd.json", "--config-json"], capsys)
    assert code == 2 and "unknown method 'pix2pix'" in err


def test_help_explains_every_flag(capsys):
    code, stdout, _ = run(["--help"], capsys)
    assert code == 0
    for flag in ["--size", "--iterations", "--coarse-iterations", "--scales", "--seed", "--optimizer",
                 "--learning-rate", "--init", "--content-weight", "--style-weight", "--tv-weight",
                 "--content-layers", "--style-layers", "--content-layer-weights", "--style-layer-weights",
                 "--style-blend-weights", "--style-scale", "--pooling", "--preserve-color", "--save-every",
                 "--precision", "--max-time", "--device", "--quiet", "--log", "--comparison", "--config-json",
                 "--version", "--output"]:
        assert flag in stdout, flag
    assert f"[{GatysConfig().size}]" in stdout  # defaults shown, read from GatysConfig
    listed = stdout.split("Other commands")[1]  # the other commands can be found from here
    assert all(f"\n  {command} " in listed for command in cli.SUBCOMMANDS)


@pytest.mark.parametrize("typed,meant", [("vidoe", "video"), ("trian", "train"), ("modles", "models")])
def test_a_misspelt_command_is_named_as_one(typed, meant, capsys):
    """`painterly vidoe clip.mp4 style.jpg -o x.mp4` read vidoe as the CONTENT and complained of x.mp4's
    extension; `painterly modles` asked for a CONTENT image."""
    code, _, err = run([typed, "clip.mp4", "-o", "x.mp4"], capsys)
    assert code == 2
    assert_one_error_line(err, f"unknown command '{typed}' (did you mean {meant}?)")
    code, _, err = run([f"{meant}.jpg", "style.jpg", "-o", "x.png"], capsys)  # a missing picture, not a command
    assert code == 2 and "unknown command" not in err and "does not exist" in err, err


def test_version(capsys):
    code, stdout, _ = run(["--version"], capsys)
    assert code == 0 and stdout.strip() == f"painterly {painterly.__version__}"


def test_python_dash_m_prints_one_line_and_no_traceback(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.new("RGB", (16, 16)).save(tmp_path / "style.png")
    proc = subprocess.run([sys.executable, "-m", "painterly", str(tmp_path / "broken.jpg"), str(tmp_path / "style.png"),
                           "-o", str(tmp_path / "out.png"), "--size", "32"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert_one_error_line(proc.stderr, "content image", "broken.jpg")
    assert_nothing_written(tmp_path)


INTERRUPTED_IMPORT = """
import os, signal, sys
import _painterly_command

sys.argv = ["painterly", "--version"]
if os.environ.get("IGNORED"):  # as nohup or `trap '' INT` leave it
    signal.signal(signal.SIGINT, signal.SIG_IGN)

class CtrlC:  # Ctrl-C pressed while painterly (torch with it) is still being imported
    def find_spec(self, name, path=None, target=None):
        if name == "painterly.cli":
            os.kill(os.getpid(), signal.SIGINT)

sys.meta_path.insert(0, CtrlC())
sys.exit(_painterly_command.main())
"""


def test_ctrl_c_while_painterly_imports_is_one_line_and_130(tmp_path):
    """The console script's own import line was outside every handler: a Ctrl-C in the first second or
    two of any command printed a traceback (or aborted inside torch's C++ start-up)."""
    from importlib.metadata import entry_points
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "painterly"]
    assert script.value == "_painterly_command:main"
    proc = subprocess.run([sys.executable, "-c", INTERRUPTED_IMPORT], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 130
    assert proc.stderr == "painterly: interrupted\n" and proc.stdout == ""
    # a SIGINT the parent ignored stays ignored: the command runs on
    proc = subprocess.run([sys.executable, "-c", INTERRUPTED_IMPORT], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={**os.environ, "IGNORED": "1"})
    assert proc.returncode == 0 and proc.stdout.startswith("painterly ")


# --- user errors: one line, status 2, nothing written ---------------------------------------------

def test_missing_content(images, capsys):
    d = images["dir"]
    code, _, err = run([d / "nope.png", images["style"], "-o", d / "out.png", *FAST], capsys)
    assert code == 2
    assert_one_error_line(err, "content image", "nope.png", "does not exist")
    assert_nothing_written(d)


def test_missing_style(images, capsys):
    d = images["dir"]
    code, _, err = run([images["content"], images["style"], d / "gone.jpg", "-o", d / "out.png", *FAST], capsys)
    assert code == 2
    assert_one_error_line(err, "style image", "gone.jpg", "does not exist")
    assert_nothing_written(d)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(images, capsys):
    d = images["dir"]
    Path(images["style"]).chmod(0)
    try:
        code, _, err = run([images["content"], images["style"], "-o", d / "out.png", *FAST], capsys)
    finally:
        Path(images["style"]).chmod(0o644)
    assert code == 2
    assert_one_error_line(err, "style image", "permission denied")
    assert_nothing_written(d)


def test_unreadable_file_even_as_root(images, capsys, monkeypatch):
    d = images["dir"]
    real_open = Image.open

    def open_denied(fp, *args, **kwargs):
        if str(fp) == images["style"]:
            raise PermissionError(13, "Permission denied", str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", open_denied)
    code, _, err = run([images["content"], images["style"], "-o", d / "out.png", *FAST], capsys)
    assert code == 2
    assert_one_error_line(err, "style image", "permission denied")
    assert_nothing_written(d)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_corrupt_image(images, capsys, fmt):
    d = images["dir"]
    bad = d / f"cut.{fmt.lower()}"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(bad, format=fmt)
    bad.write_bytes(bad.read_bytes()[:600])
    code, _, err = run([bad, images["style"], "-o", d / "out.png", *FAST], capsys)
    assert code == 2
    assert_one_error_line(err, "content image", "corrupt or truncated")
    assert_nothing_written(d)


def test_text_file_as_image(images, capsys):
    d = images["dir"]
    (d / "readme.jpg").write_text("this is not a picture\n")
    code, _, err = run([images["content"], d / "readme.jpg", "-o", d / "out.png", *FAST], capsys)
    assert code == 2
    assert_one_error_line(err, "style image", "not an image")
    assert_nothing_written(d)


def test_directory_as_image(images, capsys):
    d = images["dir"]
    (d / "folder.png").mkdir()
    code, _, err = run([d / "folder.png", images["style"], "-o", d / "out.png", *FAST], capsys)
    assert code == 2
    assert_one_error_line(err, "is a directory")
    assert_nothing_written(d)


def test_output_in_missing_folder(images, capsys, no_stylize):
    d = images["dir"]
    code, _, err = run([images["content"], images["style"], "-o", d / "missing" / "out.png", *FAST], capsys)
    assert code == 2
    assert_one_error_line(err, "output folder", "does not exist")
    assert not (d / "missing").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write anywhere")
def test_output_folder_read_only(images, capsys, no_stylize):
    folder = images["dir"] / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, _, err = run([images["content"], images["style"], "-o", folder / "out.png", *FAST], capsys)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)
    assert code == 2
    assert_one_error_line(err, "not writable")


def test_output_not_writable_even_as_root(images, capsys, monkeypatch, no_stylize):
    import painterly.image

    monkeypatch.setattr(painterly.image.os, "access", lambda path, mode: False)
    code, _, err = run([images["content"], images["style"], "-o", images["dir"] / "out.png", *FAST], capsys)
    assert code == 2
    assert_one_error_line(err, "not writable")
    assert_nothing_written(images["dir"])


def test_a_checkpoint_in_a_read_only_place_is_refused_before_the_run(images, capsys, monkeypatch, no_stylize):
    """A read-only --checkpoint folder was found at the run's end, which then wrote no image at all. As root
    (who passes os.access anywhere) the probe file is what finds it: made to fail there alone."""
    import errno
    import tempfile

    import painterly.image

    ro = images["dir"] / "ro"
    ro.mkdir()
    made = tempfile.mkstemp

    def read_only_there(*args, dir=None, **kwargs):
        if Path(dir) == ro:
            raise OSError(errno.EROFS, "Read-only file system")
        return made(*args, dir=dir, **kwargs)

    monkeypatch.setattr(painterly.image.tempfile, "mkstemp", read_only_there)
    code, _, err = run([images["content"], images["style"], "-o", images["dir"] / "out.png", "--checkpoint",
                        ro / "x.ckpt", *FAST], capsys)
    assert code == 2
    assert_one_error_line(err, f"checkpoint '{ro / 'x.ckpt'}' cannot be written (Read-only file system)")
    assert_nothing_written(images["dir"])


def test_unknown_output_extension(images, capsys, no_stylize):
    d = images["dir"]
    code, _, err = run([images["content"], images["style"], "-o", d / "out.gif", *FAST], capsys)
    assert code == 2
    assert_one_error_line(err, "out.gif", "unknown extension", ".png")
    assert_nothing_written(d)


def test_output_is_a_directory(images, capsys, no_stylize):
    d = images["dir"]
    (d / "out.png").mkdir()
    code, _, err = run([images["content"], images["style"], "-o", d / "out.png", *FAST], capsys)
    assert code == 2
    assert_one_error_line(err, "is a directory")


def test_an_output_that_is_an_input_is_refused_and_the_input_kept(images, capsys, no_stylize):
    """-o naming the content, a style, or a style mask (by another spelling of its path, or as the --log
    curve's side file) would replace it: one line, before any work, the file unchanged."""
    d = images["dir"]
    mask = d / "mask.png"
    Image.new("L", (64, 48), 255).save(mask)
    kept = {p: Path(p).read_bytes() for p in (images["content"], images["style"], mask)}
    for output, extra in ((images["content"], []), (d / ".." / d.name / "style.png", []),
                          (mask, ["--style-mask", mask]), (d / "x.png", ["--log", "--style-mask", d / "x.loss.png"])):
        if extra and extra[0] == "--log":
            Image.new("L", (64, 48), 255).save(d / "x.loss.png")
            kept[str(d / "x.loss.png")] = (d / "x.loss.png").read_bytes()
        code, _, err = run([images["content"], images["style"], "-o", output, *extra, *FAST], capsys)
        assert code == 2
        assert_one_error_line(err, "is an input of this run")
    assert all(Path(p).read_bytes() == data for p, data in kept.items())


def test_a_checkpoint_that_is_an_input_or_a_folder_is_refused_and_the_input_kept(images, capsys, no_stylize):
    """--checkpoint naming the content or a style would overwrite it, then delete it when the run ends; a
    folder would fail only when the first checkpoint is due: both refused before any work."""
    d = images["dir"]
    kept = {p: Path(p).read_bytes() for p in (images["content"], images["style"])}
    (d / "folder").mkdir()
    for checkpoint, words in ((images["content"], "is an input of this run"), (images["style"], "is an input"),
                              (d / "folder", "is a directory")):
        code, _, err = run([images["content"], images["style"], "-o", d / "out.png", "--checkpoint", checkpoint,
                            *FAST], capsys)
        assert code == 2
        assert_one_error_line(err, words)
    assert all(Path(p).read_bytes() == data for p, data in kept.items())


def test_dry_run_refuses_a_file_that_is_not_there(images, capsys):
    """A plan of a run that cannot start is refused as the run is: a model, decoder or init file that is
    missing or a folder (it used to plan with the defaults)."""
    d = images["dir"]
    for options, words in ((["--model", d / "none.safetensors"], "model '%s' does not exist" % (d / "none.safetensors")),
                           (["--method", "adain", "--decoder", d / "none.safetensors"], "decoder '%s' does not exist"
                            % (d / "none.safetensors")),
                           (["--method", "wct", "--levels", "relu2_1", "--decoders", d], f"decoder '{d}' is not a file"),
                           (["--init", d / "none.png"], "init image '%s' does not exist" % (d / "none.png")),
                           (["--init", f"model:{d / 'none.safetensors'}"], "does not exist")):
        styles = [] if "--model" in options else [images["style"]]
        code, out, err = run([images["content"], *styles, *options, "--dry-run"], capsys)
        assert code == 2 and out == "", options
        assert_one_error_line(err, words)
    # an output the run could not write is refused alone too, as a bad style is (the plan came first)
    code, out, err = run([images["content"], images["style"], "-o", d / "no" / "o.png", "--dry-run"], capsys)
    assert code == 2 and out == ""


def test_a_network_refuses_a_picture_thinner_than_16_px(images, capsys):
    d = images["dir"]
    Image.new("RGB", (600, 6), (90, 120, 200)).save(d / "thin.png")
    code, _, err = run([d / "thin.png", "--model", "starry_night", "-o", d / "out.png", "--size", 256], capsys)
    assert code == 2
    assert_one_error_line(err, "each side must be at least 16 px")
    assert_nothing_written(d)


@pytest.mark.parametrize("flag, value, fragment", [
    ("--content-layers", "relu4_2,relu9_9", "unknown content layer 'relu9_9'"),
    ("--style-layers", "conv1_1,fc7", "unknown style layer 'fc7'"),
])
def test_unknown_layer(images, capsys, no_stylize, flag, value, fragment):
    d = images["dir"]
    code, _, err = run([images["content"], images["style"], "-o", d / "out.png", *FAST, flag, value], capsys)
    assert code == 2
    assert_one_error_line(err, fragment)
    assert_nothing_written(d)


@pytest.mark.parametrize("args, fragment", [
    (["--style-weight", "-1"], "style-weight must not be negative"),
    (["--content-weight", "-0.5"], "content-weight must not be negative"),
    (["--tv-weight", "-2"], "tv-weight must not be negative"),
    (["--style-layer-weights=-1,1,1,1,1"], "style-layer-weights must not be negative"),
    (["--style-blend-weights=-1"], "style-blend-weights must not be negative"),
])
def test_negative_weights(images, capsys, no_stylize, args, fragment):
    d = images["dir"]
    code, _, err = run([images["content"], images["style"], "-o", d / "out.png", *FAST, *args], capsys)
    assert code == 2
    assert_one_error_line(err, fragment)
    assert_nothing_written(d)


def test_mismatched_style_blend_weights(images, capsys):
    # Checked by the method's style side (the count of style images is not known to the config), so
    # before any optimisation but inside stylize().
    d = images["dir"]
    code, _, err = run([images["content"], images["style"], images["style2"], "-o", d / "out.png", *FAST,
                        "--style-blend-weights", "1,2,3"], capsys)
    assert code == 2
    assert_one_error_line(err, "style-blend-weights has 3 values for 2 style images")
    assert_nothing_written(d)


def test_mismatched_layer_weights(images, capsys, no_stylize):
    d = images["dir"]
    code, _, err = run([images["content"], images["style"], "-o", d / "out.png", *FAST,
                        "--style-layer-weights", "1,2"], capsys)
    assert code == 2
    assert_one_error_line(err, "style-layer-weights has 2 values for 5 layers")


@pytest.mark.parametrize("args, fragment", [
    (["--style-blend-weights", "1,x"], "'x' is not a number"),
    (["--style-blend-weights", "1,,2"], "comma-separated list of numbers"),
    (["--style-layer-weights", "nan,1,1,1,1"], "not a finite number"),
    (["--content-weight", "lots"], "'lots' is not a number"),
    (["--content-layers", "relu4_2,"], "comma-separated list of layer names"),
    (["--size", "big"], "argument --size: 'big' is not a whole number or 'max'"),
    (["--scales", "0"], "scales must be at least 1, got 0"),
    (["--save-every", "0"], "argument --save-every: must be at least 1"),
    (["--optimizer", "sgd"], "invalid choice: 'sgd'"),
    (["--pooling", "min"], "invalid choice"),
    (["--preserve-color", "yes"], "invalid choice"),
    (["--precision", "fp8"], "invalid choice"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["--size"], "expected one argument"),
    (["--size", "8"], "size must be at least 16"),
    (["--iterations", "-3"], "iterations must not be negative"),
    (["--max-time", "0"], "max-time must be positive"),
    (["--style-scale", "0"], "style-scale must be positive"),
])
def test_bad_option_values(images, capsys, no_stylize, args, fragment):
    d = images["dir"]
    code, _, err = run([images["content"], images["style"], "-o", d / "out.png", *args], capsys)
    assert code == 2
    assert_one_error_line(err, fragment)
    assert_nothing_written(d)


def test_bad_device_is_one_line(images, capsys):
    """The device is resolved when the run starts (hardware.resolve_device), before any work."""
    d = images["dir"]
    code, _, err = run([images["content"], images["style"], "-o", d / "out.png", "--device", "quantum"], capsys)
    assert code == 2
    assert_one_error_line(err, "unknown device 'quantum'", "use auto, cpu, cuda or cuda:N")
    assert_nothing_written(d)


@pytest.mark.parametrize("argv, fragment", [
    ([], "CONTENT image and at least one STYLE image"),
    (["only_content.png", "-o", "out.png"], "at least one STYLE image"),
    (["a.png", "b.png"], "-o OUT.png"),
])
def test_missing_arguments(capsys, no_stylize, argv, fragment):
    code, _, err = run(argv, capsys)
    assert code == 2
    assert_one_error_line(err, fragment, "painterly --help")


def test_bad_config_file(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{not json")
    code, _, err = run(["--config", tmp_path / "bad.json", "--config-json"], capsys)
    assert code == 2
    assert_one_error_line(err, "not valid JSON")
    (tmp_path / "alien.json").write_text('{"size": 64, "flavour": "vanilla"}')
    code, _, err = run(["--config", tmp_path / "alien.json", "--config-json"], capsys)
    assert code == 2
    assert_one_error_line(err, "alien.json", "unknown option(s): flavour")
    code, _, err = run(["--config", tmp_path / "absent.json", "--config-json"], capsys)
    assert code == 2
    assert_one_error_line(err, "absent.json", "cannot be read")


def test_decompression_bomb(images, capsys):
    """A valid 10000x10000 1-bit PNG: a few KB on disk, 100 MP decoded (over Pillow's 89 MP limit)."""
    d = images["dir"]
    width = height = 10_000

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = (b"\x00" * (1 + width // 8)) * height
    (d / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                                 + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))
    assert (d / "bomb.png").stat().st_size < 100_000
    code, _, err = run([images["content"], d / "bomb.png", "-o", d / "out.png", *FAST], capsys)
    assert code == 2
    assert_one_error_line(err, "style image", "bomb.png", "decompression bomb")
    assert_nothing_written(d)


@pytest.mark.parametrize("scales", [[], ["--scales", "1"]])
def test_size_too_large_for_memory(images, capsys, scales):
    d = images["dir"]
    code, _, err = run([images["content"], images["style"], "-o", d / "out.png", "--size", "60000", "--max-memory", "4", *scales], capsys)
    assert code == 2
    line = assert_one_error_line(err, "60000x45000", "GiB")
    largest = int(re.search(r"largest size that fits is about --size (\d+)", line).group(1))
    assert 16 <= largest < 60000
    assert_nothing_written(d)


# --- interruptions and failures ------------------------------------------------------------------

def test_keyboard_interrupt_exits_130_without_output(images, capsys, monkeypatch):
    def interrupted(content, styles, *, config, callback, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "stylize", interrupted)
    d = images["dir"]
    code, _, err = run([images["content"], images["style"], "-o", d / "out.png", *FAST], capsys)
    assert code == 130
    assert err.strip().splitlines() == ["painterly: interrupted"]
    assert_nothing_written(d)


def test_keyboard_interrupt_during_a_real_run(images, capsys, monkeypatch):
    """Ctrl-C while the progress bar is up: bar closed, one line, no output file."""
    real = cli.stylize

    def interrupt_at_step_2(content, styles, *, config, callback, **kwargs):
        def cb(info):
            callback(info)
            if info.step == 2:
                raise KeyboardInterrupt
        return real(content, styles, config=config, callback=cb)

    monkeypatch.setattr(cli, "stylize", interrupt_at_step_2)
    d = images["dir"]
    code, _, err = run([images["content"], images["style"], "-o", d / "out.png", "--size", "32",
                        "--iterations", "5", "--scales", "1"], capsys)
    assert code == 130
    assert err.strip().splitlines()[-1] == "painterly: interrupted"
    assert "Traceback" not in err
    assert_nothing_written(d)


@pytest.mark.parametrize("exc", [MemoryError(), RuntimeError("[enforce fail at alloc_cpu.cpp:117] "
                                 "DefaultCPUAllocator: can't allocate memory: you tried to allocate 123 bytes")])
def test_out_of_memory_exits_1_with_one_line(images, capsys, monkeypatch, exc):
    def oom(content, styles, *, config, callback, **kwargs):
        raise exc

    monkeypatch.setattr(cli, "stylize", oom)
    d = images["dir"]
    code, _, err = run([images["content"], images["style"], "-o", d / "out.png", *FAST], capsys)
    assert code == 1
    assert_one_error_line(err, "out of memory", "--size")
    assert_nothing_written(d)


def test_painterly_error_during_the_run(images, capsys, monkeypatch):
    def nan(content, styles, *, config, callback, **kwargs):
        raise painterly.PainterlyError("the loss became NaN or infinite;\nlower the learning rate")

    monkeypatch.setattr(cli, "stylize", nan)
    d = images["dir"]
    code, _, err = run([images["content"], images["style"], "-o", d / "out.png", *FAST], capsys)
    assert code == 2
    assert_one_error_line(err, "NaN or infinite; lower the learning rate")
    assert_nothing_written(d)


def test_unexpected_exception_is_one_line_unless_asked(images, capsys, monkeypatch):
    def bug(content, styles, *, config, callback, **kwargs):
        raise RuntimeError("Given input size: (64x1x1). Calculated output size: (64x0x0).\nOutput size is too small")

    monkeypatch.setattr(cli, "stylize", bug)
    monkeypatch.delenv("PAINTERLY_TRACEBACK", raising=False)
    d = images["dir"]
    argv = [images["content"], images["style"], "-o", d / "out.png", *FAST]
    code, _, err = run(argv, capsys)
    assert code == 1
    assert_one_error_line(err, "unexpected RuntimeError", "Output size is too small", "PAINTERLY_TRACEBACK=1")
    monkeypatch.setenv("PAINTERLY_TRACEBACK", "1")
    with pytest.raises(RuntimeError, match="too small"):
        cli.main([str(a) for a in argv])
    assert_nothing_written(d)


def test_disk_error_while_saving_is_one_line(images, capsys, monkeypatch):
    monkeypatch.setattr(cli, "stylize", lambda content, styles, *, config, callback, **kwargs: Image.new("RGB", (8, 6)))

    def disk_full(self, fp, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    d = images["dir"]
    code, _, err = run([images["content"], images["style"], "-o", d / "out.png", *FAST], capsys)
    assert code == 1
    assert_one_error_line(err, "No space left on device")
    assert_nothing_written(d)


def test_style_set_flag_reaches_config_and_conflicts_with_blend_weights(images, capsys, monkeypatch):
    seen = {}

    def fake_stylize(content, styles, **kwargs):
        seen["config"] = kwargs["config"]
        return Image.new("RGB", (8, 6))

    monkeypatch.setattr(cli, "stylize", fake_stylize)
    d = images["dir"]
    code, _, err = run([images["content"], images["style"], images["style2"], "-o", d / "set.png", "--quiet",
                        "--style-set"], capsys)
    assert code == 0, err
    assert seen["config"].style_set is True
    code, _, err = run([images["content"], images["style"], images["style2"], "-o", d / "bad.png", "--quiet",
                        "--style-set", "--style-blend-weights", "1,2"], capsys)
    assert code == 2
    assert_one_error_line(err, "style-set")
    assert not (d / "bad.png").exists()


def test_style_mask_count_mismatch_is_one_line_and_writes_nothing(images, capsys):
    d = images["dir"]
    mask = d / "mask.png"
    Image.new("L", Image.open(images["content"]).size, 255).save(mask)
    code, _, err = run([images["content"], images["style"], images["style2"], "-o", d / "out.png", *FAST,
                        "--style-mask", mask], capsys)
    assert code == 2
    assert_one_error_line(err, "1 style mask(s) for 2 style image(s)")
    assert not (d / "out.png").exists()


def test_style_mask_run_writes_output(images, capsys):
    d = images["dir"]
    mask = d / "half.png"
    w, h = Image.open(images["content"]).size
    m = Image.new("L", (w, h), 0)
    m.paste(255, (0, 0, w // 2, h))
    m.save(mask)
    code, _, err = run([images["content"], images["style"], "-o", d / "masked.png", *FAST, "--style-mask", mask], capsys)
    assert code == 0, err
    assert (d / "masked.png").is_file()


def test_a_run_without_a_seed_says_the_one_it_drew_and_that_seed_paints_it_again(images, capsys):
    """A noise start differs run to run; a designer who likes one must be able to paint it again (at
    another size, say). The summary names the seed drawn, stylize() returns it in info["seed"], and
    --seed with it gives the same picture."""
    d = images["dir"]
    noisy = ["--size", "32", "--iterations", "2", "--scales", "1", "--init", "noise", "--precision", "fp32"]
    code, _, err = run([images["content"], images["style"], "-o", d / "a.png", *noisy], capsys)
    assert code == 0, err
    seed = int(err.split(", seed ")[1].split(")")[0])
    code, _, err = run([images["content"], images["style"], "-o", d / "b.png", *noisy, "--seed", seed], capsys)
    assert code == 0 and ", seed" not in err, err  # given, so not repeated
    code, _, err = run([images["content"], images["style"], "-o", d / "c.png", *noisy, "--seed", "-1"], capsys)
    assert code == 0 and int(err.split(", seed ")[1].split(")")[0]) != seed, err  # neural-style's "draw one"
    assert np.array_equal(np.asarray(Image.open(d / "a.png")), np.asarray(Image.open(d / "b.png")))
    again = painterly.stylize(images["content"], images["style"], size=32, iterations=2, scales=1, init="noise",
                              precision="fp32")
    assert isinstance(again.info["seed"], int) and again.info["seed"] != seed
    same = painterly.stylize(images["content"], images["style"], size=32, iterations=2, scales=1, init="noise",
                             precision="fp32", seed=again.info["seed"])
    assert np.array_equal(np.asarray(again), np.asarray(same))


def test_the_files_beside_the_output_never_replace_an_input(images, capsys):
    """--save-every's OUT_NNNN.png and --log's OUT.json are refused where an input is named so, as the
    output itself is (starting again from an earlier run's intermediate, --init out_0002.png, overwrote
    it with this run's second iteration)."""
    d = images["dir"]
    earlier = d / "out_0002.png"
    Image.open(images["content"]).save(earlier)
    before = earlier.read_bytes()
    code, _, err = run([images["content"], images["style"], "-o", d / "out.png", *FAST, "--init", earlier,
                        "--save-every", "2"], capsys)
    assert code == 2
    assert_one_error_line(err, "--save-every writes out_NNNN.png", "out_0002.png' is an input of this run")
    (d / "out.json").write_bytes(b"{}")
    code, _, err = run([images["content"], images["style"], "-o", d / "out.png", *FAST, "--log", "--init",
                        d / "out.json"], capsys)
    assert code == 2 and "is an input of this run" in err
    assert earlier.read_bytes() == before and not (d / "out.png").exists()
    code, _, err = run([images["content"], images["style"], "-o", d / "other.png", *FAST, "--init", earlier,
                        "--save-every", "2"], capsys)
    assert code == 0, err
    assert earlier.read_bytes() == before and (d / "other_0002.png").exists()


@pytest.mark.parametrize("method", painterly.available_methods())
def test_a_configs_command_line_reads_back_to_the_same_config(method, capsys):
    """What the web app's /command gives: every option, None ones too (STROTSS's final_learning_rate None
    became '--final-learning-rate none', which the parser refused as not a number)."""
    import dataclasses
    import typing
    from painterly.cli_args import command_line

    cls = painterly.get_method(method).config_class
    hints = typing.get_type_hints(cls)
    nulls = {f.name: None for f in dataclasses.fields(cls)
             if f.default is not None and type(None) in typing.get_args(hints[f.name])}
    config = painterly.make_config(method, None, size=96, **nulls)
    words = shlex.split(command_line("c.png", ["s.png"], "o.png", method, config))
    code, out, err = run([*words[1:], "--config-json"], capsys)
    assert code == 0, err
    assert json.loads(out) == json.loads(config.to_json())


def test_a_command_line_keeps_files_named_like_flags_as_files():
    """The web app's "copy the command" gave `painterly a.jpg -o.png --method adain ...` for a style uploaded
    as -o.png, which the parser read as the output flag and the style went missing."""
    from painterly.cli_args import command_line

    line = command_line("-photo.jpg", ["-o.png"], "-out.png", "gatys", GatysConfig(size=64))
    args = cli.build_parser().parse_intermixed_args(shlex.split(line)[1:])
    assert (args.content, args.styles, args.output) == ("./-photo.jpg", ["./-o.png"], "./-out.png")
