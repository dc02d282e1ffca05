"""Our attacks give torchattacks' results on the same model and batch (torchattacks is a test-only dependency):
on cross-entropy, torchattacks' loss, and on the margin loss, our default, which gives the same steps wherever
cross-entropy's gradient has not underflowed (this small model is far from saturated)."""

from __future__ import annotations

import pytest
import torch

from engine.attacks import bim, fgsm, pgd
from engine.models.fast import exact
from engine.models.registry import create_model

torchattacks = pytest.importorskip("torchattacks")

TOL = 1e-6


@pytest.fixture(autouse=True)
def _bit_exact():
    """Compare the algorithms on the plain model; the folded fast copy is checked in test_fast_model.py."""
    with exact():
        yield


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("small_cnn").eval()


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(8, 3, 16, 16, generator=g)
    x[0, :, :4, :4], x[1, :, :4, :4] = 0.0, 1.0  # pixels at the edges of [0, 1], where clamping matters
    return x, torch.randint(0, 2, (8,), generator=g)


def _max_diff(a, b):
    return (a - b).abs().max().item()


LINF, L2 = (2 / 255, 8 / 255), (0.25, 1.0)  # two eps values per norm; an L2 eps is the radius
# (name, ours(model, x, y, eps, loss), theirs(model, eps), eps values); ours on cross-entropy, torchattacks' loss
CASES = [
    (
        "fgsm",
        lambda m, x, y, e, loss="ce": fgsm(m, x, y, eps=e, loss=loss),
        lambda m, e: torchattacks.FGSM(m, eps=e),
        LINF,
    ),
    (
        "pgd",
        lambda m, x, y, e, loss="ce": pgd(m, x, y, eps=e, alpha=e / 4, steps=5, random_start=False, loss=loss),
        lambda m, e: torchattacks.PGD(m, eps=e, alpha=e / 4, steps=5, random_start=False),
        LINF,
    ),
    (
        "bim",
        lambda m, x, y, e, loss="ce": bim(m, x, y, eps=e, alpha=1 / 255, steps=6, loss=loss),
        lambda m, e: torchattacks.BIM(m, eps=e, alpha=1 / 255, steps=6),
        LINF,
    ),
    (
        "pgd-l2",
        lambda m, x, y, e, loss="ce": pgd(
            m, x, y, eps=e, alpha=e / 4, steps=5, random_start=False, norm="l2", loss=loss
        ),
        lambda m, e: torchattacks.PGDL2(m, eps=e, alpha=e / 4, steps=5, random_start=False),
        L2,
    ),
]


@pytest.mark.parametrize(("ours", "theirs", "eps_values"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_margin_loss_takes_the_same_steps_here(model, batch, ours, theirs, eps_values):
    """On a model far from saturation, the margin's signed (or L2-normalised) steps are cross-entropy's."""
    x, y = batch
    for eps in eps_values:
        assert _max_diff(ours(model, x, y, eps, loss="margin"), ours(model, x, y, eps, loss="ce")) <= TOL, eps


@pytest.mark.parametrize(("ours", "theirs", "eps_values"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches_torchattacks(model, batch, ours, theirs, eps_values):
    x, y = batch
    for eps in eps_values:
        mine, ref = ours(model, x, y, eps), theirs(model, eps)(x, y)
        assert _max_diff(mine, ref) <= TOL, eps
        moved = (mine - x).flatten(1)
        size = moved.norm(dim=1) if eps_values is L2 else moved.abs().amax(1)
        assert size.max() > eps / 2  # a real attack, not two copies of the input


TARGETED = [
    (
        "fgsm",
        lambda m, x, t, e, loss="ce": fgsm(m, x, t, eps=e, targeted=True, loss=loss),
        lambda m, e: torchattacks.FGSM(m, eps=e),
    ),
    (
        "pgd",
        lambda m, x, t, e, loss="ce": pgd(
            m, x, t, eps=e, alpha=e / 4, steps=5, random_start=False, targeted=True, loss=loss
        ),
        lambda m, e: torchattacks.PGD(m, eps=e, alpha=e / 4, steps=5, random_start=False),
    ),
]


@pytest.mark.parametrize(("ours", "theirs"), [c[1:] for c in TARGETED], ids=[c[0] for c in TARGETED])
def test_targeted_matches_torchattacks_by_label(model, batch, ours, theirs):
    x, y = batch
    target = 1 - y
    for eps in (2 / 255, 8 / 255):
        attack = theirs(model, eps)
        attack.set_mode_targeted_by_label(quiet=True)
        mine, ref = ours(model, x, target, eps), attack(x, target)
        assert _max_diff(mine, ref) <= TOL, eps
        assert _max_diff(mine, fgsm(model, x, target, eps=eps)) > 0  # targeted is not the untargeted step


def test_model_mode_after_torchattacks_and_ours_agree(model, batch):
    """Both leave a model in training mode in training mode (torchattacks attacks it in eval mode, as we do)."""
    x, y = batch
    model.train()
    try:
        ref = torchattacks.FGSM(model, eps=4 / 255)(x, y)
        assert model.training
        mine = fgsm(model, x, y, eps=4 / 255)
        assert model.training
    finally:
        model.eval()
    assert _max_diff(mine, ref) <= TOL
