"""Adversarial training losses for the one training loop (``engine.train.loop``).

- ``fgsm-rs``: "fast" adversarial training (Wong, Rice & Kolter, ICLR 2020): a uniform random start in the
  eps ball and one signed-gradient step of 1.25 eps, i.e. PGD with one step. Cheap (two passes per batch)
  but prone to catastrophic overfitting, which the loop watches for with PGD and FGSM checks on validation data.
- ``pgd``: PGD adversarial training (Madry et al., ICLR 2018), ``adv_steps`` steps of 2.5 eps / steps.
- ``trades``: TRADES (Zhang et al., ICML 2019): clean cross-entropy + beta * KL(f(x) || f(x')), where x'
  maximises that KL inside the eps ball.
- ``gaussian``: Gaussian data augmentation for randomized smoothing (Cohen, Rosenfeld & Kolter, ICML 2019): every
  image of the batch is trained on as x + N(0, noise_sigma^2), noise in pixel units on the [0, 1] image, drawn from
  the epoch's generator and NOT clamped to [0, 1] (the paper does not clamp, and the certificate of
  ``engine.deploy.certify`` is for exactly that noise). ``adv_ratio`` and ``adv_eps`` do not apply.

With ``adv_ratio`` < 1 only that fraction of each batch is replaced by its adversarial copy; the rest stays
clean (mixed training). The attacked images are drawn at random from the epoch's generator (seeded, so a run
is reproducible), balanced by class: each class gives about ``adv_ratio`` of its images in the batch, the
shares rounded so that ``round(adv_ratio * n)`` are attacked in all. Every image keeps its index, so the
labels still match. (Batches may come in path order, all benign first: taking the first images would
attack nearly only one class.) Adversarial examples are made with the model in eval mode and frozen
parameters (``attack_mode``), in float32, from the batch after augmentation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.attacks import pgd
from engine.attacks._common import attack_mode, project
from engine.core.config import TrainConfig

# Training attacks climb cross-entropy, the loss the defences' papers trained with (the evaluation's attacks use the
# margin, which does not saturate): on a model still learning the two give the same signed step.
LOSS = "ce"


def adversarial_loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: TrainConfig,
    weights: torch.Tensor,
    gen: torch.Generator,
    amp: torch.dtype | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training loss of one batch under ``cfg.adversarial`` and the logits used for its accuracy."""
    inputs = adversarial_inputs(model, x, y, cfg, gen)
    return defence_loss(model, inputs, y, cfg, weights, amp)


def adversarial_inputs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, gen: torch.Generator):
    """What the defence's loss is taken on: (x, x') for TRADES, else (the batch to classify, None): the batch with
    its FGSM-RS / PGD copies (``mixed_batch``), or with Gaussian noise."""
    if cfg.adversarial == "trades":
        return x, trades_adversary(model, x, cfg.adv_eps, cfg.adv_steps, gen)
    if cfg.adversarial in ("fgsm-rs", "pgd"):
        return mixed_batch(model, x, y, cfg, gen), None
    if cfg.adversarial == "gaussian":
        return gaussian_noise(x, cfg.noise_sigma, gen), None
    return x, None


