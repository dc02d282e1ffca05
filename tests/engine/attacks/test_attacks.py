"""Every attack in the registry: the eps ball, the model left as it was, the loss moved the right way,
reproducibility, per-image eps, strength on a trained model, input and setting checks; eps as text."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.attacks import ATTACK_INFO, ATTACKS, apgd, bim, fgsm, make_attack, pgd
from engine.attacks._common import BestPoint
from engine.attacks.apgd import checkpoints
from engine.core.eps import format_eps, parse_eps
from engine.core.errors import AttackError, ConfigError
from engine.models.registry import create_model

EPS, EPS_L2, STEPS = 8 / 255, 0.5, 3
GRADIENT = [n for n in ATTACKS if ATTACK_INFO[n].kind == "white-box"]
BASELINES = [n for n in ATTACKS if ATTACK_INFO[n].kind == "baseline"]
# variant -> (registry name, make_attack settings): every attack, the gradient ones targeted too, PGD restarts
VARIANTS = {n: (n, {}) for n in ATTACKS}
VARIANTS |= {f"{n}-targeted": (n, {"targeted": True}) for n in GRADIENT}
VARIANTS["pgd-restarts2"] = ("pgd", {"restarts": 2})


def _model(seed=0, num_classes=2):
    torch.manual_seed(seed)
    return create_model("small_cnn", num_classes=num_classes).eval()


def _batch(n=8, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g)
    x[0, :, :4, :4] = 0.0  # pixels at the edges of [0, 1], where clamping matters
    x[1, :, :4, :4] = 1.0
    y = torch.randint(0, 2, (n,), generator=g)
    return x, y


def _eps(name):
    return EPS_L2 if ATTACK_INFO[name].norm == "l2" else EPS


def _make(variant, seed=0):
    name, settings = VARIANTS[variant]
    return make_attack(name, _eps(name), steps=STEPS, seed=seed, **settings)


def _labels(variant, y):
    """Targeted variants get the other class as their target."""
    return 1 - y if VARIANTS[variant][1].get("targeted") else y


def _loss(model, x, y):
    with torch.no_grad():
        return F.cross_entropy(model(x), y, reduction="none")


def _size(name, delta):
    flat = delta.flatten(1)
    return flat.norm(dim=1) if ATTACK_INFO[name].norm == "l2" else flat.abs().amax(1)


def test_registry():
    assert set(ATTACKS) == {"fgsm", "bim", "pgd", "pgd-l2", "apgd", "uniform-noise", "sign-noise"}
    assert ATTACKS["fgsm"] is fgsm and ATTACKS["pgd"] is pgd and ATTACKS["bim"] is bim and ATTACKS["apgd"] is apgd
    assert set(ATTACK_INFO) == set(ATTACKS)
    for info in ATTACK_INFO.values():
        assert info.kind in ("white-box", "baseline") and info.norm in ("linf", "l2")
        assert info.label and info.paper and info.iterative == (info.default_steps is not None)
    assert ATTACK_INFO["pgd"].label == "PGD (L-inf, random start)" and ATTACK_INFO["pgd-l2"].norm == "l2"


@pytest.mark.parametrize("variant", VARIANTS)
def test_result_in_eps_ball_and_pixel_range(variant):
    name = VARIANTS[variant][0]
    model, (x, y) = _model(), _batch()
    x_before = x.clone()
    x_adv = _make(variant)(model, x, _labels(variant, y))
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and x_adv.device == x.device
    assert not x_adv.requires_grad
    assert _size(name, x_adv - x).max() <= _eps(name) * (1 + 1e-5)
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv != x).float().mean() > 0.5  # it actually moved most pixels
    assert torch.equal(x, x_before)  # the input is not modified in place


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("start_mode", ["train", "eval", "mixed"])
def test_model_mode_and_parameter_flags_restored(variant, start_mode):
    model = _model()
    if start_mode != "eval":
        model.train()
    if start_mode == "mixed":
        model.backbone[1].eval()  # one block in eval, the rest training
    frozen = model.backbone[0][0].weight
    frozen.requires_grad_(False)  # a frozen layer must stay frozen, the rest trainable
    modes = {name: m.training for name, m in model.named_modules()}
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = _batch()

    _make(variant)(model, x, _labels(variant, y))

    assert {name: m.training for name, m in model.named_modules()} == modes
    assert {name: p.requires_grad for name, p in model.named_parameters()} == flags
    assert all(p.grad is None for p in model.parameters())
    for key, value in model.state_dict().items():  # eval mode: BatchNorm statistics were not updated
        assert torch.equal(value, state[key]), key


@pytest.mark.parametrize("variant", [v for v in VARIANTS if VARIANTS[v][0] in GRADIENT])
def test_gradient_attacks_move_the_loss_the_right_way(variant):
    model, (x, y) = _model(), _batch()
    labels = _labels(variant, y)
    before, after = _loss(model, x, labels), _loss(model, _make(variant)(model, x, labels), labels)
    if VARIANTS[variant][1].get("targeted"):  # towards the target: its loss falls
        before, after = -before, -after
    assert after.mean() > before.mean() + 1e-3
    assert (after > before).float().mean() >= 0.75


@pytest.mark.parametrize("variant", VARIANTS)
def test_same_seed_same_result_other_seed_other_result(variant):
    model, (x, y) = _model(), _batch()
    y = _labels(variant, y)
    first, again, other = (_make(variant, seed=s)(model, x, y) for s in (0, 0, 1))
    assert torch.equal(first, again)
    if ATTACK_INFO[VARIANTS[variant][0]].random:
        assert not torch.equal(first, other)
    else:  # FGSM and BIM draw nothing: the seed changes nothing
        assert torch.equal(first, other)


@pytest.mark.parametrize("name", ATTACKS)
def test_per_image_eps_matches_per_image_float_calls(name):
    model, (x, y) = _model(), _batch()
    scale = EPS_L2 / EPS if ATTACK_INFO[name].norm == "l2" else 1.0
    eps = torch.tensor([0, 1, 2, 3, 4, 6, 8, 16]) / 255 * scale
    batched = make_attack(name, eps, steps=STEPS, seed=3)(model, x, y)
    assert torch.equal(batched[0], x[0])  # eps 0: the image itself
    for i, e in enumerate(eps.tolist()):
        single = make_attack(name, e, steps=STEPS, seed=3)(model, x, y)
        torch.testing.assert_close(batched[i], single[i], rtol=0, atol=1e-6)
    assert (_size(name, batched - x) <= eps * (1 + 1e-5)).all()  # each image within its own ball


def _synthetic(n, seed, shift=0.03):
    """Class 1 a little redder than class 0: learnt in a few steps, with a margin of a few grey levels."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.rand(n, 3, 16, 16, generator=g) * 0.6 + 0.2
    x[:, 0] += shift * (2 * y[:, None, None] - 1)
    return x.clamp(0, 1), y


