"""The driver refactor (issue 9) changed no result: fixed-seed fp32 runs of both methods, whole,
tiled, masked, guided and resumed mid-run, give the images recorded before it within 1/255."""

import numpy as np
import pytest
from PIL import Image

from golden.cases import CASES, RECORDINGS, RESUMED, run_case

pytestmark = pytest.mark.skipif(not RECORDINGS.is_dir(), reason=f"no recordings for this CPU ({RECORDINGS.name}); "
                                "python tests/golden/cases.py makes them")


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.mark.parametrize("name", list(CASES))
def test_output_matches_the_recording(name):
    recorded = _pixels(Image.open(RECORDINGS / f"{name}.png"))
    out = _pixels(run_case(name))
    assert out.shape == recorded.shape
    assert np.abs(out - recorded).max() <= 1, name


@pytest.mark.parametrize("name,stop_at", list(RESUMED.items()))
def test_resumed_output_matches_the_recording(tmp_path, name, stop_at):
    recorded = _pixels(Image.open(RECORDINGS / f"{name}.png"))
    out = _pixels(run_case(name, stop_at, tmp_path / "run.ckpt"))
    assert np.abs(out - recorded).max() <= 1, name