def defence_loss(
    model: nn.Module,
    inputs: tuple[torch.Tensor, torch.Tensor | None],
    y: torch.Tensor,
    cfg: TrainConfig,
    weights: torch.Tensor,
    amp: torch.dtype | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss of ``model`` on ``adversarial_inputs``' result, and the logits for the accuracy: class-weighted
    cross-entropy, plus ``trades_beta`` * KL(f(x) || f(x')) for TRADES. (AWP takes it twice: once for the
    direction of its weight perturbation, once at the perturbed weights for the step.)"""
    x, x_adv = inputs
    with torch.autocast(x.device.type, dtype=amp, enabled=amp is not None):
        if x_adv is None:
            logits = model(x).float()
        else:
            logits, logits_adv = model(torch.cat([x, x_adv])).float().chunk(2)
    loss = F.cross_entropy(logits, y, weight=weights)
    if x_adv is not None:
        kl = F.kl_div(F.log_softmax(logits_adv, 1), F.softmax(logits, 1), reduction="batchmean")
        loss = loss + cfg.trades_beta * kl
    return loss, logits


def gaussian_noise(x: torch.Tensor, sigma: float, gen: torch.Generator) -> torch.Tensor:
    """``x + sigma * N(0, 1)``, drawn from ``gen``, not clamped (randomized smoothing's training noise)."""
    noise = torch.randn(x.shape, generator=gen, device=gen.device).to(x.device, x.dtype)
    return x + sigma * noise


def mixed_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, gen: torch.Generator):
    """``x`` with ``round(adv_ratio * n)`` images, chosen by ``adversarial_indices``, replaced in place (same
    index) by FGSM-RS or PGD copies; ``x`` itself when none is chosen."""
    n_adv = round(cfg.adv_ratio * len(x))
    if n_adv == 0:
        return x
    eps = cfg.adv_eps
    steps, alpha = (1, 1.25 * eps) if cfg.adversarial == "fgsm-rs" else (cfg.adv_steps, 2.5 * eps / cfg.adv_steps)
    if n_adv >= len(x):
        return pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, random_start=True, generator=gen, loss=LOSS)
    idx = adversarial_indices(y, cfg.adv_ratio, gen)
    out = x.clone()
    out[idx] = pgd(model, x[idx], y[idx], eps=eps, alpha=alpha, steps=steps, random_start=True, generator=gen,
                   loss=LOSS)  # fmt: skip
    return out


def adversarial_indices(y: torch.Tensor, ratio: float, gen: torch.Generator) -> torch.Tensor:
    """Sorted indices of ``round(ratio * n)`` images of the batch, drawn from ``gen`` class by class."""
    labels = y.cpu()
    classes, counts = labels.unique(return_counts=True)
    quotas = class_quotas(counts, round(ratio * len(labels)), ratio, gen)
    chosen = []
    for c, k in zip(classes, quotas.tolist()):
        members = (labels == c).nonzero().flatten()
        chosen.append(members[torch.randperm(len(members), generator=gen, device=gen.device)[:k].cpu()])
    return torch.cat(chosen).sort().values.to(y.device)


def class_quotas(counts: torch.Tensor, total: int, ratio: float, gen: torch.Generator) -> torch.Tensor:
    """``ratio`` of each class count, rounded down, and the rest of ``total`` one each to the classes with the
    largest remainders (largest-remainder rounding; ties broken at random from ``gen``)."""
    exact = counts.double() * ratio
    quotas = exact.floor().long()
    rest = total - int(quotas.sum())
    if rest > 0:
        order = torch.randperm(len(counts), generator=gen, device=gen.device).cpu()
        remainders = (exact - quotas)[order]
        quotas[order[torch.argsort(remainders, descending=True, stable=True)[:rest]]] += 1
    return torch.minimum(quotas, counts)


def trades_adversary(model: nn.Module, x: torch.Tensor, eps: float, steps: int, gen: torch.Generator):
    """x' in the eps ball around ``x`` maximising KL(f(x) || f(x')), from x + 0.001 N(0, 1) (the paper's start)."""
    alpha = 2.5 * eps / steps
    with attack_mode(model) as net:
        with torch.no_grad():
            p_clean = F.softmax(net(x), 1)
        noise = torch.randn(x.shape, generator=gen, device=gen.device).to(x.device, x.dtype)
        x_adv = torch.clamp(x + 0.001 * noise, 0, 1).detach()
        for _ in range(steps):
            x_adv.requires_grad_(True)
            kl = F.kl_div(F.log_softmax(net(x_adv), 1), p_clean, reduction="sum")
            (grad,) = torch.autograd.grad(kl, x_adv)
            x_adv = project(x_adv.detach() + alpha * grad.sign(), x, eps)
    return x_adv
