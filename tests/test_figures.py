"""The figures painterly saves: the loss curve."""

import numpy as np

from painterly.figures import PALETTE, SMOOTHED_POINTS, loss_curve, running_mean


def test_running_mean_by_hand():
    assert running_mean([1.0, 3.0, 5.0, 7.0], 2) == [2.0, 4.0, 6.0]
    assert running_mean([2.0, 4.0, 9.0], 3) == [5.0]


def _rows_with(image, colour):
    a = np.asarray(image).astype(int)[:, 71:650]  # inside the plot's frame (the legend is to its right)
    return set(np.nonzero((np.abs(a - np.array(colour)).sum(-1) <= 30).any(1))[0])


def test_a_long_noisy_training_curve_is_drawn_through_its_running_mean():
    """Minibatch losses swinging between 1e3 and 1e5 every step: the bold line runs along their geometric
    mean, 1e4, with the raw swings faint; a short optimisation curve keeps its own points."""
    steps = SMOOTHED_POINTS * 20  # a running mean over 20 steps: ten of each
    noisy = [{"step": i + 1, "scale": 0, "loss": 1e3 if i % 2 else 1e5} for i in range(steps)]
    image = loss_curve(noisy)
    top, bottom = 20, 480 - 40  # the plot's frame (loss_curve's margins); the axis runs 1e3..1e5
    middle = top + (bottom - top) / 2  # 1e4
    bold = _rows_with(image, PALETTE[0])
    assert bold and all(abs(row - middle) <= 3 for row in bold), sorted(bold)
    faint = _rows_with(image, tuple(c + (255 - c) * 3 // 4 for c in PALETTE[0]))
    assert min(faint) <= top + 2 and max(faint) >= bottom - 2  # the swings are still there, faint

    short = [{"step": i + 1, "scale": 0, "loss": 10 ** (5 - 2 * i / 49)} for i in range(50)]
    rows = _rows_with(loss_curve(short), PALETTE[0])
    assert min(rows) <= top + 2 and max(rows) >= bottom - 2  # drawn from 1e5 down to 1e3 as it is


def test_side_by_side_pastes_every_image_under_its_label_and_refuses_a_missing_label():
    """Two images and one label drew one image on a sheet two wide (zip stopped at the shorter)."""
    import pytest
    from PIL import Image

    from painterly.errors import PainterlyError
    from painterly.figures import side_by_side

    red, blue = Image.new("RGB", (20, 10), (255, 0, 0)), Image.new("RGB", (10, 10), (0, 0, 255))
    sheet = np.asarray(side_by_side([red, blue], ["red", "blue"], height=10, gap=2))
    assert sheet.shape[1] == 20 + 10 + 3 * 2
    assert tuple(sheet[5, 2 + 10]) == (255, 0, 0) and tuple(sheet[5, 2 + 20 + 2 + 5]) == (0, 0, 255)
    with pytest.raises(PainterlyError, match=r"one label per image: 2 image\(s\), 1 label\(s\)"):
        side_by_side([red, blue], ["red"])


def test_a_multi_style_preview_sheet_has_a_row_a_step_and_a_labelled_column_a_style():
    """A three-style network's render is the photo in each style left to right: the sheet splits it into
    columns and stacks the steps, keeping the latest six, so it stops growing wider with each preview."""
    from PIL import Image

    from painterly.figures import PREVIEWS_SHOWN, preview_sheet

    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    render = Image.new("RGB", (3 * 64, 48))
    for i, colour in enumerate(colours):
        render.paste(Image.new("RGB", (64, 48), colour), (i * 64, 0))
    one = preview_sheet([(2, render)], ["a", "b", "c"])
    many = preview_sheet([(2 * k, render) for k in range(1, 9)], ["a", "b", "c"])
    assert many.width == one.width and many.height == PREVIEWS_SHOWN * one.height
    row = np.asarray(one).astype(int)[8 + 96]  # through the middle of the row's pictures (192 px high)
    seen = [tuple(row[x]) for x in range(one.width) if (np.abs(row[x] - 255).sum() > 60)]
    firsts = [c for i, c in enumerate(seen) if i == 0 or np.abs(np.array(c) - seen[i - 1]).sum() > 60]
    assert [min(colours, key=lambda k: np.abs(np.array(k) - c).sum()) for c in firsts] == colours
    single = preview_sheet([(k, render) for k in range(1, 9)])  # one style: the renders left to right
    assert single.height == one.height and single.width > many.width