@pytest.fixture(scope="module")
def trained():
    model, (x, y) = _model(), _synthetic(128, seed=0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(25):
        idx = torch.arange(32) + 32 * (step % 4)
        optimiser.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        optimiser.step()
    model.eval().zero_grad(set_to_none=True)
    x_test, y_test = _synthetic(16, seed=1)
    assert (model(x_test).argmax(1) == y_test).float().mean() == 1.0
    return model, x_test, y_test


def _strength(model, x_adv, y):
    """(accuracy, mean loss) on the attacked images."""
    with torch.no_grad():
        logits = model(x_adv)
    return (logits.argmax(1) == y).float().mean().item(), F.cross_entropy(logits, y).item()


@pytest.mark.parametrize("name", ["bim", "pgd", "apgd"])
def test_iterative_attacks_at_least_as_strong_as_fgsm(trained, name):
    model, x, y = trained
    acc_fgsm, loss_fgsm = _strength(model, fgsm(model, x, y, eps=4 / 255), y)
    acc, loss = _strength(model, make_attack(name, 4 / 255, steps=10)(model, x, y), y)
    assert acc_fgsm < 1.0 and acc <= acc_fgsm and loss >= loss_fgsm - 1e-4


@pytest.mark.parametrize("name", BASELINES)
def test_noise_baselines_are_weaker_than_pgd(trained, name):
    model, x, y = trained
    acc_pgd, loss_pgd = _strength(model, make_attack("pgd", EPS, steps=10)(model, x, y), y)
    acc, loss = _strength(model, make_attack(name, EPS)(model, x, y), y)
    assert acc_pgd < 0.5 and acc == 1.0 and loss < loss_pgd / 10


@pytest.mark.parametrize(("name", "steps"), [("pgd", 2), ("pgd-l2", 2), ("apgd", 3)])
def test_restarts_never_worse_than_the_first_run(trained, name, steps):
    """Same seed: run 1 of several is the single run, so per image the kept point is at least as good."""
    model, x, y = trained
    eps = 1 if name == "pgd-l2" else 2 / 255
    one, three = (make_attack(name, eps, steps=steps, restarts=r, seed=5)(model, x, y) for r in (1, 3))
    loss_one, loss_three = (_loss(model, a, y) for a in (one, three))  # 2 classes: the higher loss succeeds
    assert (loss_three >= loss_one - 1e-6).all()
    assert (loss_three > loss_one + 1e-6).any()


@pytest.mark.parametrize("targeted", [False, True])
def test_best_point_prefers_a_success_then_the_higher_objective(targeted):
    x, y = torch.zeros(3, 3, 2, 2), torch.tensor([0, 0, 0]) if not targeted else torch.tensor([1, 1, 1])
    fails, image0_succeeds = torch.tensor([[2.0, 0, 0]] * 3), torch.tensor([[0.0, 2, 0], [2, 0, 0], [2, 0, 0]])
    best = BestPoint(x, y, targeted)
    best.update(x + 0.1, fails, torch.tensor([1.0, 1.0, 1.0]))
    best.update(x + 0.2, image0_succeeds, torch.tensor([0.5, 2.0, 0.5]))  # 0: success, 1: higher, 2: lower
    best.update(x + 0.3, fails, torch.tensor([9.0, 0.0, 0.0]))  # a failure never replaces a success
    assert best.x[:, 0, 0, 0].tolist() == pytest.approx([0.2, 0.2, 0.1])
    assert best.success.tolist() == [True, False, False]


def test_apgd_checkpoints_follow_the_paper():
    assert sorted(checkpoints(100)) == [0, 22, 41, 57, 70, 80, 87, 93, 99]
    assert sorted(checkpoints(20)) == [0, 5, 9, 12, 14, 16, 18, 19, 20]


class _Peak(torch.nn.Module):
    """Logits [0, -k (s - c)^2], s = mean(x - 0.5): the loss of class 0 peaks at s = c, inside the eps ball."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = c

    def forward(self, x):
        s = (x - 0.5).flatten(1).mean(1)
        return torch.stack([torch.zeros_like(s), -1e4 * (s - self.c) ** 2], 1)


@pytest.mark.parametrize("c", [0.3, -0.55, 0.8])
def test_apgd_step_size_halves_onto_a_narrow_peak(c):
    """Steps of 2 * eps overshoot the peak (PGD with them ends at the edge of the ball); halving at the
    checkpoints and restarting from the best point reach it (without either: 2e-3 to 0.2 eps away)."""
    model, x, y = _Peak(c * EPS), torch.full((4, 3, 8, 8), 0.5), torch.zeros(4, dtype=torch.long)
    x_adv = apgd(model, x, y, eps=EPS, steps=50, generator=torch.Generator().manual_seed(0))
    assert ((x_adv - 0.5).flatten(1).mean(1) - c * EPS).abs().max() < 1e-3 * EPS


def test_apgd_dlr_loss_needs_three_classes():
    x, y = _batch(n=4)
    with pytest.raises(AttackError, match="ce"):
        apgd(_model(), x, y, loss="dlr", steps=2)
    model = _model(num_classes=3)
    before, after = _loss(model, x, y), _loss(model, apgd(model, x, y, loss="dlr", steps=5), y)
    assert after.mean() > before.mean()
    with pytest.raises(AttackError, match="loss"):
        apgd(model, x, y, loss="dlr", targeted=True)


def test_fgsm_matches_hand_computed_reference():
    model, (x, y) = _model(), _batch()
    for labels, targeted, sign in ((y, False, 1), (1 - y, True, -1)):
        xr = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(xr), labels), xr)
        expected = torch.clamp(x + sign * EPS * grad.sign(), 0, 1)
        torch.testing.assert_close(fgsm(model, x, labels, eps=EPS, targeted=targeted), expected, rtol=0, atol=1e-7)


def test_one_step_pgd_and_bim_without_random_start_are_fgsm():
    model, (x, y) = _model(), _batch()
    expected = fgsm(model, x, y, eps=EPS)
    torch.testing.assert_close(pgd(model, x, y, eps=EPS, alpha=EPS, steps=1, random_start=False), expected)
    torch.testing.assert_close(bim(model, x, y, eps=EPS, alpha=EPS, steps=1), expected, rtol=0, atol=1e-7)
    torch.testing.assert_close(bim(model, x, y, eps=EPS, steps=4), pgd(model, x, y, steps=4, random_start=False))


@pytest.mark.parametrize("name", ATTACKS)
def test_eps_zero_returns_the_input(name):
    model, (x, y) = _model(), _batch()
    assert torch.equal(make_attack(name, 0.0, steps=2)(model, x, y), x)


def test_alpha_smaller_than_eps_stays_within_steps_times_alpha():
    model, (x, y) = _model(), _batch()
    for x_adv in (
        pgd(model, x, y, eps=EPS, alpha=1 / 255, steps=2, random_start=False),
        bim(model, x, y, eps=EPS, alpha=1 / 255, steps=2),
    ):
        assert (x_adv - x).abs().max() <= 2 / 255 + 1e-6


@pytest.mark.parametrize("name", ATTACKS)
def test_invalid_inputs_raise_attack_error(name):
    attack, linf = ATTACKS[name], ATTACK_INFO[name].norm == "linf"
    model, (x, y) = _model(), _batch(n=4)
    bad_eps = [-0.01, float("nan"), torch.full((3,), EPS), torch.tensor([EPS, -EPS, EPS, EPS])] + [1.5] * linf
    for eps in bad_eps:
        with pytest.raises(AttackError, match="eps"):
            attack(model, x, y, eps=eps)
    for images, match in ((x * 255, r"\[0, 1\]"), (x - 0.5, r"\[0, 1\]"), (x[0], "shape"), (x[:, :1], "shape")):
        with pytest.raises(AttackError, match=match):
            attack(model, images, y, eps=EPS)
    with pytest.raises(AttackError, match="labels"):
        attack(model, x, y[:3], eps=EPS)


def test_invalid_steps_alpha_restarts_norm_raise_attack_error():
    model, (x, y) = _model(), _batch(n=4)
    for kwargs, match in (
        ({"steps": 0}, "steps"),
        ({"alpha": 0.0}, "alpha"),
        ({"restarts": 0}, "restarts"),
        ({"restarts": 2, "random_start": False}, "random_start"),
        ({"norm": "l1"}, "norm"),
    ):
        with pytest.raises(AttackError, match=match):
            pgd(model, x, y, eps=EPS, **kwargs)
    with pytest.raises(AttackError, match="steps"):
        bim(model, x, y, eps=EPS, steps=0)
    with pytest.raises(AttackError, match="rho"):
        apgd(model, x, y, eps=EPS, rho=0.0)


def test_make_attack_checks_its_settings():
    with pytest.raises(ConfigError, match="fgsm, bim, pgd, pgd-l2, apgd, uniform-noise, sign-noise"):
        make_attack("cw", EPS)
    for name, kwargs in (("pgd", {"steps": 0}), ("bim", {"alpha": -1.0}), ("apgd", {"restarts": 0})):
        with pytest.raises(ConfigError, match="steps >= 1"):
            make_attack(name, EPS, **kwargs)
    with pytest.raises(ConfigError, match="eps"):
        make_attack("pgd", 1.5)
    assert callable(make_attack("pgd-l2", 1.5))  # an L2 radius may exceed 1
    assert callable(make_attack("fgsm", EPS, steps=10, alpha=1 / 255))  # settings an attack does not take


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2/255", 2 / 255), (" 8/255 ", 8 / 255), ("0.0078", 0.0078), ("0", 0.0), ("1", 1.0), (0.5, 0.5), (0, 0.0)],
)
def test_parse_eps(text, expected):
    assert parse_eps(text) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "bad", ["", "abc", "2/", "1/0", "2/255x", "1.5", "-1/255", "256/255", 1.01, -0.1, float("nan")]
)
def test_parse_eps_refuses_bad_values(bad):
    with pytest.raises(ConfigError):
        parse_eps(bad)


@pytest.mark.parametrize(("eps", "text"), [(2 / 255, "2/255"), (1 / 255, "1/255"), (0.0078, "0.0078"), (0.5, "0.5")])
def test_format_eps(eps, text):
    assert format_eps(eps) == text


@pytest.mark.parametrize("k", [1, 2, 4, 8, 16])
def test_format_then_parse_round_trips(k):
    assert parse_eps(format_eps(k / 255)) == pytest.approx(k / 255, abs=1e-12)


def test_pgd_early_stop_leaves_flipped_images_alone_and_flips_at_least_as_many():
    """Early stop (for robust accuracy and minimal eps): an image stops once misclassified."""
    torch.manual_seed(0)
    model = create_model("small_cnn").eval()
    g = torch.Generator().manual_seed(3)
    x = torch.rand(24, 3, 16, 16, generator=g)
    with torch.no_grad():
        clean = model(x).argmax(1)
    y = clean.clone()
    y[:4] = 1 - clean[:4]  # four images start misclassified: nothing to do for them
    seen = []

    class Counting(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, t):
            seen.append(len(t))
            return self.inner(t)

    counted = Counting(model).eval()
    eps = 16 / 255
    early = pgd(counted, x, y, eps=eps, alpha=4 / 255, steps=8, random_start=False, early_stop=True)
    steps_run = len(seen)
    full = pgd(model, x, y, eps=eps, alpha=4 / 255, steps=8, random_start=False)
    assert torch.equal(early[:4], x[:4])  # misclassified from the start: returned untouched
    assert (early - x).abs().max() <= eps + 1e-6 and early.min() >= 0 and early.max() <= 1
    with torch.no_grad():
        wrong_early = (model(early).argmax(1) != y).sum().item()
        wrong_full = (model(full).argmax(1) != y).sum().item()
    assert wrong_early >= wrong_full - 1  # at least as strong (one image of slack for float rounding)
    assert seen[0] == 24 and seen[1] <= 20 and sum(seen[:steps_run]) < 24 * 8  # fewer images per pass
