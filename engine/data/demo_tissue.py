"""How the SYNTHETIC demo tissue is drawn: a Beer-Lambert stain model (haematoxylin for nuclei, eosin for
stroma) over random glands, nuclei and fibres. Benign images show small regular nuclei lining gland lumens;
malignant ones large, dark, crowded, irregular nuclei. Not real tissue (``engine.data.demo`` writes the set).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

_MAG_SCALE = {40: 1.0, 100: 1.15, 200: 1.3, 400: 1.5}
_BASE = (175, 115)  # structure sizes below are in pixels of an image this size
_SS = 2  # shapes are drawn at twice the size, then box-filtered down (anti-aliasing)
_E_OD = np.array([0.082, 0.405, 0.243])  # optical density of eosin stroma, RGB ~ (235, 170, 200)
_H_OD = np.array([1.04, 1.45, 0.53])  # haematoxylin OD of a benign nucleus, RGB ~ (90, 60, 150)
_H_MAX = 1.8  # haematoxylin density of a nucleus-layer value of 255


@dataclass(frozen=True)
class Patient:
    tumour: str
    h_od: np.ndarray
    e_od: np.ndarray
    density: float
    tint: float  # haematoxylin taken up by the stroma (purplish labs)


def make_patient(seed: int, label: int, patient: int, tumours: tuple[str, ...]) -> Patient:
    """Per-patient 'lab': stain strength and hue, and how dense the tissue is."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, label, patient, 0]))
    strength = rng.uniform(0.7, 1.45)  # whole-slide staining strength, shared by both stains
    h_od = _H_OD * strength * rng.uniform(0.85, 1.15) * (1 + rng.normal(0, 0.05, 3))
    e_od = _E_OD * strength * rng.uniform(0.8, 1.25) * (1 + rng.normal(0, 0.1, 3))
    return Patient(
        tumours[patient % len(tumours)],
        h_od.astype(np.float32),
        e_od.astype(np.float32),
        float(rng.uniform(0.8, 1.25)),
        float(rng.uniform(0.0, 0.15)),
    )


def render(
    patient: Patient, label: int, magnification: int, size: tuple[int, int], rng: np.random.Generator
) -> Image.Image:
    """One SYNTHETIC H&E-like image of ``patient`` (``label`` 0 benign, 1 malignant) at ``magnification``."""
    w, h = size
    px = min(w / _BASE[0], h / _BASE[1])
    unit = px * _MAG_SCALE[magnification]
    layers = {k: Image.new("L", (w * _SS, h * _SS)) for k in ("lumen", "cyto", "nuclei")}
    draw = {k: ImageDraw.Draw(im) for k, im in layers.items()}
    theta = rng.uniform(0, math.pi)
    area = w * h / (_BASE[0] * _BASE[1]) / unit**2  # field of view relative to a 40X base image
    _draw_spaces(draw["lumen"], rng, w, h, unit, int(rng.integers(0, 2 if label else 4)))
    _draw_fibroblasts(draw["nuclei"], rng, w, h, unit, theta, int(12 * area * patient.density))
    nest = None
    if label == 0:
        _draw_glands(draw, rng, w, h, unit, patient, area)
    else:
        nest = _draw_carcinoma(draw["nuclei"], rng, w, h, unit, theta, patient)
    lumen, cyto, nuclei = (
        np.asarray(layers[k].resize((w, h), Image.BOX), np.float32) / 255 for k in ("lumen", "cyto", "nuclei")
    )
    mucin = 0.0
    if nest is not None:
        cyto = np.maximum(cyto, nest)
        if patient.tumour == "MC":  # pale bluish mucin pools around the tumour cell clusters
            mucin = 0.7 * (1 - nest)
            lumen = np.maximum(lumen, mucin)
    chromatin = 1 + (0.22 if label else 0.1) * (2 * _noise(rng, h, w, 1.2 * unit) - 1)
    e = _stroma(rng, w, h, theta, unit) * (1 - 0.93 * lumen) * (1 - 0.45 * np.minimum(1, 3 * nuclei)) + 0.3 * cyto
    hem = (0.12 * cyto + patient.tint) * (1 - lumen) + 0.2 * mucin + _H_MAX * nuclei * chromatin
    od = np.stack([hem, e], axis=-1) @ np.stack([patient.h_od, patient.e_od])  # Beer-Lambert: OD adds up
    rgb = 255 * np.exp(-od) + 2.5 * rng.standard_normal((h, w, 1), dtype=np.float32)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(0.7 * math.sqrt(px)))


