"""A style network's residual blocks and a decoder's convolutions in int8 (painterly.quantized), for
precision int8.

The residual blocks hold 82% of the bundled networks' multiply-adds (ten 128-channel 3x3 convolutions
at a quarter of the image's side). Each reads its float32 input as uint8 over that input's own range and
writes uint8 over the range its probes found (quantized.RangedConv), read back as float32 for the
instance norm, which stays float32 like the first, upsampling and picture layers. A decoder's
convolutions with a ReLU but the first run the same way, fused with it; one after an upsampling as its
phase convolution (nets/polyphase), its phases interleaved after. From one int8 layer to the next the
map stays quint8 (padded and interleaved by its codes), neither read back to float32 nor ranged and
quantised again; its first and picture layers stay float32.
"""

from __future__ import annotations

import torch
from torch import nn

from ..quantized import RangedConv, activation_levels, quantise_ranged
from .decoder import Decoder, plain_decoder_conv
from .polyphase import interleave_phases, phase_weights
from .transformer import ConvLayer, TransformerNet, padded_conv_in_bands


class Int8Trunk:
    """Runs a TransformerNet's convolutions for run_banded (its `convs`): the residual blocks' in int8,
    the rest as usual."""

    def __init__(self, net: TransformerNet) -> None:
        self.levels = activation_levels()
        blocks = range(3, 3 + 2 * net.arch.residual_blocks)
        self.convs = {i: RangedConv(net.convs[i].conv, False, self.levels) for i in blocks}

    def __call__(self, i: int, layer: ConvLayer, padded: torch.Tensor, band_rows: int) -> torch.Tensor:
        if i not in self.convs:
            return padded_conv_in_bands(layer, padded, band_rows)
        q = quantise_ranged(padded, self.levels)  # a byte a value: the whole layer's input at once
        conv, k = self.convs[i], layer.kernel
        h_out = padded.shape[-2] - k + 1
        if h_out <= band_rows:
            return conv(q).dequantize()
        low, high = conv.output_range(q)  # one range for every band, so bands change nothing
        y = torch.empty((padded.shape[0], conv.out_channels, h_out, padded.shape[-1] - k + 1),
                        memory_format=torch.channels_last)
        for top in range(0, h_out, band_rows):
            bottom = min(h_out, top + band_rows)
            y[..., top:bottom, :] = conv.run(q[..., top:bottom + k - 1, :], low, high).dequantize()
        return y


class Int8Decoder:
    """Runs a Decoder's convolutions for Decoder.decode (its `convs`): those with a ReLU but the first in
    int8, the rest in float32."""

    def __init__(self, decoder: Decoder) -> None:
        self.levels = activation_levels()
        # not the first: it reads the transformed features, whose tails are the longest (in int8 it
        # cost 1-1.8 dB of the picture's PSNR against fp32 for 4% of AdaIN's time)
        self.convs = {i: RangedConv(_phase_conv(conv) if upsampled else conv, True, self.levels)
                      for i, conv, upsampled in decoder.relu_convs()[1:]}

    def __call__(self, i: int, conv: nn.Conv2d, padded: torch.Tensor, upsampled: bool) -> torch.Tensor:
        if i not in self.convs:
            return plain_decoder_conv(i, conv, padded.dequantize() if padded.is_quantized else padded, upsampled)
        # an int8 layer's output is the next one's input as it is (quint8, padded by its codes)
        q = padded if padded.is_quantized else quantise_ranged(padded, self.levels)
        y = self.convs[i](q)
        return interleave_phases(y) if upsampled else y


def _phase_conv(conv: nn.Conv2d) -> nn.Conv2d:
    """The 2x2 convolution of a 3x3 one's four output phases after a 2x upsampling (nets/polyphase)."""
    weight = phase_weights(conv.weight.detach().float())
    phases = nn.Conv2d(weight.shape[1], weight.shape[0], 2)
    with torch.no_grad():
        phases.weight.copy_(weight)
        phases.bias.copy_(conv.bias.detach().float().repeat(4))
    return phases
