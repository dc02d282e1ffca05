"""Square Attack, L-inf (Andriushchenko, Croce, Flammarion & Hein, ECCV 2020), with numpy only.

A score-based black-box attack: it only sees the scores the model returns, never a gradient. It starts
from vertical stripes of +-eps and then tries, one query per image and iteration, to replace a random
square of the perturbation by a new +-eps colour; a candidate is kept when the margin loss
``z[y] - max_{k != y} z[k]`` on the logits decreases. Images already fooled are no longer queried.

The margin is taken on logits, not on probabilities: a confident model's float32 softmax saturates to
exactly 1 and 0, where every candidate has the same (infinite) margin and the search has nothing to
follow. (Measured on the demo's DenseNet: on probabilities no image flipped at 8/255.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.core.errors import AttackError
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report

Predict = Callable[[np.ndarray], np.ndarray]  # float32 NCHW in [0, 1] -> logits (N, C)
_STAGE = "square attack"
# query milestones of the paper (out of 10,000) at which the square's area fraction p halves
_MILESTONES = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


@dataclass
class SquareResult:
    """``x_adv`` (N, 3, H, W) float32; ``queries`` per image (the clean query is not counted, as in the
    paper; 0 for images the model already got wrong); ``success`` where a correct (untargeted) or
    not-yet-target (targeted) prediction was turned; ``probabilities`` of ``x_adv``; ``clean_correct``
    where the attack had work to do; ``accuracy_curve[q]`` the fraction of images not (yet) turned
    after q queries, q = 0..n_queries (robust accuracy vs queries for untargeted attacks)."""

    x_adv: np.ndarray
    queries: np.ndarray
    success: np.ndarray
    probabilities: np.ndarray
    clean_correct: np.ndarray
    accuracy_curve: np.ndarray


def p_schedule(p_init: float, iteration: int, n_queries: int) -> float:
    """The paper's schedule: p_init halves at its milestones, rescaled from 10,000 queries to ``n_queries``."""
    it = int(iteration / n_queries * 10000)
    halvings = sum(it > m for m in _MILESTONES)
    return p_init / 2**halvings


def predicted(logits: np.ndarray) -> np.ndarray:
    """The engine's decision rule on logits: p(class 1) >= 0.5 (z1 >= z0) for two classes, else the arg-max."""
    return (logits[:, 1] >= logits[:, 0]).astype(np.int64) if logits.shape[1] == 2 else logits.argmax(1)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def margin(logits: np.ndarray, y: np.ndarray, targeted: bool) -> np.ndarray:
    """z[y] - max_{k != y} z[k] (= log p[y] - max log p[k]; negated when targeted): the loss driven down."""
    z = logits.astype(np.float64)
    rows = np.arange(len(y))
    own = z[rows, y].copy()
    z[rows, y] = -np.inf
    m = own - z.max(axis=1)
    return -m if targeted else m


def _fooled(logits: np.ndarray, y: np.ndarray, targeted: bool) -> np.ndarray:
    pred = predicted(logits)
    return pred == y if targeted else pred != y


def _check(x: np.ndarray, y: np.ndarray, eps: float, n_queries: int, p_init: float) -> None:
    if not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[1] != 3:
        raise AttackError(f"images must be a float (N, 3, H, W) numpy array, got {getattr(x, 'shape', type(x))}")
    if min(x.shape[2:]) < 2:
        raise AttackError(f"images of {x.shape[2]}x{x.shape[3]} pixels are too small for square attack")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise AttackError("images must be RGB in [0, 1] (normalisation is the model's first layer)")
    if y.shape != (x.shape[0],):
        raise AttackError(f"{x.shape[0]} images but labels of shape {y.shape}")
    if not 0 < eps <= 1:
        raise AttackError(f"eps {eps} must be in (0, 1]; give it in pixel units, e.g. 8/255")
    if n_queries < 1 or not 0 < p_init <= 1:
        raise AttackError(f"square attack needs n_queries >= 1 and 0 < p_init <= 1 (got {n_queries}, {p_init})")


