"""A small SYNTHETIC H&E-like dataset in the BreakHis layout, so HistoGuard can be tried without real data.

Images are drawn from random numbers with a Beer-Lambert stain model (haematoxylin for nuclei, eosin for
stroma). They are not real tissue and must never be used for diagnosis or to judge real performance.
Benign images show small regular nuclei lining gland lumens; malignant ones show large, dark, crowded,
irregular nuclei. File names follow BreakHis (``SOB_B_A-99-9001-40-001.png``); year ``99`` marks them
as synthetic, and the marker file ``DEMO_MARKER`` at the root records the generator parameters.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from PIL.PngImagePlugin import PngInfo

from engine.core.errors import DataError
from engine.core.fileio import write_text
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report

log = logging.getLogger(__name__)

DEMO_MARKER = "HISTOGUARD_SYNTHETIC_DEMO.txt"
PNG_COMMENT = "SYNTHETIC HistoGuard demo image - not real tissue"
GENERATOR_VERSION = 1
MAGNIFICATIONS = (40, 100, 200, 400)
_MAG_SCALE = {40: 1.0, 100: 1.15, 200: 1.3, 400: 1.5}
_CLASSES = (("benign", "B", ("A", "F", "PT", "TA")), ("malignant", "M", ("DC", "LC", "MC", "PC")))
_BASE = (175, 115)  # structure sizes below are in pixels of an image this size
_SS = 2  # shapes are drawn at twice the size, then box-filtered down (anti-aliasing)
_E_OD = np.array([0.082, 0.405, 0.243])  # optical density of eosin stroma, RGB ~ (235, 170, 200)
_H_OD = np.array([1.04, 1.45, 0.53])  # haematoxylin OD of a benign nucleus, RGB ~ (90, 60, 150)
_H_MAX = 1.8  # haematoxylin density of a nucleus-layer value of 255
_DEMO_NAME = re.compile(r"^\.?SOB_[BM]_[A-Z]+-99-\d+[A-Z]*-\d+-\d{3}\.png(\.tmp)?$")


@dataclass(frozen=True)
class _Spec:
    label: int  # 0 benign, 1 malignant
    patient: int
    index: int
    magnification: int
    relpath: str


@dataclass(frozen=True)
class _Patient:
    tumour: str
    h_od: np.ndarray
    e_od: np.ndarray
    density: float
    tint: float  # haematoxylin taken up by the stroma (purplish labs)


def generate_demo_dataset(
    out_dir: str | os.PathLike,
    *,
    patients_per_class: int = 12,
    images_per_patient: int = 20,
    image_size: tuple[int, int] = (175, 115),
    seed: int = 0,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Write the synthetic dataset into ``out_dir`` (image_size is width, height) and return its path.

    Same arguments give byte-identical files. A folder that already holds a complete demo with the same
    parameters is returned as it is; a non-empty folder that is not a demo is refused with DataError.
    """
    root = Path(out_dir).expanduser()
    params = _parameters(patients_per_class, images_per_patient, image_size, seed)
    plan = _plan(patients_per_class, images_per_patient)
    if _prepare(root, params, plan):
        log.info("synthetic demo dataset already complete in %s; reusing it", root)
        report(on_progress, "demo data", len(plan), len(plan), unit="images", message="reused existing demo data")
        return root
    _write_marker(root, params, complete=False)
    patients: dict[tuple[int, int], _Patient] = {}
    for done, spec in enumerate(plan):
        check_cancel(cancel, "demo data generation")
        key = (spec.label, spec.patient)
        if key not in patients:
            patients[key] = _make_patient(seed, spec.label, spec.patient)
        rng = np.random.default_rng(np.random.SeedSequence([seed, spec.label, spec.patient, 1, spec.index]))
        _save_png(_render(patients[key], spec, tuple(image_size), rng), root / spec.relpath)
        if done % 16 == 15 or done + 1 == len(plan):
            report(on_progress, "demo data", done + 1, len(plan), unit="images")
    _write_marker(root, params, complete=True)
    log.info("wrote %d synthetic demo images to %s", len(plan), root)
    return root


