"""Loss functions and modules: hand-computed values, masks, gradients (gradcheck in float64)."""

import pytest
import torch

from painterly.losses import (
    ContentLoss,
    GramStyleLoss,
    LossTerms,
    TotalVariationLoss,
    blend_grams,
    content_loss,
    gram_loss,
    gram_matrix,
    total_variation,
)


@pytest.fixture
def tiny_features():
    # 1 image, 2 channels, 1x2 positions: channel 0 = [1, 2], channel 1 = [3, 4].
    return torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])


# --- gram_matrix -------------------------------------------------------------------------------


def test_gram_matrix_hand_computed(tiny_features):
    # F F^T = [[1+4, 3+8], [3+8, 9+16]] = [[5, 11], [11, 25]], divided by 2 positions.
    expected = torch.tensor([[[2.5, 5.5], [5.5, 12.5]]])
    gram = gram_matrix(tiny_features)
    assert gram.shape == (1, 2, 2)
    torch.testing.assert_close(gram, expected)


def test_gram_matrix_shape_symmetry_and_batch():
    torch.manual_seed(0)
    features = torch.randn(3, 5, 4, 6)
    gram = gram_matrix(features)
    assert gram.shape == (3, 5, 5)
    torch.testing.assert_close(gram, gram.transpose(1, 2))
    # Each batch element is computed independently.
    torch.testing.assert_close(gram[1:2], gram_matrix(features[1:2]))
    # Diagonal: mean of squared activations per channel.
    torch.testing.assert_close(torch.diagonal(gram[0]), (features[0] ** 2).mean(dim=(1, 2)))


def test_gram_matrix_is_normalised_by_positions():
    # Tiling the same features twice leaves the Gram unchanged (it is an average, not a sum).
    torch.manual_seed(1)
    features = torch.randn(1, 3, 2, 3)
    tiled = torch.cat([features, features], dim=3)
    torch.testing.assert_close(gram_matrix(tiled), gram_matrix(features))


def test_masked_gram_with_mask_of_ones_equals_unmasked():
    torch.manual_seed(2)
    features = torch.randn(2, 3, 4, 4)
    mask = torch.ones(2, 1, 4, 4)
    torch.testing.assert_close(gram_matrix(features, mask), gram_matrix(features))


def test_masked_gram_with_constant_mask_equals_unmasked():
    # Normalised by the mask's total weight, so a uniform weight of 0.5 changes nothing.
    torch.manual_seed(3)
    features = torch.randn(1, 3, 4, 4)
    torch.testing.assert_close(gram_matrix(features, torch.full((1, 1, 4, 4), 0.5)), gram_matrix(features))


def test_masked_gram_of_half_equals_gram_of_that_half():
    torch.manual_seed(4)
    features = torch.randn(1, 3, 4, 6)
    mask = torch.zeros(1, 1, 4, 6)
    mask[..., :3] = 1.0  # left half
    torch.testing.assert_close(gram_matrix(features, mask), gram_matrix(features[..., :3]))


def test_masked_gram_hand_computed(tiny_features):
    # Only the first position counts: [[1*1, 1*3], [3*1, 3*3]] / 1.
    mask = torch.tensor([[[[1.0, 0.0]]]])
    torch.testing.assert_close(gram_matrix(tiny_features, mask), torch.tensor([[[1.0, 3.0], [3.0, 9.0]]]))


def test_masked_gram_with_empty_mask_is_finite():
    features = torch.ones(1, 2, 2, 2)
    gram = gram_matrix(features, torch.zeros(1, 1, 2, 2))
    assert torch.isfinite(gram).all()
    torch.testing.assert_close(gram, torch.zeros(1, 2, 2))


# --- content, gram and tv losses ---------------------------------------------------------------


def test_content_loss_hand_computed():
    features = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    target = torch.zeros_like(features)
    # mean(1, 4, 9, 16) = 7.5
    torch.testing.assert_close(content_loss(features, target), torch.tensor(7.5))
    torch.testing.assert_close(content_loss(features, features), torch.tensor(0.0))
    torch.testing.assert_close(content_loss(features, features + 2.0), torch.tensor(4.0))