def _noise(rng: np.random.Generator, h: int, w: int, cell: float, cell_w: float | None = None) -> np.ndarray:
    """Smooth value noise in about [0, 1] with features about ``cell`` (by ``cell_w``) pixels."""
    small = rng.random((int(h / cell) + 2, int(w / (cell_w or cell)) + 2), dtype=np.float32)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC), np.float32)


def _stroma(rng: np.random.Generator, w: int, h: int, theta: float, unit: float) -> np.ndarray:
    """Eosin density of collagen: thin wavy fibres running along ``theta``, with patchy intensity."""
    y, x = np.ogrid[0:h, 0:w]
    across = y * math.cos(theta) - x * math.sin(theta) + _noise(rng, h, w, 14 * unit) * 8 * unit
    knots = np.arange(-w - h - 2, w + h + 10 * unit, 1.5 * unit)
    fibres = np.interp(across, knots, rng.random(knots.size)).astype(np.float32)
    return 0.55 + 0.7 * fibres**2 * _noise(rng, h, w, 8 * unit) + 0.3 * _noise(rng, h, w, 30 * unit)


def _blobs(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    x: Any,
    y: Any,
    rx: Any,
    ry: Any,
    angle: Any,
    jitter: float,
    darkness: Any,
    n: int = 10,
) -> None:
    """Draw rotated ellipses with jittered outlines (arguments are arrays or scalars, pixel units)."""
    x, y, rx, ry, angle, darkness = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(a, float)) for a in (x, y, rx, ry, angle, darkness))
    )
    if x.size == 0:
        return
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    r = 1 + jitter * rng.uniform(-1, 1, (len(x), n))
    dx, dy = rx[:, None] * r * np.cos(t), ry[:, None] * r * np.sin(t)
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    points = np.stack([x[:, None] + c * dx - s * dy, y[:, None] + s * dx + c * dy], axis=-1) * _SS
    fills = np.minimum(255, np.round(255 * darkness / _H_MAX)).astype(int).tolist()
    for polygon, fill in zip(points.reshape(len(x), -1).tolist(), fills):
        draw.polygon(polygon, fill=fill)


def _draw_spaces(draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, unit: float, n: int) -> None:
    """Pale empty spaces (fat, tears) in the stroma."""
    r = rng.uniform(5, 13, n) * unit
    _blobs(
        draw,
        rng,
        rng.uniform(0, w, n),
        rng.uniform(0, h, n),
        r,
        r * rng.uniform(0.6, 1, n),
        rng.uniform(0, math.pi, n),
        0.2,
        _H_MAX,
        12,
    )


def _draw_fibroblasts(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, unit: float, theta: float, n: int
) -> None:
    """Thin spindle-shaped stromal nuclei lying along the fibres."""
    _blobs(
        draw,
        rng,
        rng.uniform(0, w, n),
        rng.uniform(0, h, n),
        4 * unit,
        unit,
        theta + rng.normal(0, 0.3, n),
        0.1,
        rng.uniform(0.8, 1.0, n),
        8,
    )


_GLANDS = {"A": (7, 0.6, 1.0), "F": (4, 0.15, 0.4), "PT": (3, 0.12, 0.3), "TA": (10, 0.7, 1.0)}


