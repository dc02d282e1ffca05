"""The fast copy used by attacks and inference: same function, cached, rebuilt when weights change."""

from __future__ import annotations

import torch
from torch import nn

from engine.attacks import fgsm, pgd
from engine.models.fast import exact, fast_model
from engine.models.registry import create_model


def _model(name: str = "small_cnn") -> nn.Module:
    torch.manual_seed(0)
    model = create_model(name)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so that folding really changes the convolutions
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
    return model.eval()


def _bn_count(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_folded_channels_last_copy_computes_the_same_logits():
    model = _model()
    fast = fast_model(model)
    assert fast is not model and _bn_count(model) == 3 and _bn_count(fast) == 0
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in fast.parameters() if p.ndim == 4)
    x = torch.rand(4, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), atol=1e-5, rtol=1e-5)
    assert all(p.requires_grad for p in model.parameters())  # the user's model is left as it was


def test_cached_until_a_weight_changes_and_never_for_a_training_model():
    model = _model()
    first = fast_model(model)
    assert fast_model(model) is first
    with torch.no_grad():
        next(model.parameters()).add_(0.1)  # an in-place update, as an optimizer step does
    second = fast_model(model)
    assert second is not first
    x = torch.rand(2, 3, 24, 24)
    with torch.no_grad():
        torch.testing.assert_close(second(x), model(x), atol=1e-5, rtol=1e-5)
    assert fast_model(model.train()) is model
    with exact():
        assert fast_model(model.eval()) is model


def test_attacks_on_the_fast_copy_agree_with_the_exact_path():
    model = _model()
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(16, 3, 24, 24, generator=g), torch.randint(0, 2, (16,), generator=g)
    fast_adv = fgsm(model, x, y, eps=4 / 255)
    with exact():
        exact_adv = fgsm(model, x, y, eps=4 / 255)
    same_sign = ((fast_adv - x).sign() == (exact_adv - x).sign()).float().mean().item()
    assert same_sign > 0.999
    fast_pgd = pgd(model, x, y, eps=4 / 255, steps=3, random_start=False)
    with exact():
        exact_pgd = pgd(model, x, y, eps=4 / 255, steps=3, random_start=False)
    with torch.no_grad():
        assert (model(fast_pgd).argmax(1) == model(exact_pgd).argmax(1)).float().mean().item() >= 15 / 16


def test_a_training_model_is_attacked_as_it_is_and_keeps_its_mode():
    model = _model().train()
    x, y = torch.rand(4, 3, 24, 24), torch.tensor([0, 1, 0, 1])
    fgsm(model, x, y, eps=2 / 255)
    assert model.training and all(m.training for m in model.modules())