def test_content_loss_is_symmetric_and_scalar():
    torch.manual_seed(5)
    a, b = torch.randn(1, 4, 3, 3), torch.randn(1, 4, 3, 3)
    loss = content_loss(a, b)
    assert loss.dim() == 0
    torch.testing.assert_close(loss, content_loss(b, a))


def test_gram_loss_hand_computed(tiny_features):
    # Gram = [[2.5, 5.5], [5.5, 12.5]]; against zeros: (6.25 + 30.25 + 30.25 + 156.25) / 4 = 55.75.
    torch.testing.assert_close(gram_loss(tiny_features, torch.zeros(1, 2, 2)), torch.tensor(55.75))
    # Against its own Gram the loss is zero; against Gram + 1 everywhere it is 1.
    gram = gram_matrix(tiny_features)
    torch.testing.assert_close(gram_loss(tiny_features, gram), torch.tensor(0.0))
    torch.testing.assert_close(gram_loss(tiny_features, gram + 1.0), torch.tensor(1.0))


def test_gram_loss_ignores_spatial_arrangement():
    # Style loss depends on statistics, not on where things are: shuffling positions changes nothing.
    torch.manual_seed(6)
    features = torch.randn(1, 3, 4, 4)
    shuffled = features.reshape(1, 3, 16)[..., torch.randperm(16)].reshape(1, 3, 4, 4)
    target = torch.randn(1, 3, 3)
    torch.testing.assert_close(gram_loss(shuffled, target), gram_loss(features, target))


def test_total_variation_hand_computed():
    image = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]])
    # horizontal steps 1 and 2 -> mean(1, 4) = 2.5; vertical steps 2 and 3 -> mean(4, 9) = 6.5.
    torch.testing.assert_close(total_variation(image), torch.tensor(9.0))


def test_total_variation_constant_image_is_zero_and_stripes_are_not():
    torch.testing.assert_close(total_variation(torch.full((1, 3, 5, 5), 0.3)), torch.tensor(0.0))
    stripes = torch.zeros(1, 1, 4, 4)
    stripes[..., 1::2] = 1.0  # vertical stripes: every horizontal step is 1, vertical steps 0
    torch.testing.assert_close(total_variation(stripes), torch.tensor(1.0))
    torch.testing.assert_close(total_variation(stripes.transpose(2, 3)), torch.tensor(1.0))


def test_total_variation_module_matches_function():
    torch.manual_seed(7)
    image = torch.rand(1, 3, 6, 5)
    torch.testing.assert_close(TotalVariationLoss()(image), total_variation(image))


# --- blend_grams -------------------------------------------------------------------------------


def test_blend_grams_normalises_weights():
    a = torch.full((1, 2, 2), 4.0)
    b = torch.full((1, 2, 2), 8.0)
    torch.testing.assert_close(blend_grams([a, b], [1.0, 3.0]), torch.full((1, 2, 2), 7.0))
    # Only the ratio matters.
    torch.testing.assert_close(blend_grams([a, b], [2.0, 6.0]), blend_grams([a, b], [1.0, 3.0]))
    torch.testing.assert_close(blend_grams([a, b], [1.0, 1.0]), torch.full((1, 2, 2), 6.0))


def test_blend_grams_single_style_is_identity():
    g = torch.randn(1, 3, 3)
    torch.testing.assert_close(blend_grams([g], [5.0]), g)
    torch.testing.assert_close(blend_grams([g, torch.zeros_like(g)], [1.0, 0.0]), g)


# --- gradients ---------------------------------------------------------------------------------


