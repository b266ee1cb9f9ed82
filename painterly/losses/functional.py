"""Pure loss functions over features and images. No state, no VGG: callers pass features in.

Normalisations follow Gatys et al. and pastiche so that equal weights give equal losses:
Gram matrices are divided by the number of positions, content and style terms are mean squared errors.
"""

from __future__ import annotations

import torch


class _Gram(torch.autograd.Function):
    """G = F F^T / P with a one-matmul backward, dF = (dG + dG^T) F / P.

    Autograd's own backward for F F^T does two matmuls and an add; this halves the Gram cost of a
    step. F is taken as (N, P, C) when the features are channels-last (a free view), else as
    (N, C, P), so no layout copy happens either way.
    """

    @staticmethod
    def forward(ctx, features: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        n, c, h, w = features.shape
        positions_last = not features.is_contiguous() and features.is_contiguous(memory_format=torch.channels_last)
        if positions_last:
            flat = features.permute(0, 2, 3, 1).reshape(n, h * w, c)
            gram = torch.bmm(flat.transpose(1, 2), flat)
        else:
            flat = features.reshape(n, c, h * w)
            gram = torch.bmm(flat, flat.transpose(1, 2))
        ctx.save_for_backward(flat)
        ctx.positions_last = positions_last
        ctx.shape = features.shape
        return gram / (h * w)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (flat,) = ctx.saved_tensors
        n, c, h, w = ctx.shape
        sym = (grad + grad.transpose(1, 2)) / (h * w)
        if ctx.positions_last:
            return torch.bmm(flat, sym).reshape(n, h, w, c).permute(0, 3, 1, 2)
        return torch.bmm(sym, flat).reshape(n, c, h, w)


def gram_matrix(features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Channel co-activations F F^T / positions, for NxCxHxW features -> NxCxC.

    With a mask (Nx1xHxW, weights in [0, 1]) only the masked positions count, normalised by the
    mask's total weight, so a region's Gram is comparable to a whole image's.
    """
    n, c, h, w = features.shape
    if mask is None:
        return _Gram.apply(features)
    flat = features.reshape(n, c, h * w)
    weights = mask.reshape(n, 1, h * w).to(flat)
    total = weights.sum(dim=2, keepdim=True).clamp_min(1e-8)
    return torch.bmm(flat * weights, flat.transpose(1, 2)) / total


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared feature difference (Gatys et al. 2016, eq. 1, as a mean instead of a half-sum)."""
    return torch.mean((features - target) ** 2)


def gram_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the features' Gram matrix and a target Gram matrix."""
    return torch.mean((gram_matrix(features) - target_gram) ** 2)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Squared-difference total variation: mean of squared horizontal plus vertical neighbour steps.

    Squared (not absolute) differences keep the loss smooth, which L-BFGS needs.
    """
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return torch.mean(dx**2) + torch.mean(dy**2)


def blend_grams(grams: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """One target from several styles: the weight-normalised sum of their Gram matrices."""
    total = float(sum(weights))
    return sum(g * (w / total) for g, w in zip(grams, weights))


# --- STROTSS (Kolkin, Salavon & Shakhnarovich, CVPR 2019) ------------------------------------------
# Point sets are (n, d) matrices: one row per sampled position, one column per feature channel.

# The colour basis STROTSS's palette term works in (called YUV there): an orthonormal rotation of RGB
# whose first axis is the grey diagonal (1, 1, 1)/sqrt(3). Being a rotation it leaves both the cosine
# and the Euclidean cost unchanged; it is kept so the palette term reads as the paper defines it.
STROTSS_YUV = (
    (0.577350, 0.577350, 0.577350),
    (-0.577350, 0.788675, -0.211325),
    (-0.577350, -0.211325, 0.788675),
)


def rgb_to_strotss_yuv(colors: torch.Tensor) -> torch.Tensor:
    """(n, 3) RGB rows -> (n, 3) rows in STROTSS's decorrelated colour basis."""
    basis = torch.tensor(STROTSS_YUV, dtype=colors.dtype, device=colors.device)
    return colors @ basis.T


def unit_rows(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Rows scaled to unit length (norms floored at `eps`): cosine distances are then 1 - dot products."""
    return x / x.norm(dim=1, keepdim=True).clamp_min(eps)


def _mm(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """a @ b, multiplied in `dtype` when given (bf16 runs 2-3x faster on CPUs with avx512_bf16),
    returned in a's dtype so the losses around it stay in float32."""
    if dtype is None or dtype == a.dtype:
        return a @ b
    return (a.to(dtype) @ b.to(dtype)).to(a.dtype)


def pairwise_cosine_distance(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(n, d), (m, d) -> (n, m) matrix of 1 - cos(x_i, y_j)."""
    return 1.0 - unit_rows(x, eps) @ unit_rows(y, eps).T


def pairwise_euclidean_distance(x: torch.Tensor, y: torch.Tensor, floor: float = 1e-5) -> torch.Tensor:
    """(n, d), (m, d) -> (n, m) matrix of sqrt(mean squared difference over the d channels).

    The squared distance (the sum over channels) is floored at `floor` before the division by d,
    as in STROTSS's code, so the square root keeps a finite gradient where two points coincide.
    """
    sq = (x * x).sum(1, keepdim=True) + (y * y).sum(1).unsqueeze(0) - 2.0 * x @ y.T
    return (sq.clamp_min(floor) / x.shape[1]).sqrt()


def relaxed_emd(cost: torch.Tensor) -> torch.Tensor:
    """Relaxed earth mover's distance from an (n, m) cost matrix (STROTSS eq. 4).

    Each one-sided relaxation drops one marginal constraint, so every point moves all its mass to its
    cheapest partner: R_a = mean_i min_j C_ij, R_b = mean_j min_i C_ij; the relaxed EMD is the larger.
    """
    return torch.maximum(cost.min(dim=1).values.mean(), cost.min(dim=0).values.mean())


class _CosineREMD(torch.autograd.Function):
    """relaxed_emd(1 - xn yn^T) for unit rows, with a backward that needs no matmul.

    Each one-sided term's gradient reaches only each point's cheapest partner, so instead of
    autograd's dense (n, m) gradient and an (n, m) x (m, d) product, the backward gathers (R_a) and
    scatter-adds (R_b) partner rows: O((n + m) d) instead of O(n m d). Ties between R_a and R_b split
    the gradient in half, as torch.maximum does.
    """

    @staticmethod
    def forward(ctx, xn: torch.Tensor, yn: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:  # type: ignore[override]
        cost = 1.0 - _mm(xn, yn.T, dtype)
        row_min, row_arg = cost.min(dim=1)  # R_a: every output point's cheapest style point
        col_min, col_arg = cost.min(dim=0)  # R_b: every style point's cheapest output point
        ra, rb = row_min.mean(), col_min.mean()
        wa = 1.0 if ra > rb else 0.5 if ra == rb else 0.0
        ctx.save_for_backward(xn, yn, row_arg, col_arg)
        ctx.weights = (wa, 1.0 - wa)
        return torch.maximum(ra, rb)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        xn, yn, row_arg, col_arg = ctx.saved_tensors
        wa, wb = ctx.weights
        n, m = xn.shape[0], yn.shape[0]
        grad_x = grad_y = None
        # d(1 - xn_i . yn_j) = -yn_j dxn_i - xn_i dyn_j, for the (i, j) pairs each term picked.
        if ctx.needs_input_grad[0]:
            grad_x = torch.zeros_like(xn)
            if wa:
                grad_x.add_(yn[row_arg], alpha=-wa / n)
            if wb:
                grad_x.index_add_(0, col_arg, yn, alpha=-wb / m)
            grad_x.mul_(grad)
        if ctx.needs_input_grad[1]:
            grad_y = torch.zeros_like(yn)
            if wa:
                grad_y.index_add_(0, row_arg, xn, alpha=-wa / n)
            if wb:
                grad_y.add_(xn[col_arg], alpha=-wb / m)
            grad_y.mul_(grad)
        return grad_x, grad_y, None


def cosine_remd(xn: torch.Tensor, yn: torch.Tensor, matmul_dtype: torch.dtype | None = None) -> torch.Tensor:
    """`remd_loss` for rows already of unit length (see `unit_rows`); `matmul_dtype` as in `_mm`."""
    return _CosineREMD.apply(xn, yn, matmul_dtype)


def remd_loss(x: torch.Tensor, y: torch.Tensor, matmul_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Relaxed EMD between feature sets under the cosine cost (STROTSS's style term l_r)."""
    return cosine_remd(unit_rows(x), unit_rows(y), matmul_dtype)


def palette_loss(x_rgb: torch.Tensor, y_rgb: torch.Tensor) -> torch.Tensor:
    """Relaxed EMD between pixel colours, (n, 3) and (m, 3) RGB (STROTSS's palette term l_p).

    The cost is cosine distance plus root-mean-squared distance in STROTSS's colour basis, as in the
    original code, so both hue and brightness must match.
    """
    x, y = rgb_to_strotss_yuv(x_rgb), rgb_to_strotss_yuv(y_rgb)
    return relaxed_emd(pairwise_cosine_distance(x, y) + pairwise_euclidean_distance(x, y))


def feature_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, d) points -> their mean (1, d) and biased covariance (d, d), divided by n.

    The covariance goes through `gram_matrix`'s one-matmul backward (d^2 n flops instead of 2 d^2 n).
    """
    mu = x.mean(0, keepdim=True)
    centred = (x - mu).contiguous()
    n, d = centred.shape
    # (n, d) row-major is (1, d, n, 1) channels-last: a free view that gram_matrix reads as positions x channels.
    cov = gram_matrix(centred.view(1, n, 1, d).permute(0, 3, 1, 2))[0]
    return mu, cov


class _MomentLossTo(torch.autograd.Function):
    """mean |mu_x - m| + mean |Sigma_x - S| with a hand-written backward, for constant targets.

    The d x d covariance is the expensive part (d = 2179 for STROTSS hypercolumns); autograd sweeps
    it with several elementwise passes and two matmuls. Here the backward is one matmul:
    dL/dx = 2 (x - mu) sign(Sigma_x - S) / (n d^2) + sign(mu_x - m) / (n d); the centring needs no
    correction because the centred rows sum to zero and sign(.) is symmetric. Both products run in
    `dtype` when given (see `_mm`).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, target_mean: torch.Tensor, target_cov: torch.Tensor,  # type: ignore[override]
                dtype: torch.dtype | None = None) -> torch.Tensor:
        n, d = x.shape
        mu = x.mean(0, keepdim=True)
        centred = x - mu
        diff = _mm(centred.T, centred, dtype).div_(n).sub_(target_cov)
        mean_diff = mu - target_mean
        loss = mean_diff.abs().sum() / d + diff.abs().sum() / (d * d)
        ctx.save_for_backward(centred, diff.sign_(), mean_diff.sign())
        ctx.dtype = dtype
        return loss

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        centred, sign_cov, sign_mean = ctx.saved_tensors
        n, d = centred.shape
        grad_x = _mm(centred, sign_cov, ctx.dtype).mul_(2.0 / (n * d * d)).add_(sign_mean, alpha=1.0 / (n * d))
        return grad_x * grad, None, None, None


def moment_loss_to(x: torch.Tensor, target_mean: torch.Tensor, target_cov: torch.Tensor,
                   matmul_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Moment matching against precomputed target moments (see `moment_loss`); `matmul_dtype` as in
    `_mm` (used only with constant targets)."""
    if not (target_mean.requires_grad or target_cov.requires_grad):
        return _MomentLossTo.apply(x, target_mean, target_cov, matmul_dtype)
    mu, cov = feature_moments(x)
    return (mu - target_mean).abs().mean() + (cov - target_cov).abs().mean()


def moment_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Moment matching (STROTSS's l_m): mean |mu_x - mu_y| + mean |Sigma_x - Sigma_y|.

    Means over the channels of the absolute differences of the per-channel means and of the
    covariance matrices (biased, divided by the number of points).
    """
    return moment_loss_to(x, *feature_moments(y))


def _column_normalised_self_distance(xn: torch.Tensor, dtype: torch.dtype | None) -> tuple[torch.Tensor, torch.Tensor]:
    """D = 1 - xn xn^T with each column divided by its sum; returns (D / sums, sums)."""
    dist = 1.0 - _mm(xn, xn.T, dtype)
    sums = dist.sum(0, keepdim=True).clamp_min(1e-12)
    return dist / sums, sums


class _CosineSelfSimilarity(torch.autograd.Function):
    """`self_similarity_loss` on unit rows, xn with gradient and yn constant, with a one-matmul backward.

    With N = D / colsum(D), S = sign(N^x - N^y) / n and D = 1 - xn xn^T:
    dL/dD = (S - colsum(S * N^x)) / colsum(D), dL/dxn = -(dL/dD + dL/dD^T) xn. Autograd would take two
    (n, n) x (n, d) products for xn xn^T and a chain of (n, n) passes for the normalisation.
    """

    @staticmethod
    def forward(ctx, xn: torch.Tensor, yn: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:  # type: ignore[override]
        nx, sums = _column_normalised_self_distance(xn, dtype)
        ny, _ = _column_normalised_self_distance(yn, dtype)
        diff = nx - ny
        n = xn.shape[0]
        loss = diff.abs().sum() / n
        ctx.save_for_backward(xn, diff.sign_(), nx, sums)
        ctx.dtype = dtype
        return loss

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        xn, sign, nx, sums = ctx.saved_tensors
        n = xn.shape[0]
        grad_d = (sign - (sign * nx).sum(0, keepdim=True)).div_(sums).mul_(grad / n)
        grad_x = _mm(grad_d + grad_d.T, xn, ctx.dtype).neg_()
        return grad_x, None, None


def cosine_self_similarity(xn: torch.Tensor, yn: torch.Tensor, matmul_dtype: torch.dtype | None = None) -> torch.Tensor:
    """`self_similarity_loss` for rows already of unit length (see `unit_rows`); `matmul_dtype` as in `_mm`."""
    if yn.requires_grad:  # the hand-written backward treats y as constant
        nx, _ = _column_normalised_self_distance(xn, matmul_dtype)
        ny, _ = _column_normalised_self_distance(yn, matmul_dtype)
        return (nx - ny).abs().sum() / xn.shape[0]
    return _CosineSelfSimilarity.apply(xn, yn, matmul_dtype)


def self_similarity_loss(x: torch.Tensor, y: torch.Tensor, matmul_dtype: torch.dtype | None = None) -> torch.Tensor:
    """STROTSS's content term l_content between output features x and content features y, both (n, d).

    D = cosine distances among a set's own points, each column divided by its sum; the loss is
    sum_ij |D^x_ij - D^y_ij| / n, i.e. the mean absolute difference times n, as in the original code
    (the column normalisation makes entries ~1/n, so this keeps the loss independent of n).
    """
    return cosine_self_similarity(unit_rows(x), unit_rows(y), matmul_dtype)
