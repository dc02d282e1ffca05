"""How the SYNTHETIC demo tissue is drawn: a Beer-Lambert stain model (haematoxylin for nuclei, eosin for
stroma) over random glands, nuclei and fibres, seen through a simulated scanner. Not real tissue
(``engine.data.demo`` writes the set).

The two classes overlap the way real slides do, so a model cannot score perfectly:

- morphology is a continuum: every epithelium has a nuclear grade (``atypia``, 0 bland to 1 pleomorphic)
  that sets nuclear size, darkness, pleomorphism, nucleoli and crowding. Benign patients are mostly low
  grade but some have epithelial hyperplasia (solid nests of bland cells); carcinomas are mostly high grade
  but low-grade ones form tubules and some fields hold little tumour;
- each patient's lab and scanner differ: stain strength and hue, haematoxylin taken up by the stroma, the
  white balance of the glass, focus, noise and JPEG compression;
- each field differs: section thickness, focus (some fields are clearly out of focus) and magnification
  (nuclei at 400X look as big as larger nuclei at 40X).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

_MAG_SCALE = {40: 1.0, 100: 1.2, 200: 1.45, 400: 1.75}
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
    atypia: float  # nuclear grade of the epithelium, 0 bland .. 1 pleomorphic (the classes overlap)
    nests: float  # benign: share of fields with hyperplasia; malignant: share of tumour-rich fields
    tubules: float  # malignant: share of fields where the tumour forms tubules (low grade)
    glass: np.ndarray  # the scanner's white balance: RGB of empty glass, 0..1
    blur: float  # the scanner's focus blur (sigma, base pixels)
    noise: float  # sensor noise (grey levels)
    jpeg: int  # JPEG quality of the scanner's tiles (0 = stored losslessly)


def make_patient(seed: int, label: int, patient: int, tumours: tuple[str, ...]) -> Patient:
    """Per-patient biology and 'lab': grade, stain strength and hue, scanner, how dense the tissue is."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, label, patient, 0]))
    strength = rng.uniform(0.6, 1.5)  # whole-slide staining strength, shared by both stains
    h_od = _H_OD * strength * rng.uniform(0.8, 1.25) * (1 + rng.normal(0, 0.1, 3))
    e_od = _E_OD * strength * rng.uniform(0.75, 1.3) * (1 + rng.normal(0, 0.12, 3))
    tumour = tumours[patient % len(tumours)]
    low = 0.5 * rng.beta(1.6, 3.0)  # benign grades pile up near 0, carcinomas near 1; the tails meet
    atypia = low if label == 0 else 1 - low
    return Patient(
        tumour=tumour,
        h_od=np.maximum(h_od, 0.02).astype(np.float32),
        e_od=np.maximum(e_od, 0.01).astype(np.float32),
        density=float(rng.uniform(0.8, 1.25)),
        tint=float(rng.uniform(0.0, 0.25)),
        atypia=float(atypia),
        nests=float(rng.uniform(0.0, 0.45) if label == 0 else rng.uniform(0.5, 1.0)),
        tubules=0.0 if label == 0 or tumour == "LC" else float(np.clip(1.1 * (1 - atypia) - 0.1, 0, 0.6)),
        glass=(rng.uniform(0.93, 1.0) * (1 - rng.uniform(0, 0.06, 3))).astype(np.float32),
        blur=float(rng.uniform(0.4, 1.1)),
        noise=float(rng.uniform(1.5, 4.5)),
        jpeg=0 if rng.random() < 0.35 else int(rng.integers(50, 93)),
    )