def test_gradcheck_gram_loss():
    torch.manual_seed(8)
    features = torch.randn(1, 2, 2, 3, dtype=torch.float64, requires_grad=True)
    target = torch.randn(1, 2, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(gram_loss, (features, target))


def test_gradcheck_masked_gram_matrix():
    torch.manual_seed(9)
    features = torch.randn(1, 2, 2, 2, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(1, 1, 2, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: gram_matrix(f, mask), (features,))


def test_gradcheck_content_loss():
    torch.manual_seed(10)
    features = torch.randn(1, 2, 2, 2, dtype=torch.float64, requires_grad=True)
    target = torch.randn(1, 2, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(content_loss, (features, target))


def test_gradcheck_total_variation():
    torch.manual_seed(11)
    image = torch.rand(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(total_variation, (image,))


def test_content_loss_gradient_hand_computed():
    # d/dx mean((x - t)^2) = 2 (x - t) / n
    x = torch.tensor([[[[1.0, 3.0]]]], requires_grad=True)
    content_loss(x, torch.zeros_like(x)).backward()
    torch.testing.assert_close(x.grad, torch.tensor([[[[1.0, 3.0]]]]))


# --- modules and LossTerms ---------------------------------------------------------------------


def test_content_loss_module_weights_layers():
    torch.manual_seed(12)
    feats = {"a": torch.randn(1, 2, 3, 3), "b": torch.randn(1, 4, 2, 2), "unused": torch.randn(1, 1, 1, 1)}
    targets = {"a": torch.randn(1, 2, 3, 3), "b": torch.randn(1, 4, 2, 2)}
    module = ContentLoss(["a", "b"], [2.0, 0.5])
    expected = 2.0 * content_loss(feats["a"], targets["a"]) + 0.5 * content_loss(feats["b"], targets["b"])
    torch.testing.assert_close(module(feats, targets), expected)
    # A zero weight removes a layer entirely.
    torch.testing.assert_close(ContentLoss(["a", "b"], [1.0, 0.0])(feats, targets), content_loss(feats["a"], targets["a"]))


def test_gram_style_loss_module_weights_layers():
    torch.manual_seed(13)
    feats = {"a": torch.randn(1, 2, 3, 3), "b": torch.randn(1, 3, 2, 2)}
    grams = {"a": torch.randn(1, 2, 2), "b": torch.randn(1, 3, 3)}
    module = GramStyleLoss(["a", "b"], [3.0, 0.25])
    expected = 3.0 * gram_loss(feats["a"], grams["a"]) + 0.25 * gram_loss(feats["b"], grams["b"])
    torch.testing.assert_close(module(feats, grams), expected)
    assert module.layers == ["a", "b"] and module.layer_weights == [3.0, 0.25]


def test_style_module_hand_computed(tiny_features):
    module = GramStyleLoss(["x"], [2.0])
    torch.testing.assert_close(module({"x": tiny_features}, {"x": torch.zeros(1, 2, 2)}), torch.tensor(111.5))


def test_modules_hold_no_parameters_or_state():
    assert list(ContentLoss(["a"], [1.0]).parameters()) == []
    assert list(GramStyleLoss(["a"], [1.0]).parameters()) == []
    assert list(TotalVariationLoss().parameters()) == []


def test_loss_terms_total_and_floats():
    terms = LossTerms({"content": torch.tensor(1.5), "style": torch.tensor(2.0, requires_grad=True)})
    torch.testing.assert_close(terms.total, torch.tensor(3.5))
    assert terms.total.requires_grad
    values = terms.floats()
    assert values == {"content": 1.5, "style": 2.0, "total": 3.5}
    assert all(type(v) is float for v in values.values())


def test_loss_terms_single_term_and_backward():
    x = torch.tensor(2.0, requires_grad=True)
    terms = LossTerms({"tv": x**2})
    terms.total.backward()
    assert x.grad.item() == pytest.approx(4.0)
    assert terms.floats() == {"tv": 4.0, "total": 4.0}


def test_gram_of_channels_last_features_matches_contiguous_value_and_gradient():
    torch.manual_seed(0)
    base = torch.randn(2, 5, 4, 3, dtype=torch.float64)
    grads = []
    for layout in (torch.contiguous_format, torch.channels_last):
        x = base.clone().contiguous(memory_format=layout).requires_grad_()
        g = gram_matrix(x)
        (g * torch.arange(25, dtype=torch.float64).view(1, 5, 5)).sum().backward()
        grads.append((g.detach(), x.grad.clone()))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])
    x = base.clone().contiguous(memory_format=torch.channels_last).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: gram_matrix(t), (x,))
