"""FGSM and PGD: the eps ball, the model left as it was, a higher loss, reproducibility, input checks."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from engine.attacks import ATTACKS, fgsm, format_eps, parse_eps, pgd
from engine.errors import AttackError, ConfigError
from engine.models.registry import create_model

EPS = 8 / 255


def _model(seed=0):
    torch.manual_seed(seed)
    return create_model("small_cnn").eval()


def _batch(n=8, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g)
    x[0, :, :4, :4] = 0.0  # pixels at the edges of [0, 1], where clamping matters
    x[1, :, :4, :4] = 1.0
    y = torch.randint(0, 2, (n,), generator=g)
    return x, y


def _pgd_seeded(model, x, y, **kw):
    return pgd(model, x, y, generator=torch.Generator().manual_seed(0), **kw)


ATTACK_VARIANTS = {
    "fgsm": fgsm,
    "pgd": functools.partial(_pgd_seeded, random_start=True, steps=5),
    "pgd-no-random-start": functools.partial(pgd, random_start=False, steps=5),
}
ids = list(ATTACK_VARIANTS)
variants = [ATTACK_VARIANTS[k] for k in ids]


def _loss(model, x, y):
    with torch.no_grad():
        return F.cross_entropy(model(x), y, reduction="none")


def test_registry():
    assert ATTACKS == {"fgsm": fgsm, "pgd": pgd}


@pytest.mark.parametrize("attack", variants, ids=ids)
def test_result_in_eps_ball_and_pixel_range(attack):
    model, (x, y) = _model(), _batch()
    x_before = x.clone()
    x_adv = attack(model, x, y, eps=EPS)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert not x_adv.requires_grad
    assert (x_adv - x).abs().max() <= EPS + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv != x).float().mean() > 0.5  # it actually moved most pixels
    assert torch.equal(x, x_before)  # the input is not modified in place


@pytest.mark.parametrize("attack", variants, ids=ids)
@pytest.mark.parametrize("start_mode", ["train", "eval", "mixed"])
def test_model_mode_and_parameter_flags_restored(attack, start_mode):
    model = _model()
    if start_mode == "train":
        model.train()
    elif start_mode == "mixed":
        model.train()
        model.backbone[1].eval()  # one block in eval, the rest training
    frozen = model.backbone[0][0].weight
    frozen.requires_grad_(False)  # a frozen layer must stay frozen, the rest trainable
    modes = {name: m.training for name, m in model.named_modules()}
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    bn_stats = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = _batch()

    attack(model, x, y, eps=EPS)

    assert {name: m.training for name, m in model.named_modules()} == modes
    assert {name: p.requires_grad for name, p in model.named_parameters()} == flags
    assert not frozen.requires_grad
    assert all(p.grad is None for p in model.parameters())
    # the attack ran in eval mode: BatchNorm running statistics were not updated
    for key, value in model.state_dict().items():
        assert torch.equal(value, bn_stats[key]), key


@pytest.mark.parametrize("attack", variants, ids=ids)
def test_loss_higher_on_adversarial_images(attack):
    model, (x, y) = _model(), _batch()
    clean, adv = _loss(model, x, y), _loss(model, attack(model, x, y, eps=EPS), y)
    assert adv.mean() > clean.mean() + 1e-3
    assert (adv > clean).float().mean() >= 0.75


def test_pgd_is_at_least_as_strong_as_fgsm():
    model, (x, y) = _model(), _batch()
    l_fgsm = _loss(model, fgsm(model, x, y, eps=EPS), y).mean()
    l_pgd = _loss(model, pgd(model, x, y, eps=EPS, steps=5, random_start=False), y).mean()
    assert l_pgd >= l_fgsm - 1e-4


@pytest.mark.parametrize("attack", [fgsm, functools.partial(pgd, random_start=False, steps=5)], ids=["fgsm", "pgd"])
def test_targeted_moves_towards_the_target(attack):
    model, (x, _) = _model(), _batch()
    target = torch.ones(len(x), dtype=torch.long)
    before = _loss(model, x, target)
    after = _loss(model, attack(model, x, target, eps=EPS, targeted=True), target)
    assert after.mean() < before.mean() - 1e-3
    assert (after < before).float().mean() >= 0.75
    # and the untargeted attack with the same labels moves the other way
    away = _loss(model, attack(model, x, target, eps=EPS), target)
    assert away.mean() > before.mean()


def test_fgsm_matches_hand_computed_reference():
    model, (x, y) = _model(), _batch()
    xr = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(xr), y)
    (grad,) = torch.autograd.grad(loss, xr)
    ref = torch.clamp(x + EPS * grad.sign(), 0, 1)
    for p in model.parameters():
        p.grad = None
    out = fgsm(model, x, y, eps=EPS)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-7)
    # targeted = a step down the gradient of the target's loss
    target = 1 - y
    xr = x.clone().requires_grad_(True)
    (grad_t,) = torch.autograd.grad(F.cross_entropy(model(xr), target), xr)
    torch.testing.assert_close(
        fgsm(model, x, target, eps=EPS, targeted=True), torch.clamp(x - EPS * grad_t.sign(), 0, 1), rtol=0, atol=1e-7
    )


def test_one_step_pgd_without_random_start_is_fgsm():
    model, (x, y) = _model(), _batch()
    torch.testing.assert_close(
        pgd(model, x, y, eps=EPS, alpha=EPS, steps=1, random_start=False), fgsm(model, x, y, eps=EPS), rtol=0, atol=1e-7
    )


def test_pgd_deterministic_with_seeded_generator():
    model, (x, y) = _model(), _batch()

    def run(seed):
        return pgd(model, x, y, eps=EPS, steps=3, random_start=True, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(7), run(7))
    assert not torch.equal(run(7), run(8))
    no_start = [pgd(model, x, y, eps=EPS, steps=3, random_start=False) for _ in range(2)]
    assert torch.equal(*no_start)


def test_eps_zero_returns_the_input():
    model, (x, y) = _model(), _batch()
    assert torch.equal(fgsm(model, x, y, eps=0.0), x)
    assert torch.equal(_pgd_seeded(model, x, y, eps=0.0, steps=2, random_start=True), x)


def test_alpha_smaller_than_eps_stays_within_steps_times_alpha():
    model, (x, y) = _model(), _batch()
    x_adv = pgd(model, x, y, eps=EPS, alpha=1 / 255, steps=2, random_start=False)
    assert (x_adv - x).abs().max() <= 2 / 255 + 1e-6


@pytest.mark.parametrize("attack", [fgsm, pgd], ids=["fgsm", "pgd"])
def test_invalid_inputs_raise_attack_error(attack):
    model, (x, y) = _model(), _batch(n=4)
    with pytest.raises(AttackError, match="eps"):
        attack(model, x, y, eps=1.5)
    with pytest.raises(AttackError, match="eps"):
        attack(model, x, y, eps=-0.01)
    with pytest.raises(AttackError, match=r"\[0, 1\]"):
        attack(model, x * 255, y, eps=EPS)
    with pytest.raises(AttackError, match=r"\[0, 1\]"):
        attack(model, x - 0.5, y, eps=EPS)
    with pytest.raises(AttackError, match="shape"):
        attack(model, x[0], y, eps=EPS)
    with pytest.raises(AttackError, match="shape"):
        attack(model, x[:, :1], y, eps=EPS)
    with pytest.raises(AttackError, match="labels"):
        attack(model, x, y[:3], eps=EPS)


def test_pgd_invalid_steps_or_alpha():
    model, (x, y) = _model(), _batch(n=4)
    with pytest.raises(AttackError, match="steps"):
        pgd(model, x, y, eps=EPS, steps=0)
    with pytest.raises(AttackError, match="alpha"):
        pgd(model, x, y, eps=EPS, alpha=0.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2/255", 2 / 255),
        (" 8/255 ", 8 / 255),
        ("0.0078", 0.0078),
        ("0", 0.0),
        ("1", 1.0),
        (0.5, 0.5),
        (0, 0.0),
        (2 / 255, 2 / 255),
    ],
)
def test_parse_eps(text, expected):
    assert parse_eps(text) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "bad", ["", "abc", "2/", "1/0", "2/255x", "1.5", "-1/255", "256/255", 1.01, -0.1, float("nan")]
)
def test_parse_eps_refuses_bad_values(bad):
    with pytest.raises(ConfigError):
        parse_eps(bad)


@pytest.mark.parametrize(
    ("eps", "text"), [(2 / 255, "2/255"), (8 / 255, "8/255"), (1 / 255, "1/255"), (0.0078, "0.0078"), (0.5, "0.5")]
)
def test_format_eps(eps, text):
    assert format_eps(eps) == text


@pytest.mark.parametrize("k", [1, 2, 4, 8, 16])
def test_format_then_parse_round_trips(k):
    assert parse_eps(format_eps(k / 255)) == pytest.approx(k / 255, abs=1e-12)