def demo_patch(label: int, index: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """One SYNTHETIC patch (uint8 H x W x 3) of class ``label`` (0 benign, 1 malignant) at 40X scale, from
    patient ``index % 4`` of that class (the demo slide's tissue, engine.data.demo_slide)."""
    spec = _Spec(label, index % 4, index, 40, "")
    patient = _make_patient(seed, label, index % 4)
    rng = np.random.default_rng(np.random.SeedSequence([seed, label, index, 2]))
    return np.asarray(_render(patient, spec, tuple(size), rng))


def is_synthetic_demo(root: str | os.PathLike) -> bool:
    """True when ``root`` or one of its parents (up to 3 levels up) holds the demo marker file."""
    path = Path(root).expanduser().absolute()
    candidates = [path, *list(path.parents)[:3]]
    return any((folder / DEMO_MARKER).is_file() for folder in candidates)


def _parameters(patients: int, images: int, size: tuple[int, int], seed: int) -> dict[str, Any]:
    if not (isinstance(patients, int) and patients >= 1 and isinstance(images, int) and images >= 1):
        raise DataError("demo data needs patients_per_class >= 1 and images_per_patient >= 1")
    if len(size) != 2 or not all(isinstance(v, int) and 32 <= v <= 4096 for v in size):
        raise DataError(f"demo image_size {size!r} must be (width, height), each 32..4096 pixels")
    if not isinstance(seed, int) or seed < 0:
        raise DataError(f"demo seed {seed!r} must be a non-negative integer")
    return {
        "generator": "HistoGuard engine.data.demo",
        "version": GENERATOR_VERSION,
        "patients_per_class": patients,
        "images_per_patient": images,
        "image_size": [size[0], size[1]],
        "seed": seed,
    }


def _plan(patients: int, images: int) -> list[_Spec]:
    """Every image's name; one benign patient's images are split over slides ``<n>AB`` and ``<n>CD``."""
    plan, split_patient = [], min(2, patients - 1)
    for label, (folder, code, tumours) in enumerate(_CLASSES):
        for p in range(patients):
            slide, seqs = 9001 + label * patients + p, {}
            for i in range(images):
                suffix = ""
                if label == 0 and p == split_patient and images >= 2:
                    suffix = "AB" if i < images // 2 else "CD"
                mag = MAGNIFICATIONS[i % len(MAGNIFICATIONS)]
                seq = seqs[(suffix, mag)] = seqs.get((suffix, mag), 0) + 1
                name = f"SOB_{code}_{tumours[p % len(tumours)]}-99-{slide}{suffix}-{mag}-{seq:03d}.png"
                plan.append(_Spec(label, p, i, mag, f"{folder}/{name}"))
    return plan


def _prepare(root: Path, params: dict[str, Any], plan: list[_Spec]) -> bool:
    """Return True when ``root`` already holds this exact demo; refuse folders that are not demos."""
    if root.exists() and not root.is_dir():
        raise DataError(f"{root} is a file; give a folder (new or empty) for the demo dataset")
    if not root.exists() or not any(root.iterdir()):
        return False
    status, old = _read_marker(root)
    if status is None:
        raise DataError(
            f"{root} is not empty and is not a HistoGuard demo dataset; choose a new or empty "
            "folder for the demo data (nothing was written)"
        )
    if status == "complete" and old == params and all((root / s.relpath).is_file() for s in plan):
        return True
    expected = {s.relpath for s in plan}
    for folder, _, _ in _CLASSES:  # remove our own files left by other parameters or a cancelled run
        for path in (root / folder).glob("*") if (root / folder).is_dir() else []:
            if _DEMO_NAME.match(path.name) and f"{folder}/{path.name}" not in expected:
                path.unlink()
    return False


def _read_marker(root: Path) -> tuple[str | None, Any]:
    try:
        text = (root / DEMO_MARKER).read_text(encoding="utf-8")
    except OSError:
        return None, None
    fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    try:
        return fields.get("status", "unknown"), json.loads(fields.get("parameters", "null"))
    except ValueError:
        return "unknown", None


def _write_marker(root: Path, params: dict[str, Any], *, complete: bool) -> None:
    text = (
        "SYNTHETIC DEMO DATA - NOT REAL TISSUE\n\n"
        "Every image below this folder was generated from random numbers by HistoGuard\n"
        "(engine.data.demo). They are not microscope images of real tissue, hold no patient data,\n"
        "and must never be used for diagnosis or to judge performance on real histopathology.\n\n"
        f"status: {'complete' if complete else 'incomplete'}\n"
        f"parameters: {json.dumps(params, sort_keys=True)}\n"
    )
    write_text(root / DEMO_MARKER, text)


def _save_png(image: Image.Image, path: Path) -> None:
    info = PngInfo()
    info.add_text("Comment", PNG_COMMENT)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(tmp, format="PNG", pnginfo=info, compress_level=1)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"cannot write {path}: {exc.strerror}; free some disk space or choose another folder") from exc


