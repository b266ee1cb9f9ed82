"""The rearranged inference convolutions give the plain convolutions' results."""

import pytest
import torch
import torch.nn.functional as F

from painterly.nets import padding
from painterly.nets.polyphase import block_weights, picture_conv, upsampled_conv


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("pad", [1, 4])
def test_a_border_replicated_in_place_equals_replication_padding(pad):
    x = _channels_last(torch.rand(1, 5, 9, 13))
    buffer = _channels_last(torch.full((1, 5, 9 + 2 * pad, 13 + 2 * pad), float("nan")))
    padding.interior(buffer, pad).copy_(x)
    padding.replicate_border(buffer, pad)
    assert torch.equal(buffer, F.pad(x, (pad, pad, pad, pad), mode="replicate"))


@pytest.mark.parametrize("size,band_rows", [((7, 11), 1000), ((7, 11), 3), ((1, 1), 2), ((6, 4), 4)])
def test_upsampling_then_convolving_by_phases_equals_the_plain_pair(size, band_rows):
    """conv3x3(reflect-pad(nearest 2x upsampling(x))) computed at the low resolution, band by band."""
    torch.manual_seed(0)
    x = _channels_last(torch.randn(1, 6, *size))
    weight, bias = torch.randn(5, 6, 3, 3), torch.randn(5)
    up = F.interpolate(x, scale_factor=2, mode="nearest")
    expected = F.conv2d(F.pad(up, (1, 1, 1, 1), mode="reflect"), weight, bias)
    got = upsampled_conv(F.pad(x, (1, 1, 1, 1), mode="replicate"), weight, bias, band_rows)
    assert got.shape == expected.shape and got.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(got, expected, atol=1e-5)


def test_phase_kernels_hold_the_3x3_kernels_taps():
    """Each of the four phase kernels' taps sum to the 3x3 kernel's sum (a flat map stays flat)."""
    x = torch.full((1, 2, 4, 4), 0.5)
    weight = torch.randn(3, 2, 3, 3)
    got = upsampled_conv(F.pad(x, (1, 1, 1, 1), mode="replicate"), weight, torch.zeros(3), 100)
    assert torch.allclose(got, (0.5 * weight.sum((1, 2, 3))).view(1, 3, 1, 1).expand(1, 3, 8, 8), atol=1e-6)


@pytest.mark.parametrize("size,band_rows", [((12, 20), 1000), ((12, 20), 5), ((4, 4), 4), ((64, 8), 16)])
def test_a_wide_convolution_in_blocks_equals_the_plain_convolution(size, band_rows):
    """The network's picture layer (9x9 to 3 channels) as a 3x3 convolution on 4x4 blocks."""
    torch.manual_seed(1)
    padded = _channels_last(torch.randn(1, 4, size[0] + 8, size[1] + 8))
    weight, bias = torch.randn(3, 4, 9, 9), torch.randn(3)
    got = picture_conv(padded, weight, bias, band_rows)
    assert torch.allclose(got, F.conv2d(padded, weight, bias), atol=1e-4)


def test_block_weights_of_a_1x1_kernel_are_its_weight_on_each_blocks_own_pixel():
    """Hand-checked: a 1x1 kernel on 2x2 blocks reads, for output pixel (a, b) of a block, input pixel
    (a, b) of the same block (tap 0) and nothing else."""
    weight = torch.tensor([[[[3.0]]]])
    blocked = block_weights(weight, 2)  # (1*4) x (1*4) x 1 x 1
    assert blocked.shape == (4, 4, 1, 1)
    assert torch.equal(blocked[:, :, 0, 0], 3 * torch.eye(4))


def test_float64_kernels_are_rearranged_in_float64():
    torch.manual_seed(2)
    x = torch.randn(1, 3, 5, 6, dtype=torch.float64)
    weight, bias = torch.randn(4, 3, 3, 3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    up = F.conv2d(F.pad(F.interpolate(x, scale_factor=2, mode="nearest"), (1, 1, 1, 1), mode="reflect"), weight, bias)
    assert torch.allclose(upsampled_conv(F.pad(x, (1, 1, 1, 1), mode="replicate"), weight, bias, 100), up, atol=1e-12)
    padded = torch.randn(1, 2, 16, 20, dtype=torch.float64)
    wide = torch.randn(3, 2, 9, 9, dtype=torch.float64)
    assert torch.allclose(picture_conv(padded, wide, torch.zeros(3, dtype=torch.float64), 8),
                          F.conv2d(padded, wide), atol=1e-12)


def test_a_picture_convolution_off_the_block_grid_is_refused():
    """An output height not a multiple of 4 would leave rows unwritten: refused, not garbage."""
    with pytest.raises(ValueError, match="multiples of 4"):
        picture_conv(torch.randn(1, 2, 18, 16), torch.randn(3, 2, 9, 9), torch.zeros(3), 8)
