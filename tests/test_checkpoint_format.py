"""The checkpoint file: safetensors plus JSON, so reading one runs no code; hostile, truncated or
foreign files are refused in one line; saves are durable (file and folder fsynced); a failed periodic
save says so in one line and the run goes on."""

from __future__ import annotations

import os
import pickle
import stat
import sys

import pytest
import torch

from painterly.checkpoint import Checkpointer, decode_state, encode_state
from painterly.driver import run
from painterly.errors import PainterlyError
from painterly.features import FeatureExtractor
from painterly.methods.gatys import GatysConfig


def test_state_round_trips_exactly():
    opt = torch.optim.LBFGS([torch.nn.Parameter(torch.ones(3))], history_size=5)
    state = {"param": {"pixels": torch.arange(6.0).view(2, 3)}, "rng": torch.get_rng_state(),
             "optimizer": {"state": {0: {"d": torch.ones(3), "t": 0.5, "H_diag": 1, "old": [torch.zeros(2), None]}},
                           "param_groups": opt.state_dict()["param_groups"]},
             "tile": [1, 2], "betas": (0.9, 0.999), "bf16": torch.ones(2, dtype=torch.bfloat16),
             "scalar": torch.tensor(3.0), "same": None, "nan": float("nan"), "text": "x"}
    state["same"] = state["param"]["pixels"][0]  # shares storage with another tensor
    back = decode_state(encode_state(state))
    assert torch.equal(back["param"]["pixels"], state["param"]["pixels"])
    assert torch.equal(back["rng"], state["rng"]) and back["rng"].dtype == torch.uint8
    assert list(back["optimizer"]["state"]) == [0]  # int keys stay ints
    assert back["optimizer"]["state"][0]["old"][1] is None and back["betas"] == (0.9, 0.999)
    assert back["bf16"].dtype == torch.bfloat16 and back["scalar"].shape == ()
    assert torch.equal(back["same"], torch.arange(3.0)) and back["nan"] != back["nan"] and back["text"] == "x"
    assert back["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {sys.argv[0]}.pwned",))


def _runner(tmp_path):
    g = torch.Generator().manual_seed(0)
    tiny = FeatureExtractor.random(seed=0, last_layer="relu5_1", precision="fp32")
    config = GatysConfig(size=32, iterations=2, scales=1, precision="fp32", device="cpu", seed=0)
    content, style = torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g)
    return lambda ckpt: run(content, [style], config, extractor=tiny, checkpoint=ckpt)


@pytest.mark.parametrize("kind", ["pickle", "torch_save", "truncated", "flipped", "text", "empty"])
def test_hostile_or_broken_files_are_refused_without_running_anything(tmp_path, kind):
    path, marker = tmp_path / "run.ckpt", tmp_path / "pwned"
    payload = {"format": 2, "x": _Exploit()}
    _Exploit.__reduce__ = lambda self: (os.system, (f"touch {marker}",))
    if kind == "pickle":
        path.write_bytes(pickle.dumps(payload))
    elif kind == "torch_save":
        torch.save(payload, path)
    elif kind == "truncated":
        path.write_bytes(encode_state({"format": 2, "state": {"t": torch.ones(100)}})[:-50])
    elif kind == "flipped":  # one bit of a tensor: the file still parses, the checksum refuses it
        data = bytearray(encode_state({"format": 2, "state": {"t": torch.ones(100)}}))
        data[-3] ^= 1
        path.write_bytes(bytes(data))
    elif kind == "text":
        path.write_text("hello")
    else:
        path.write_bytes(b"")
    with pytest.raises(PainterlyError) as info:
        _runner(tmp_path)(Checkpointer(path, resume=True))
    assert "is not a readable painterly checkpoint" in str(info.value) and "\n" not in str(info.value)
    assert ("checksum does not match" in str(info.value)) == (kind == "flipped")
    assert not marker.exists()


def test_saves_fsync_the_file_and_its_folder(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    Checkpointer(tmp_path / "run.ckpt").save({"x": torch.ones(2)})
    assert synced == [False, True]  # the file, then (after the rename) its folder


def test_a_failed_periodic_save_is_one_line_and_the_run_goes_on(tmp_path, capfd):
    missing = tmp_path / "gone" / "run.ckpt"  # its folder does not exist: every save fails
    out = _runner(tmp_path)(Checkpointer(missing, every=1, seconds=None))
    assert out.shape == (1, 3, 32, 32)
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("painterly: warning: could not save checkpoint"), err


def test_checkpoint_arguments_that_ask_for_checkpoints_with_nowhere_to_write_them_are_refused(tmp_path):
    """stylize(checkpoint_every=1) without checkpoint= ran without one and said nothing; train() took only a
    ready Checkpointer and failed on a path with an AttributeError."""
    from painterly.checkpoint import make_checkpointer

    assert make_checkpointer() is None
    made = make_checkpointer(str(tmp_path / "run.ckpt"), resume=True)
    assert isinstance(made, Checkpointer) and made.resume and made.path == tmp_path / "run.ckpt"
    for asked, words in [({"every": 1}, "checkpoint_every needs checkpoint=PATH"),
                         ({"keep": True}, "keep_checkpoint needs checkpoint=PATH"),
                         ({"resume": True}, "resume=True needs checkpoint=PATH"),
                         ({"checkpoint": 3}, "checkpoint must be a file path or a painterly.Checkpointer, got int")]:
        with pytest.raises(PainterlyError, match=words):
            make_checkpointer(**asked)
