"""Fixed-seed fp32 runs whose outputs were recorded before the driver refactor (issue 9).

Recorded with the code before the refactor, with one exception: gatys_tiled was re-recorded after
fixing a bug the refactor's resume test found (a tiled scale that starts from the content at its own
size wrote its tiles into the content target itself, so the content term pulled towards the canvas,
and a resumed run, which reloads the canvas, differed from an uninterrupted one).

`python tests/golden/cases.py` rewrites the PNGs; test_before_after.py replays every case and
checks each output pixel is within 1/255 of the recorded one. fp32 convolutions take other code paths
on other CPUs, and hundreds of L-BFGS steps turn last-bit differences into visibly different
pictures (Intel vs AMD Zen 4: up to 189/255), so each kind of CPU has its own recordings, in
golden/CPU_KEY/: the Intel ones (GenuineIntel-avx512-amx) are the pre-refactor recordings; the AMD
ones (AuthenticAMD-avx512-noamx) were recorded on 2026-12-02 with the code of that day, which the
Intel recordings had verified; the Intel ones without AMX (GenuineIntel-avx512-noamx) on 2026-12-06
with the code of that day, which the AMD recordings had verified. On 2026-12-07 (session 30) an L-BFGS
run began ending on the best picture it evaluated rather than on an unevaluated last step that may
overshoot (optimize.BestIterate); of these cases only gatys_tiled (4 iterations a tile) changed. It
was re-recorded on the AMD CPU and removed from the two Intel folders, where no such machine was at
hand (`python tests/golden/cases.py gatys_tiled` there records it). A CPU with no recording of a
case skips that comparison. The runs use the public API only
(stylize with real VGG19 weights), so the recording and the replay need no internal names.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def cpu_key() -> str:
    """Vendor and the ISA features that change fp32 code paths, e.g. 'GenuineIntel-avx512-amx'."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    vendor = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("vendor_id")), "unknown")
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    return f"{vendor}-{'avx512' if 'avx512f' in flags else 'noavx512'}-{'amx' if 'amx_tile' in flags else 'noamx'}"


RECORDINGS = HERE / cpu_key()
EXAMPLES = HERE.parent.parent / "painterly" / "examples"


def inputs() -> dict:
    """Small content/style images from the bundled examples, and hand-made masks and guides."""
    from painterly.image import as_tensor, resize

    content = resize(as_tensor(EXAMPLES / "tubingen.jpg"), (72, 96))
    style = resize(as_tensor(EXAMPLES / "starry_night.jpg"), (64, 80))
    left = torch.zeros(1, 3, 72, 96)
    left[..., :48] = 1
    content_guide = torch.zeros(1, 3, 72, 96)
    content_guide[:, 0, :, :48] = 1   # red left half
    content_guide[:, 2, :, 48:] = 1   # blue right half
    style_guide = torch.zeros(1, 3, 64, 80)
    style_guide[:, 0, :32] = 1        # red top
    style_guide[:, 2, 32:] = 1        # blue bottom
    return {"content": content, "style": style, "style2": style.flip(-1).roll(7, dims=-2),
            "left": left, "right": 1 - left, "content_guide": content_guide, "style_guide": style_guide}


# threads: results depend on the reduction order, so on the thread count the recording used.
COMMON = {"size": 96, "precision": "fp32", "device": "cpu", "seed": 5, "threads": 2}
CASES = {
    "gatys_whole": dict(method="gatys", styles=["style"], options=dict(iterations=6, coarse_iterations=4, scales=2)),
    "gatys_tiled": dict(method="gatys", styles=["style"],
                        options=dict(iterations=4, scales=1, tile_size=64, tile_overlap=16, tile_rounds=2)),
    "gatys_masks_luminance": dict(method="gatys", styles=["style", "style2"], masks=["left", "right"],
                                  options=dict(iterations=5, scales=1, preserve_color="luminance", optimizer="adam")),
    "gatys_guided_noise": dict(method="gatys", styles=["style"], guided=True,
                               options=dict(iterations=5, scales=1, init="noise")),
    "strotss_whole": dict(method="strotss", styles=["style"], options=dict(iterations=5, scales=2, size=96)),
    "strotss_tiled": dict(method="strotss", styles=["style"],
                          options=dict(iterations=4, scales=1, tile_size=64, tile_overlap=16)),
    "strotss_guided": dict(method="strotss", styles=["style"], guided=True, options=dict(iterations=4, scales=2)),
}
# Cases also replayed with a stop and resume in the middle (a tile, for the tiled ones).
RESUMED = {"gatys_whole": 5, "gatys_tiled": 7, "strotss_tiled": 5, "strotss_guided": 6}


def run_case(name: str, stop_at: int | None = None, checkpoint: Path | None = None):
    """The case's output as a PIL image; with stop_at, interrupted at that step and then resumed."""
    import painterly
    from painterly.checkpoint import Checkpointer, Interrupted

    case, data = CASES[name], inputs()
    kwargs = dict(method=case["method"], **{**COMMON, **case["options"]})
    if case.get("masks"):
        kwargs["style_masks"] = [data[m] for m in case["masks"]]
    if case.get("guided"):
        kwargs["content_guidance"] = data["content_guide"]
        kwargs["style_guidance"] = [data["style_guide"]] * len(case["styles"])
    styles = [data[s] for s in case["styles"]]
    if stop_at is None:
        return painterly.stylize(data["content"], styles, **kwargs)
    ckpt = Checkpointer(checkpoint, seconds=None)

    def stop(info) -> None:
        if info.step == stop_at:
            ckpt.request_stop(signal.SIGINT)

    try:
        painterly.stylize(data["content"], styles, callback=stop, checkpoint=ckpt, **kwargs)
    except Interrupted:
        pass
    else:
        raise AssertionError(f"{name} finished before step {stop_at}")
    return painterly.stylize(data["content"], styles, checkpoint=Checkpointer(checkpoint, seconds=None, resume=True),
                             **kwargs)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent.parent))
    torch.set_num_threads(2)
    RECORDINGS.mkdir(exist_ok=True)
    for case_name in sys.argv[1:] or CASES:  # the cases named, else all
        run_case(case_name).save(RECORDINGS / f"{case_name}.png")
        print("wrote", case_name)
