"""The driver refactor (issue 9) changed no result: fixed-seed fp32 runs of both methods, whole,
tiled, masked, guided and resumed mid-run, give the images recorded before it within 1/255."""

import numpy as np
import pytest
from PIL import Image

from golden.cases import CASES, RECORDINGS, RESUMED, run_case

needs_recordings = pytest.mark.skipif(not RECORDINGS.is_dir(), reason=f"no recordings for this CPU "
                                      f"({RECORDINGS.name}); python tests/golden/cases.py makes them")


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def _recorded(name: str) -> np.ndarray:
    path = RECORDINGS / f"{name}.png"
    if not path.is_file():
        pytest.skip(f"no recording of {name} for this CPU ({RECORDINGS.name}); python tests/golden/cases.py {name}")
    return _pixels(Image.open(path))


@needs_recordings
@pytest.mark.parametrize("name", list(CASES))
def test_output_matches_the_recording(name):
    recorded = _recorded(name)
    out = _pixels(run_case(name))
    assert out.shape == recorded.shape
    assert np.abs(out - recorded).max() <= 1, name


@needs_recordings
@pytest.mark.parametrize("name,stop_at", list(RESUMED.items()))
def test_resumed_output_matches_the_recording(tmp_path, name, stop_at):
    recorded = _recorded(name)
    out = _pixels(run_case(name, stop_at, tmp_path / "run.ckpt"))
    assert np.abs(out - recorded).max() <= 1, name


def test_a_tiled_run_resumed_in_a_tile_equals_the_uninterrupted_run_on_any_cpu(tmp_path):
    """Without a recording: each tile's L-BFGS starts from the curvature the last one learnt, and
    where a tile learns none (its steps measure none) the one before carries on. A resumed process
    had not run the earlier tiles, so it started the next tile cold (up to 31/255 off); the
    checkpoint now keeps the curvature."""
    whole = _pixels(run_case("gatys_tiled"))
    resumed = _pixels(run_case("gatys_tiled", 7, tmp_path / "run.ckpt"))
    assert np.array_equal(whole, resumed)
