"""A style network's residual blocks in int8 (painterly.quantized), for precision int8.

The residual blocks hold 82% of the bundled networks' multiply-adds (ten 128-channel 3x3 convolutions
at a quarter of the image's side). Each of their convolutions reads its input as uint8 and writes
uint8 that is read back as float32 for the instance norm, which stays in float32 like every other
layer. Both ranges come per image from an fp32 pass at a quarter of its side, as the VGG encoder's do
(a full-size min/max took half as long as the int8 convolution itself). Pictures differ from fp32's
by noise at about 40 dB PSNR.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ..hardware import cpu_has_vnni
from ..quantized import CALIBRATION_DIVISOR, CALIBRATION_MIN_SIDE, quantise, quantised_conv, set_output_range
from .transformer import ConvLayer, TransformerNet, padded_conv_in_bands


class Int8Trunk:
    """Runs a TransformerNet's convolutions for run_banded (its `convs`): the residual blocks' in int8,
    the rest as usual. calibrate() first, once per image or tile."""

    def __init__(self, net: TransformerNet) -> None:
        self.net = net
        self.levels = 255 if cpu_has_vnni() is not False else 127
        blocks = range(3, 3 + 2 * net.arch.residual_blocks)
        self.convs = {i: quantised_conv(net.convs[i].conv, relu=False) for i in blocks}
        self.ranges: dict[int, tuple[float, float, float, float]] = {}  # input low, high; output low, high
        self._recording = False

    @torch.no_grad()
    def calibrate(self, image: torch.Tensor, weights: torch.Tensor, stats: Optional[list]) -> None:
        """Each int8 convolution's input and output range, from the network in fp32 on `image` (or its
        tile) area-averaged to a quarter of its side, under the same statistics where given."""
        h, w = image.shape[-2:]
        if min(h, w) >= CALIBRATION_DIVISOR * CALIBRATION_MIN_SIDE:
            image = F.interpolate(image, size=(h // CALIBRATION_DIVISOR, w // CALIBRATION_DIVISOR), mode="area")
        if weights.dim() == 4:
            weights = F.interpolate(weights, size=image.shape[-2:], mode="bilinear", align_corners=False)
        self._recording, self.ranges = True, {}
        try:
            self.net.run_banded(image.contiguous(memory_format=torch.channels_last), weights, 1 << 30, stats,
                                convs=self)
        finally:
            self._recording = False

    def __call__(self, i: int, layer: ConvLayer, padded: torch.Tensor, band_rows: int) -> torch.Tensor:
        if i not in self.convs:
            return padded_conv_in_bands(layer, padded, band_rows)
        if self._recording:
            y = padded_conv_in_bands(layer, padded, band_rows)
            self.ranges[i] = (float(padded.min()), float(padded.max()), float(y.min()), float(y.max()))
            return y
        low, high, out_low, out_high = self.ranges[i]
        conv, k = self.convs[i], layer.kernel
        set_output_range(conv, out_low, out_high)
        h_out = padded.shape[-2] - k + 1
        if h_out <= band_rows:
            return conv(quantise(padded.float(), low, high, self.levels)).dequantize()
        y = torch.empty((padded.shape[0], conv.out_channels, h_out, padded.shape[-1] - k + 1),
                        memory_format=torch.channels_last)
        for top in range(0, h_out, band_rows):
            bottom = min(h_out, top + band_rows)
            band = quantise(padded[..., top:bottom + k - 1, :].float(), low, high, self.levels)
            y[..., top:bottom, :] = conv(band).dequantize()
        return y