def _make_patient(seed: int, label: int, patient: int) -> _Patient:
    """Per-patient 'lab': stain strength and hue, and how dense the tissue is."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, label, patient, 0]))
    strength = rng.uniform(0.7, 1.45)  # whole-slide staining strength, shared by both stains
    h_od = _H_OD * strength * rng.uniform(0.85, 1.15) * (1 + rng.normal(0, 0.05, 3))
    e_od = _E_OD * strength * rng.uniform(0.8, 1.25) * (1 + rng.normal(0, 0.1, 3))
    tumours = _CLASSES[label][2]
    return _Patient(
        tumours[patient % len(tumours)],
        h_od.astype(np.float32),
        e_od.astype(np.float32),
        float(rng.uniform(0.8, 1.25)),
        float(rng.uniform(0.0, 0.15)),
    )


def _render(patient: _Patient, spec: _Spec, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    w, h = size
    px = min(w / _BASE[0], h / _BASE[1])
    unit = px * _MAG_SCALE[spec.magnification]
    layers = {k: Image.new("L", (w * _SS, h * _SS)) for k in ("lumen", "cyto", "nuclei")}
    draw = {k: ImageDraw.Draw(im) for k, im in layers.items()}
    theta = rng.uniform(0, math.pi)
    area = w * h / (_BASE[0] * _BASE[1]) / unit**2  # field of view relative to a 40X base image
    _draw_spaces(draw["lumen"], rng, w, h, unit, int(rng.integers(0, 2 if spec.label else 4)))
    _draw_fibroblasts(draw["nuclei"], rng, w, h, unit, theta, int(12 * area * patient.density))
    nest = None
    if spec.label == 0:
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
    chromatin = 1 + (0.22 if spec.label else 0.1) * (2 * _noise(rng, h, w, 1.2 * unit) - 1)
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
    patient: _Patient,
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
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, unit: float, theta: float, patient: _Patient
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


def default_demo_dir() -> Path:
    """Where the demo set is generated: $HISTOGUARD_DATA_DIR, else the user's data folder."""
    env = os.environ.get("HISTOGUARD_DATA_DIR")
    base = (
        Path(env) if env else Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "histoguard"
    )
    return base / "demo-synthetic"


def dataset_root(cfg, on_progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Path:
    """The folder (or CSV) a ``DataConfig`` names; for the demo set, generated first (``cfg.data`` or the
    default demo folder)."""
    if not cfg.demo:
        return Path(cfg.data)
    return generate_demo_dataset(
        Path(cfg.data) if cfg.data else default_demo_dir(), on_progress=on_progress, cancel=cancel
    )