def one_lab(patient: Patient) -> Patient:
    """``patient``'s tissue stained and scanned by one mid-range lab and scanner: all the patches of one slide
    (engine.data.demo_slide) come from one lab, whichever patient's biology they show."""
    return replace(
        patient,
        h_od=_H_OD.astype(np.float32),
        e_od=_E_OD.astype(np.float32),
        tint=0.08,
        glass=np.ones(3, np.float32),
        blur=0.6,
        noise=2.5,
        jpeg=0,
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
    grade = float(np.clip(patient.atypia + rng.normal(0, 0.08), 0, 1))
    _draw_spaces(draw["lumen"], rng, w, h, unit, int(rng.integers(0, 2 if label else 4)))
    _draw_fibroblasts(draw["nuclei"], rng, w, h, unit, theta, int(12 * area * patient.density))
    nest = _draw_epithelium(draw, rng, w, h, unit, theta, area, patient, label, grade)
    lumen, cyto, nuclei = (
        np.asarray(layers[k].resize((w, h), Image.BOX), np.float32) / 255 for k in ("lumen", "cyto", "nuclei")
    )
    mucin = 0.0
    if nest is not None:
        cyto = np.maximum(cyto, nest)
        if patient.tumour == "MC":  # pale bluish mucin pools around the tumour cell clusters
            mucin = 0.7 * (1 - nest)
            lumen = np.maximum(lumen, mucin)
    chromatin = 1 + (0.08 + 0.16 * grade) * (2 * _noise(rng, h, w, 1.2 * unit) - 1)
    e = _stroma(rng, w, h, theta, unit) * (1 - 0.93 * lumen) * (1 - 0.45 * np.minimum(1, 3 * nuclei)) + 0.3 * cyto
    hem = (0.12 * cyto + patient.tint) * (1 - lumen) + 0.2 * mucin + _H_MAX * nuclei * chromatin
    od = np.stack([hem, e], axis=-1) @ np.stack([patient.h_od, patient.e_od])  # Beer-Lambert: OD adds up
    od *= rng.uniform(0.85, 1.15)  # section thickness
    rgb = 255 * patient.glass * np.exp(-od)
    return _scan(rgb, patient, px, rng)


def _draw_epithelium(
    draw: dict[str, ImageDraw.ImageDraw],
    rng: np.random.Generator,
    w: int,
    h: int,
    unit: float,
    theta: float,
    area: float,
    patient: Patient,
    label: int,
    grade: float,
) -> np.ndarray | None:
    """Benign glands, with hyperplasia in some fields; or carcinoma: solid nests, tubules in low-grade tumours,
    little tumour at its edge. Returns the mask of solid nests (None: none drawn)."""
    if label == 0:
        _draw_glands(draw, rng, w, h, unit, patient, area, _GLANDS[patient.tumour], None)
        if rng.random() < patient.nests:  # epithelial hyperplasia: solid nests of bland, crowded cells
            return _draw_nests(draw["nuclei"], rng, w, h, unit, theta, patient, grade, (0.1, 0.4))
        return None
    cover = {"MC": (0.3, 0.6), "LC": (0.5, 0.9)}.get(patient.tumour, (0.45, 0.85))
    if rng.random() < patient.tubules:  # low-grade carcinoma: tubules of atypical cells, smaller nests
        _draw_glands(draw, rng, w, h, unit, patient, area, (8, 0.3, 0.8), grade)
        cover = (0.05, 0.35)
    elif rng.random() > patient.nests:  # the edge of the tumour: mostly stroma
        cover = (0.1, 0.3)
    return _draw_nests(draw["nuclei"], rng, w, h, unit, theta, patient, grade, cover)


def _scan(rgb: np.ndarray, patient: Patient, px: float, rng: np.random.Generator) -> Image.Image:
    """The scanner: optics (anti-aliasing plus this field's focus), sensor noise, JPEG tiles."""
    sigma = patient.blur + abs(rng.normal(0, 0.3))
    if rng.random() < 0.12:  # a field out of focus
        sigma += rng.uniform(0.8, 1.8)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(sigma * px))
    noisy = np.asarray(image, np.float32) + patient.noise * rng.standard_normal((*rgb.shape[:2], 1), np.float32)
    image = Image.fromarray(np.clip(noisy + 0.5, 0, 255).astype(np.uint8))
    if not patient.jpeg:
        return image
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=patient.jpeg)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


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
    shape: tuple[float, float, float],
    grade: float | None,
) -> None:
    """Lumens lined by one row of epithelial nuclei: benign (``grade`` None) small, round and regular, with
    flat myoepithelial nuclei outside; tubules of a carcinoma with nuclei of ``grade`` and no myoepithelium."""
    count, lo, hi = shape
    wanted, glands, r = max(1, round(count * area * patient.density)), [], 2.0 * unit
    for _ in range(4 * wanted + 8):
        a = rng.uniform(6, 14) * unit
        cx, cy = rng.uniform(-a / 2, w + a / 2), rng.uniform(-a / 2, h + a / 2)
        if len(glands) < wanted and all(math.hypot(cx - g[0], cy - g[1]) > 0.9 * (a + g[2]) + 6 * r for g in glands):
            glands.append((cx, cy, a, a * rng.uniform(lo, hi), rng.uniform(0, math.pi)))
    cx, cy, a, b, angle = np.array(glands).T
    _blobs(draw["cyto"], rng, cx, cy, a + 3 * r, b + 3 * r, angle, 0.04, _H_MAX, 24)
    _blobs(draw["lumen"], rng, cx, cy, a, b, angle, 0.06, _H_MAX, 24)
    rows = [(1.3, 2.6, (1.1, 0.85), 0.9, 0.06, 0.1)]  # offset, spacing, shape, darkness, jitter, size sd
    if grade is None:
        rows.append((3.1, 6.0, (0.5, 1.3), 1.0, 0.06, 0.1))  # myoepithelial layer
    else:
        nuc = _grade(grade)
        rows = [(1.3, 2.6, (nuc["r"] / 2.0, 0.8 * nuc["r"] / 2.0), nuc["dark"], nuc["jitter"], nuc["sd"])]
    for offset, spacing, (sx, sy), darkness, jitter, sd in rows:
        x, y, normal = np.concatenate(
            [_ring(rng, g[:2] + (g[2] + offset * r, g[3] + offset * r, g[4]), spacing * r) for g in glands], axis=1
        )
        x, y = x + rng.normal(0, 0.15 * r, x.size), y + rng.normal(0, 0.15 * r, x.size)
        scale = np.exp(rng.normal(0, sd, x.size))
        _blobs(
            draw["nuclei"],
            rng,
            x,
            y,
            sx * r * scale,
            sy * r * scale,
            normal,
            jitter,
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


def _grade(grade: float) -> dict[str, float]:
    """Nuclei of an epithelium of ``grade`` (0 bland .. 1 pleomorphic), sizes in base pixels: radius, darkness,
    size spread (log sd), outline jitter, share with a nucleolus, spacing in radii (crowding)."""
    return {
        "r": 2.3 + 2.2 * grade,
        "dark": 0.95 + 0.45 * grade,
        "sd": 0.08 + 0.22 * grade,
        "jitter": 0.05 + 0.16 * grade,
        "nucleoli": max(0.0, 0.55 * grade - 0.1),
        "spacing": 2.5 - 0.3 * grade,
    }


def _draw_nests(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    w: int,
    h: int,
    unit: float,
    theta: float,
    patient: Patient,
    grade: float,
    cover: tuple[float, float],
) -> np.ndarray:
    """Solid sheets of epithelial cells covering a ``cover`` fraction of the field, nuclei of ``grade``
    (carcinoma, or bland hyperplasia); returns the nest mask."""
    nuc = _grade(grade)
    r = nuc["r"] * unit
    nest = _noise(rng, h, w, 30 * unit)
    cut = np.quantile(nest, 1 - rng.uniform(*cover))
    ratio = 1.3 if patient.tumour == "LC" else 1.0  # LC: cells in single files
    along, across = nuc["spacing"] * r * np.array([ratio, 1.0]) / math.sqrt(patient.density)
    half = math.hypot(w, h) / 2
    v, u = np.meshgrid(np.arange(-half, half, across), np.arange(-half, half, along), indexing="ij")
    u, v = u.ravel() + rng.normal(0, 0.35 * along, u.size), v.ravel() + rng.normal(0, 0.3 * across, v.size)
    x = w / 2 + math.cos(theta) * u - math.sin(theta) * v
    y = h / 2 + math.sin(theta) * u + math.cos(theta) * v
    inside = (x > -r) & (x < w + r) & (y > -r) & (y < h + r)
    x, y = x[inside], y[inside]
    keep = nest[np.clip(y, 0, h - 1).astype(int), np.clip(x, 0, w - 1).astype(int)] >= cut
    x, y, k = x[keep], y[keep], int(keep.sum())
    size = r * np.exp(rng.normal(0, nuc["sd"], k))
    _blobs(
        draw,
        rng,
        x,
        y,
        size * rng.uniform(0.8, 1.25, k),
        size * rng.uniform(0.7, 1.0, k),
        rng.uniform(0, math.pi, k),
        nuc["jitter"],
        nuc["dark"] * rng.uniform(0.85, 1.15, k),
        9,
    )
    nucleoli = rng.random(k) < nuc["nucleoli"]
    _blobs(draw, rng, x[nucleoli], y[nucleoli], 0.3 * size[nucleoli], 0.3 * size[nucleoli], 0, 0.1, _H_MAX, 6)
    return np.clip((nest - cut) / 0.04, 0, 1)