def _draw_glands(
    draw: dict[str, ImageDraw.ImageDraw],
    rng: np.random.Generator,
    w: int,
    h: int,
    unit: float,
    patient: Patient,
    area: float,
) -> None:
    """Benign: lumens lined by one row of small round epithelial nuclei and flat myoepithelial ones."""
    count, lo, hi = _GLANDS[patient.tumour]
    wanted, glands, r = max(1, round(count * area * patient.density)), [], 2.0 * unit
    for _ in range(4 * wanted + 8):
        a = rng.uniform(6, 14) * unit
        cx, cy = rng.uniform(-a / 2, w + a / 2), rng.uniform(-a / 2, h + a / 2)
        if len(glands) < wanted and all(math.hypot(cx - g[0], cy - g[1]) > 0.9 * (a + g[2]) + 6 * r for g in glands):
            glands.append((cx, cy, a, a * rng.uniform(lo, hi), rng.uniform(0, math.pi)))
    cx, cy, a, b, angle = np.array(glands).T
    _blobs(draw["cyto"], rng, cx, cy, a + 3 * r, b + 3 * r, angle, 0.04, _H_MAX, 24)
    _blobs(draw["lumen"], rng, cx, cy, a, b, angle, 0.06, _H_MAX, 24)
    for offset, spacing, shape, darkness in ((1.3, 2.6, (1.1, 0.85), 0.9), (3.1, 6.0, (0.5, 1.3), 1.0)):
        x, y, normal = np.concatenate(
            [_ring(rng, g[:2] + (g[2] + offset * r, g[3] + offset * r, g[4]), spacing * r) for g in glands], axis=1
        )
        x, y = x + rng.normal(0, 0.15 * r, x.size), y + rng.normal(0, 0.15 * r, x.size)
        _blobs(
            draw["nuclei"],
            rng,
            x,
            y,
            shape[0] * r,
            shape[1] * r,
            normal,
            0.06,
            darkness * rng.uniform(0.9, 1.1, x.size),
            10,
        )


def _ring(rng: np.random.Generator, ellipse: tuple[float, ...], spacing: float) -> np.ndarray:
    """Points evenly spaced (by arc length) on a rotated ellipse: rows x, y and outward normal angle."""
    cx, cy, a, b, angle = ellipse
    t = np.linspace(0, 2 * math.pi, 64)
    arc = np.concatenate([[0], np.cumsum(np.hypot(np.diff(a * np.cos(t)), np.diff(b * np.sin(t))))])
    n = max(3, int(arc[-1] / spacing))
    ts = np.interp((np.arange(n) + rng.uniform(0, 1)) * arc[-1] / n, arc, t)
    x, y, c, s = a * np.cos(ts), b * np.sin(ts), math.cos(angle), math.sin(angle)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y, angle + np.arctan2(a * np.sin(ts), b * np.cos(ts))])


def _draw_carcinoma(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, unit: float, theta: float, patient: Patient
) -> np.ndarray:
    """Malignant: big, dark, irregular, crowded nuclei in disordered sheets; returns the tumour-nest mask."""
    r = 4.4 * unit
    nest = _noise(rng, h, w, 30 * unit)
    cover = {"MC": (0.35, 0.6), "LC": (0.6, 0.9)}.get(patient.tumour, (0.5, 0.85))  # fraction of tumour nests
    cut = np.quantile(nest, 1 - rng.uniform(*cover))
    spacing = (2.4, 3.0) if patient.tumour == "LC" else (2.25, 2.25)  # LC: cells in single files
    along, across = np.array(spacing) * r / math.sqrt(patient.density)
    half = math.hypot(w, h) / 2
    v, u = np.meshgrid(np.arange(-half, half, across), np.arange(-half, half, along), indexing="ij")
    u, v = u.ravel() + rng.normal(0, 0.35 * along, u.size), v.ravel() + rng.normal(0, 0.3 * across, v.size)
    x = w / 2 + math.cos(theta) * u - math.sin(theta) * v
    y = h / 2 + math.sin(theta) * u + math.cos(theta) * v
    inside = (x > -r) & (x < w + r) & (y > -r) & (y < h + r)
    x, y = x[inside], y[inside]
    keep = nest[np.clip(y, 0, h - 1).astype(int), np.clip(x, 0, w - 1).astype(int)] >= cut
    x, y, k = x[keep], y[keep], int(keep.sum())
    size = r * np.exp(rng.normal(0, 0.28, k))
    _blobs(
        draw,
        rng,
        x,
        y,
        size * rng.uniform(0.8, 1.25, k),
        size * rng.uniform(0.7, 1.0, k),
        rng.uniform(0, math.pi, k),
        0.2,
        1.35 * rng.uniform(0.85, 1.15, k),
        9,
    )
    nucleoli = rng.random(k) < 0.4
    _blobs(draw, rng, x[nucleoli], y[nucleoli], 0.3 * size[nucleoli], 0.3 * size[nucleoli], 0, 0.1, _H_MAX, 6)
    return np.clip((nest - cut) / 0.04, 0, 1)
