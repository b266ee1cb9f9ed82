"""Feature transforms of the arbitrary-style methods, as pure functions on VGG feature maps.

- AdaIN (Huang and Belongie 2017): each channel of the content features takes the style's mean and
  standard deviation.
- WCT (Li et al. 2017): the content features are whitened (identity covariance) and coloured with the
  style's covariance. Both covariances are eigendecomposed in float64 and eigenvalues below a floor
  are dropped, so a flat-colour style or a one-colour region (a rank-deficient or zero covariance)
  gives a finite, deterministic result where an SVD in float32 gives NaN or fails.

Statistics are gathered separately from the transform (`Moments`), accumulated over any number of
pieces, so a print-size image tiled for memory is transformed with its whole-image statistics, and
a region (a mask) keeps statistics of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch

EPS = 1e-5
# Eigenvalues below this fraction of the largest (or below EIGEN_FLOOR absolutely) are dropped.
RELATIVE_FLOOR = 1e-5
EIGEN_FLOOR = 1e-8


@dataclass
class Moments:
    """First and second moments of feature vectors, mergeable: the (weighted) count, the mean and the
    sum of centred outer products (or of centred squares, `full=False`), kept in float64.

    Each piece is centred on its own mean and multiplied in float32 (a fast matmul, no float64 copy of
    the features), then merged exactly with Chan et al.'s pairwise update, so a whole image's statistics
    can be gathered tile by tile without the cancellation of E[x x^T] - E[x] E[x]^T."""

    count: torch.Tensor
    mean: torch.Tensor
    centred: torch.Tensor

    @classmethod
    def empty(cls, channels: int, full: bool, device: torch.device = torch.device("cpu")) -> "Moments":
        second = torch.zeros(channels, channels, dtype=torch.float64, device=device) if full else \
            torch.zeros(channels, dtype=torch.float64, device=device)
        return cls(torch.zeros((), dtype=torch.float64, device=device),
                   torch.zeros(channels, dtype=torch.float64, device=device), second)

    @classmethod
    def of(cls, features: torch.Tensor, mask: Optional[torch.Tensor] = None, full: bool = False) -> "Moments":
        """The moments of a 1xCxHxW map, or of its positions weighted by `mask` (HxW or 1x1xHxW, bool
        or weights in [0, 1], at the map's size)."""
        c = features.shape[1]
        flat = features.reshape(c, -1).float()
        device = features.device
        if mask is not None:
            w = mask.reshape(1, -1).to(flat)
            count = w.sum()
            if float(count) <= 0:
                return cls.empty(c, full, device)
            mean = (flat * w).sum(1, keepdim=True) / count
            centred = flat - mean
            weighted = centred * w
        else:
            count = torch.tensor(float(flat.shape[1]), device=device)
            mean = flat.mean(1, keepdim=True)
            centred = flat - mean
            weighted = centred
        second = weighted @ centred.T if full else (weighted * centred).sum(1)
        return cls(count.double(), mean[:, 0].double(), second.double())

    @property
    def full(self) -> bool:
        return self.centred.dim() == 2

    def merged(self, other: "Moments") -> "Moments":
        n = self.count + other.count
        if float(n) == 0:
            return self
        delta = other.mean - self.mean
        share = self.count * other.count / n
        extra = torch.outer(delta, delta) if self.full else delta * delta
        return Moments(n, self.mean + delta * (other.count / n), self.centred + other.centred + extra * share)

    @property
    def variance(self) -> torch.Tensor:
        """Per-channel (biased) variance."""
        second = self.centred.diagonal() if self.full else self.centred
        return (second / self.count.clamp_min(1e-12)).clamp_min(0)

    @property
    def covariance(self) -> torch.Tensor:
        if not self.full:
            raise ValueError("these moments hold per-channel squares only")
        cov = self.centred / self.count.clamp_min(1e-12)
        return (cov + cov.T) / 2


def adain(content: torch.Tensor, content_moments: Moments, style_moments: Moments, strength: float = 1.0) -> torch.Tensor:
    """AdaIN: (x - mean_c) / std_c * std_s + mean_s per channel, mixed with the content by `strength`."""
    shape = (1, -1, 1, 1)
    c_mean = content_moments.mean.to(content).view(shape)
    c_std = (content_moments.variance + EPS).sqrt().to(content).view(shape)
    s_mean = style_moments.mean.to(content).view(shape)
    s_std = (style_moments.variance + EPS).sqrt().to(content).view(shape)
    out = (content - c_mean) * (s_std / c_std) + s_mean
    return out if strength == 1.0 else torch.lerp(content, out, strength)


def instance_mean_std(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image and channel mean and standard deviation of an NxCxHxW batch (Nx C x1x1, float32)."""
    var, mean = torch.var_mean(x.float(), dim=(2, 3), keepdim=True, correction=0)
    return mean, (var + EPS).sqrt()


def batch_adain(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """AdaIN of each content map in a batch with the style map at the same index (decoder training)."""
    c_mean, c_std = instance_mean_std(content)
    s_mean, s_std = instance_mean_std(style)
    return (content.float() - c_mean) * (s_std / c_std) + s_mean


def _kept(eigenvalues: torch.Tensor) -> torch.Tensor:
    floor = max(float(eigenvalues.max()) * RELATIVE_FLOOR, EIGEN_FLOOR)
    return eigenvalues > floor


def _covariance_power(covariance: torch.Tensor, exponent: float) -> torch.Tensor:
    """E D^exponent E^T (float64) over the eigenvalues above the floor; the others are dropped."""
    values, vectors = torch.linalg.eigh(covariance.to(torch.float64))
    keep = _kept(values)
    v = vectors[:, keep]
    return (v * values[keep].pow(exponent)) @ v.T


def whitening_matrix(covariance: torch.Tensor) -> torch.Tensor:
    """E D^-1/2 E^T: the whitened features have identity covariance on the content's own subspace
    and zero elsewhere."""
    return _covariance_power(covariance, -0.5)


def colouring_matrix(covariance: torch.Tensor) -> torch.Tensor:
    """E D^1/2 E^T: gives whitened features the style's covariance."""
    return _covariance_power(covariance, 0.5)


@dataclass(frozen=True)
class WctMap:
    """The affine map x -> A (x - content mean) + style mean that WCT applies to each feature vector."""

    matrix: torch.Tensor  # float64 CxC
    content_mean: torch.Tensor
    style_mean: torch.Tensor

    @classmethod
    def between(cls, content: Moments, style: Moments) -> "WctMap":
        return cls(colouring_matrix(style.covariance) @ whitening_matrix(content.covariance), content.mean, style.mean)


def wct(content: torch.Tensor, transform: WctMap, strength: float = 1.0) -> torch.Tensor:
    """Whiten-and-colour a 1xCxHxW map (computed in float32 after the float64 decomposition), mixed with
    the content by `strength`."""
    c = content.shape[1]
    flat = content.reshape(c, -1).float()
    a = transform.matrix.float().to(flat.device)
    bias = (transform.style_mean - transform.matrix @ transform.content_mean).float().to(flat.device)
    out = torch.addmm(bias[:, None], a, flat).view_as(content).to(content.dtype)
    return out if strength == 1.0 else torch.lerp(content, out, strength)


def by_regions(content: torch.Tensor, masks: Optional[Sequence[torch.Tensor]], transform) -> torch.Tensor:
    """Apply `transform(content, region)` per region and keep each result inside its mask (1x1xHxW
    weights at the features' size, summing to one); without masks, the one transform."""
    if masks is None:
        return transform(content, 0)
    out = torch.zeros_like(content)
    for r, mask in enumerate(masks):
        out += transform(content, r) * mask.to(content)
    return out