def _new_squares(rng, x, x_best, eps: float, p: float) -> np.ndarray:
    """Candidates: for each image, one random square of side ~sqrt(p * H * W) set to a new +-eps colour
    (redrawn while it would not change the current best image)."""
    n, c, h, w = x.shape
    s = int(min(max(round(np.sqrt(p * h * w)), 1), min(h, w) - 1))
    top, left = rng.integers(0, h - s, n), rng.integers(0, w - s, n)
    window = (
        np.arange(n)[:, None, None, None],
        np.arange(c)[None, :, None, None],
        (top[:, None] + np.arange(s))[:, None, :, None],
        (left[:, None] + np.arange(s))[:, None, None, :],
    )
    x_win, best_win, delta = x[window], x_best[window], x_best - x
    new = np.empty_like(x_win)
    todo = np.arange(n)
    while todo.size:
        new[todo] = np.clip(x_win[todo] + rng.choice([-eps, eps], size=(todo.size, c, 1, 1)), 0, 1)
        same = np.abs(new[todo] - best_win[todo]).max(axis=(1, 2, 3)) < 1e-7
        todo = todo[same]
    delta[window] = new - x_win
    return np.clip(x + delta, 0, 1).astype(np.float32)


def square_attack(
    predict: Predict,
    x: np.ndarray,
    y: np.ndarray,
    *,
    eps: float,
    n_queries: int = 300,
    p_init: float = 0.05,
    seed: int = 0,
    targeted: bool = False,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> SquareResult:
    """Square Attack (L-inf) with at most ``n_queries`` queries per image, reproducible with ``seed``.

    ``predict`` maps float32 NCHW images in [0, 1] to logits (N, C); ``y`` holds the true labels
    (untargeted) or the target labels (``targeted=True``: move towards them). Defaults follow the paper
    (p_init 0.05 for L-inf); ``eps`` is in pixel units (8/255). The input array is not modified.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    _check(x, y, eps, n_queries, p_init)
    rng = np.random.default_rng(seed)
    n, c, h, w = x.shape
    probs = np.asarray(predict(x), dtype=np.float32)  # logits, named as what the result reports
    if probs.shape != (n, probs.shape[-1]) or (n and (y.min() < 0 or y.max() >= probs.shape[1])):
        raise AttackError(f"labels must be class indices 0..{probs.shape[-1] - 1} of the model's {probs.shape} output")
    todo = ~_fooled(probs, y, targeted)  # clean query: the images there is something to attack
    x_best, queries, success = x.copy(), np.zeros(n, np.int64), np.zeros(n, bool)
    if todo.any():
        x_best[todo] = np.clip(x[todo] + rng.choice([-eps, eps], size=(int(todo.sum()), c, 1, w)), 0, 1)
        probs[todo] = predict(x_best[todo])
        queries[todo] = 1
    best = margin(probs, y, targeted)
    success[todo] = _fooled(probs[todo], y[todo], targeted)
    for it in range(n_queries - 1):
        check_cancel(cancel, _STAGE)
        if it % 10 == 0:
            _report(on_progress, it + 1, n_queries, success, todo)
        idx = np.flatnonzero(todo & ~success)
        if idx.size == 0:
            break
        x_new = _new_squares(rng, x[idx], x_best[idx], eps, p_schedule(p_init, it, n_queries))
        p_new = np.asarray(predict(x_new), dtype=np.float32)
        m_new = margin(p_new, y[idx], targeted)
        better = m_new < best[idx]
        keep = idx[better]
        x_best[keep], probs[keep], best[keep] = x_new[better], p_new[better], m_new[better]
        queries[idx] += 1
        success[keep] = _fooled(p_new[better], y[keep], targeted)
    _report(on_progress, n_queries, n_queries, success, todo)
    return SquareResult(x_best, queries, success, softmax(probs), todo, _curve(queries, success, todo, n_queries))


def _curve(queries: np.ndarray, success: np.ndarray, todo: np.ndarray, n_queries: int) -> np.ndarray:
    n = len(queries)
    if n == 0:
        return np.zeros(n_queries + 1)
    turned = np.bincount(queries[success], minlength=n_queries + 1)[: n_queries + 1]
    return (todo.sum() - np.cumsum(turned)) / n


def _report(on_progress, done: int, total: int, success: np.ndarray, todo: np.ndarray) -> None:
    acc = float((todo & ~success).mean()) if len(todo) else 0.0
    report(on_progress, _STAGE, done, total, unit="queries", metrics={"accuracy": acc})
