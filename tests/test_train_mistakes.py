"""`painterly train` and `train-decoder` given what they can't honour: an architecture flag beside the
file it trains further, style folders a photos-only decoder would not read, the other command's file,
a checkpoint for a model, --widen beside --extend, a STYLE beside --method adain. Each is one line
that says what to do instead (exit 2, nothing written), or is honoured; the advice is followed to a
run that works where it names one. Tiny random nets and VGG, 32 px crops: seconds each."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from painterly import PainterlyError, cli
from painterly.checkpoint import Checkpointer, Interrupted
from painterly.features import FeatureExtractor
from painterly.nets.decoder import Decoder, DecoderArch
from painterly.nets.io import load_decoder, load_model, save_decoder, save_model
from painterly.nets.transformer import Architecture, TransformerNet
from painterly.training import TrainConfig, train

DIVISOR = 16  # the tiny VGG's: decoders made for it
QUICK = ["--steps", "1", "--batch", "1", "--crop", "32", "--precision", "fp32", "-q"]
DECODER_QUICK = [*QUICK, "--image-side", "40"]


@pytest.fixture(autouse=True)
def tiny_vgg(monkeypatch):
    """Every training here encodes with a tiny random VGG (max pooling where a decoder's asks for it)."""
    vggs = {pooling: FeatureExtractor.random(seed=0, pooling=pooling, last_layer="relu5_1", precision="fp32")
            for pooling in ("avg", "max")}
    monkeypatch.setattr("painterly.training.FeatureExtractor.vgg19", lambda pooling="avg", **kw: vggs[pooling])


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    """Photos and style folders, a style image, one- and two-style networks (widths 4,8,8, one residual
    block), an AdaIN decoder (width divisor 1), a slimmer one (2) and a WCT relu2_1 decoder."""
    g = np.random.default_rng(0)
    for name, scale in (("photos", 255), ("styles", 120)):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray((g.random((40, 48, 3)) * scale).astype(np.uint8)).save(tmp_path / name / f"{i}.png")
    Image.fromarray((g.random((48, 48, 3)) * 200).astype(np.uint8)).save(tmp_path / "s.png")
    torch.manual_seed(0)
    for name, styles in (("m", ["s"]), ("multi", ["a", "b"])):
        save_model(tmp_path / f"{name}.safetensors", TransformerNet(Architecture((4, 8, 8), 1, len(styles))),
                   {"styles": styles})
    for name, level, divisor, method in (("adain", "relu4_1", 1, "adain"), ("slim", "relu4_1", 2, "adain"),
                                         ("wct", "relu2_1", 1, "wct")):
        save_decoder(tmp_path / f"{name}.safetensors", Decoder(DecoderArch(level, divisor, DIVISOR)),
                     {"method": method})
    return {p.stem: p for p in tmp_path.iterdir()}


def _fails(capsys, argv: list, *fragments: str) -> str:
    """Run the CLI; it must refuse in one line holding each fragment, with exit status 2."""
    code = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, (code, err)
    assert all(f in err[0] for f in fragments), err[0]
    assert "Traceback" not in err[0]
    return err[0]


def _runs(capsys, argv: list) -> None:
    assert cli.main([str(a) for a in argv]) == 0, capsys.readouterr().err


def _train(files, out: Path, *words) -> list:
    return ["train", files["s"], "--photos", files["photos"], "-o", out, *words, *QUICK]


def _train_decoder(files, out: Path, *words) -> list:
    return ["train-decoder", "--photos", files["photos"], "-o", out, *words, *DECODER_QUICK]


def test_init_and_extend_refuse_an_architecture_flag_the_model_does_not_have(tmp_path, files, capsys):
    out = tmp_path / "out.safetensors"
    m, multi = files["m"], files["multi"]
    _fails(capsys, _train(files, out, "--init", m, "--widths", "8,16,32"),
           f"--widths 8,16,32 differs from the 4,8,8 of model '{m}'", "keeps its architecture; leave --widths out",
           "or grow it with --widen 8,16,32")
    _fails(capsys, _train(files, out, "--init", m, "--residual-blocks", "3"),
           "--residual-blocks 3 differs from the 1 of model", "or grow it with --deepen 3")
    line = _fails(capsys, _train(files, out, "--init", m, "--widths", "2,8,8"), "leave --widths out")
    assert "--widen" not in line  # narrower: nothing grows a model to that
    _fails(capsys, _train(files, out, "--init", m, "--widen", "8,8,8", "--widths", "8,8,16"),
           "--widths 8,8,16 differs from the 8,8,8 of model", "grown by --widen")
    _fails(capsys, ["train", files["styles"] / "0.png", "--photos", files["photos"], "-o", out, "--extend", multi,
                    "--widths", "8,16,32", *QUICK],
           f"--widths 8,16,32 differs from the 4,8,8 of model '{multi}'", "--extend adds a style to keeps its")
    assert not out.exists()
    # the model's own architecture (or what --widen grows it to) named again is no mistake
    _runs(capsys, _train(files, out, "--init", m, "--widths", "4,8,8", "--residual-blocks", "1"))
    assert load_model(out)[0].arch == load_model(m)[0].arch
    _runs(capsys, _train(files, out, "--init", m, "--widen", "8,8,8", "--widths", "8,8,8"))
    assert load_model(out)[0].arch.widths == (8, 8, 8)


def test_the_api_refuses_an_architecture_option_named_beside_init_and_takes_a_whole_config(tmp_path, files):
    """By name the option is asked for; inside a config (defaults and all) the model's replaces it."""
    vgg = FeatureExtractor.random(seed=0, last_layer="relu5_1", precision="fp32")
    config = TrainConfig(steps=1, batch=1, crop=32, style_size=48, precision="fp32", widths=(8, 8, 8))
    with pytest.raises(PainterlyError, match="--residual-blocks 2 differs from the 1 of model"):
        train([str(files["s"])], files["photos"], tmp_path / "a.safetensors", config, init=files["m"],
              extractor=vgg, residual_blocks=2)
    info = train([str(files["s"])], files["photos"], tmp_path / "a.safetensors", config, init=files["m"],
                 extractor=vgg)
    assert tuple(info["training"]["widths"]) == (4, 8, 8)


def test_an_extended_model_records_the_architecture_it_has(tmp_path, files, capsys):
    """--extend trains the model's own architecture; its file's training options said the defaults'."""
    out = tmp_path / "three.safetensors"
    _runs(capsys, ["train", files["s"], "--photos", files["photos"], "-o", out, "--extend", files["multi"], *QUICK])
    _, meta = load_model(out)
    assert tuple(meta["training"]["widths"]) == (4, 8, 8) and meta["training"]["residual_blocks"] == 1
    assert meta["styles"] == ["a", "b", "s"]


def test_train_decoder_init_refuses_another_width_divisor_and_names_the_widen_that_grows_it(tmp_path, files,
                                                                                               capsys):
    out = tmp_path / "d.safetensors"
    adain, slim = files["adain"], files["slim"]
    line = _fails(capsys, _train_decoder(files, out, "--method", "adain", "--styles", files["styles"], "--init",
                                         adain, "--width-divisor", "2"),
                  f"--width-divisor 2 differs from the 1 of decoder '{adain}'", "leave --width-divisor out")
    assert "--widen" not in line  # slimmer: nothing narrows a decoder
    _fails(capsys, _train_decoder(files, out, "--method", "adain", "--styles", files["styles"], "--init", slim,
                                  "--width-divisor", "1"),
           "--width-divisor 1 differs from the 2 of decoder", "or grow it with --widen 4,8,16")
    assert not out.exists()
    # the advice followed: the slim decoder grown to divisor 1's widths
    _runs(capsys, _train_decoder(files, out, "--method", "adain", "--styles", files["styles"], "--init", slim,
                                 "--widen", "4,8,16"))
    assert load_decoder(out)[0].arch.own_widths() == DecoderArch("relu4_1", 1, DIVISOR).own_widths()
    _runs(capsys, _train_decoder(files, out, "--method", "adain", "--styles", files["styles"], "--init", adain,
                                 "--width-divisor", "1"))
    assert load_decoder(out)[0].arch.width_divisor == 1


def test_wct_styles_without_a_stylised_share_are_refused_not_dropped(tmp_path, files, capsys):
    out = tmp_path / "trained_wct.safetensors"
    wct = ["--method", "wct", "--level", "relu2_1", "--width-divisor", "1", "--styles", files["styles"]]
    _fails(capsys, _train_decoder(files, out, *wct),
           "--styles: the wct decoder trains on photos alone unless --stylised-share P",
           "add --stylised-share (0.5, say) or leave --styles out")
    assert not out.exists()
    _runs(capsys, _train_decoder(files, out, *wct, "--stylised-share", "0.5", "--batch", "2"))
    assert load_decoder(out)[1]["training"]["styles"] == 3  # read, and trained on


def test_a_file_of_the_other_training_names_the_command_that_trains_it_further(tmp_path, files, capsys):
    out = tmp_path / "out.safetensors"
    adain, wct, m = files["adain"], files["wct"], files["m"]
    for flag in ("--init", "--extend"):
        line = _fails(capsys, _train(files, out, flag, adain),
                      f"'{adain}' is an AdaIN decoder, not a style network ({flag} takes painterly train's)",
                      f"painterly train-decoder --method adain --init {adain} trains it further")
        assert "--decoder" not in line and "--model" not in line  # not the stylise flags
    _fails(capsys, _train(files, out, "--init", wct), "is a WCT decoder (level relu2_1), not a style network",
           f"painterly train-decoder --method wct --level relu2_1 --init {wct}")
    line = _fails(capsys, _train_decoder(files, out, "--method", "adain", "--styles", files["styles"], "--init", m),
                  f"'{m}' is a style network, not a decoder", f"painterly train --init {m}")
    assert "--model" not in line
    assert not out.exists()


def test_widen_beside_extend_leads_to_init_then_extend(tmp_path, files, capsys):
    """The advice used to be circular (give --widen with --init; then init and extend exclude): it now names
    a grown copy made with --init, which --extend then takes, and each step runs."""
    multi, grown, five = files["multi"], tmp_path / "grown.safetensors", tmp_path / "five.safetensors"
    for grow, value in (("--widen", "8,8,8"), ("--deepen", "2")):
        line = _fails(capsys, _train(files, five, "--extend", multi, grow, value),
                      f"--init {multi} {grow} {value} -o GROWN.safetensors", "then --extend GROWN.safetensors")
        assert "give it with --init" not in line
    # with the model's style count wrong, the refusal says how many images and --multi-style
    _fails(capsys, _train(files, grown, "--init", multi, "--widen", "8,8,8"),
           "holds 2 style(s); this run trains 1: give its 2 style images with --multi-style")
    _runs(capsys, ["train", files["styles"] / "0.png", files["styles"] / "1.png", "--multi-style", "--photos",
                   files["photos"], "-o", grown, "--init", multi, "--widen", "8,8,8", *QUICK])
    _runs(capsys, _train(files, five, "--extend", grown))
    net, meta = load_model(five)
    assert net.arch.widths == (8, 8, 8) and meta["styles"] == ["0", "1", "s"]


def test_a_missing_style_folder_is_named_as_the_styles_option(tmp_path, files, capsys):
    line = _fails(capsys, _train_decoder(files, tmp_path / "d.safetensors", "--method", "adain", "--styles",
                                         tmp_path / "nonexist"),
                  f"--styles folder '{tmp_path / 'nonexist'}' does not exist or is not a folder")
    assert "photo" not in line


def test_a_checkpoint_given_as_a_model_says_what_it_is_and_that_resume_continues_it(tmp_path, files, capsys):
    vgg = FeatureExtractor.random(seed=0, last_layer="relu5_1", precision="fp32")
    ckpt = Checkpointer(tmp_path / "run.ckpt", seconds=None)
    with pytest.raises(Interrupted):  # a training stopped after its first step, as by Ctrl-C
        train([str(files["s"])], files["photos"], tmp_path / "run.safetensors", extractor=vgg, checkpoint=ckpt,
              callback=lambda *_: ckpt.request_stop(signal.SIGINT), steps=3, batch=1, crop=32, style_size=48,
              widths=(4, 8, 8), residual_blocks=1, precision="fp32")
    out = tmp_path / "out.safetensors"
    for argv in (_train(files, out, "--extend", ckpt.path), _train(files, out, "--init", ckpt.path),
                 _train_decoder(files, out, "--method", "adain", "--styles", files["styles"], "--init", ckpt.path)):
        line = _fails(capsys, argv, f"'{ckpt.path}' is a training checkpoint, not a ",
                      "its training goes on with the same command plus --resume (-o run.safetensors)")
        assert "of this version" not in line
    assert not out.exists()


def test_train_method_adain_or_wct_trains_the_decoder_and_a_style_file_beside_it_is_told_the_command(
        tmp_path, files, capsys):
    out = tmp_path / "d.safetensors"
    _fails(capsys, ["train", files["s"], "--method", "adain", "--styles", files["styles"], "--photos", files["photos"],
                    "-o", out, *DECODER_QUICK],
           "painterly train --method adain trains the adain decoder", f"not on STYLE files ({files['s']})",
           "painterly train-decoder --method adain --photos DIR --styles DIR -o DECODER.safetensors")
    _fails(capsys, ["train", files["s"], "--method=wct", "--photos", files["photos"], "-o", out, *DECODER_QUICK],
           "--method wct --photos DIR [--styles DIR --stylised-share P]")
    _fails(capsys, _train(files, out, "--method", "gatys"),
           "painterly train trains a style network (--method network, the default) or the decoder of --method "
           "adain or wct, not --method gatys")
    assert not out.exists()
    _runs(capsys, ["train", "--method", "adain", "--styles", files["styles"], "--photos", files["photos"], "-o", out,
                   "--width-divisor", "1", *DECODER_QUICK])
    assert load_decoder(out)[1]["method"] == "adain"
    network = tmp_path / "n.safetensors"  # the network method, named: what train trains anyway
    _runs(capsys, _train(files, network, "--method", "network", "--widths", "4,8,8", "--residual-blocks", "1"))
    assert load_model(network)[0].arch.widths == (4, 8, 8)


def test_a_training_stopped_by_max_time_says_how_to_go_on_and_does(tmp_path, files, capsys, monkeypatch):
    """--max-time cuts a training short: the model of the steps done is written, the checkpoint stays,
    and the summary gives the command that continues it, without the --max-time that would stop it again
    at once (it counts the time already run). That command finishes the run. A clock that ticks a second
    a call puts the cut at the same step on every machine."""
    import shlex
    import types

    from painterly import training

    out = tmp_path / "cut.safetensors"
    ticks = iter(range(10**6))
    monkeypatch.setattr(training, "time", types.SimpleNamespace(monotonic=lambda: float(next(ticks))))
    argv = [str(a) for a in _train(files, out, "--max-time", "12")]
    argv[argv.index("--steps") + 1] = "8"
    assert cli.main(argv) == 0
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert out.is_file() and out.with_suffix(".ckpt").is_file()
    line = next(line for line in err.splitlines() if "--max-time stopped the run after" in line)
    command = shlex.split(line.split("continue with: ")[1].split(" (a --max-time")[0])
    assert command[:2] == ["painterly", "train"] and "--resume" in command and "--max-time" not in command
    assert cli.main(command[1:]) == 0, capsys.readouterr().err
    assert load_model(out)[1]["training"]["steps_done"] == 8 and not out.with_suffix(".ckpt").exists()


def test_a_crop_that_cannot_fit_in_memory_is_refused_before_any_photo_is_read(files, tmp_path, capsys, monkeypatch):
    """train(crop=4000) was killed by the kernel at 24 GiB (a notebook's kernel with it). A step whose floor
    (a per-pixel cost below every measured training) exceeds the free memory is refused in one line
    naming a crop that fits; the same with a crop that fits trains."""
    from painterly import training

    monkeypatch.setattr(training, "free_memory_bytes", lambda device_type="cpu": 2 * 2**30)
    read = []
    monkeypatch.setattr(training, "find_photos", lambda *a, **k: read.append(a) or (_ for _ in ()).throw(
        AssertionError("photos read")))
    out = tmp_path / "big.safetensors"
    message = _fails(capsys, ["train", files["s"], "--photos", files["photos"], "-o", out, "--steps", "1",
                              "--batch", "4", "--crop", "1024", "--precision", "fp32", "-q"],
                     "a training step at --crop 1024 and --batch 4 needs at least", "GiB is free")
    largest = int(message.split("a crop of about ")[1].split(" px")[0])
    per_pixel = training.TRAINING_PIXEL_BYTES["fp32"][1] * 4
    assert 32 <= largest and training.TRAINING_BASE_BYTES + per_pixel * largest ** 2 <= 2 * 2**30
    assert not read and not out.exists()
    for method in ("adain", "wct"):  # the decoders' trainings share the check
        _fails(capsys, ["train-decoder", "--photos", files["photos"], "-o", out, "--method", method, "--steps", "1",
                        "--batch", "4", "--crop", "1024", "--image-side", "1024", "--precision", "fp32", "-q",
                        *(["--styles", files["styles"]] if method == "adain" else [])], "needs at least")


def test_a_style_given_twice_to_a_multi_style_network_is_refused(tmp_path, files, capsys):
    """Two of the network's styles would be one, listed twice; blended into one style it is harmless."""
    _fails(capsys, ["train", files["s"], files["s"], "--photos", files["photos"], "-o", tmp_path / "m2.safetensors",
                    "--multi-style", *QUICK],
           "style image 's.png' is given twice; a multi-style network holds each style once")
    assert not (tmp_path / "m2.safetensors").exists()
