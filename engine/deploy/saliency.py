"""Attribution maps as plain arrays (torch-free): what a map shows, how two maps compare, and the sanity check.

Every method (``engine.deploy.occlusion``, ``engine.explain``) returns a raw (H, W) float map at the model's input
size; here it is scaled for display (``display_map``: its positive part, 1 at its 99th percentile), coloured over
the image (``heat_rgba``, ``overlay``), and compared with another map: the Spearman rank correlation (ranks written
with numpy: the Diagnose edition ships without SciPy), the overlap of the two maps' top pixels, the centre of the
map's mass and the share of the mass that moved (``compare_maps``).

The sanity check is Adebayo et al., *Sanity Checks for Saliency Maps* (NeurIPS 2018): the same method on the model
with its weights randomised must give a clearly different map; a map that survives the randomisation shows the
image (edges, contrast), not what the model learned. ``sanity_check`` calls a rank correlation above
``SANITY_THRESHOLD`` a failure.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

SANITY_THRESHOLD = 0.5
TOP_FRACTION = 0.1  # the "most important" pixels of a map: its top 10 %
# transparent -> yellow -> orange -> dark red (ColorBrewer YlOrRd): readable over pink and purple H&E
HEAT = np.array([[255, 237, 160], [254, 178, 76], [240, 59, 32], [128, 0, 38]], np.float32)
# attention lost (blue) / gained (red) where an attack moved it
DIVERGING = np.array([[33, 102, 172], [247, 247, 247], [178, 24, 43]], np.float32)


def rankdata(values: np.ndarray) -> np.ndarray:
    """1-based ranks of the flattened ``values``, ties given their average rank (SciPy's 'average' method)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(x, kind="mergesort")
    inverse = np.empty(len(x), np.intp)
    inverse[order] = np.arange(len(x))
    ordered = x[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]] if len(x) else np.zeros(0, bool)
    dense = np.cumsum(starts)[inverse]  # 1-based index of each value's group of ties
    bounds = np.r_[np.flatnonzero(starts), len(x)]
    return 0.5 * (bounds[dense] + bounds[dense - 1] + 1)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps of the same shape. A flat map has no order: 0 against a map that
    has one (nothing in common), 1 against another flat map (the same map)."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"maps of different sizes: {a.size} and {b.size} values")
    flat_a, flat_b = _flat(a), _flat(b)
    if flat_a or flat_b:
        return 1.0 if flat_a and flat_b else 0.0
    ra, rb = rankdata(a), rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float(np.clip((ra @ rb) / np.sqrt((ra @ ra) * (rb @ rb)), -1.0, 1.0))


def _flat(m: np.ndarray) -> bool:
    """No order to rank: empty, or equal up to float rounding (a map upsampled from one cell differs by 1e-7)."""
    return not m.size or float(np.ptp(m)) <= 1e-5 * max(float(np.abs(m).max()), 1e-12)


def display_map(raw: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1]: the map's positive part (the evidence for the call), 1 at its 99th percentile, so that a
    few extreme pixels do not leave the rest of the map dark. All zeros when nothing is positive."""
    pos = np.clip(np.nan_to_num(np.asarray(raw, np.float32)), 0, None)
    top = float(np.percentile(pos[pos > 0], 99)) if np.any(pos > 0) else 0.0
    return np.clip(pos / top, 0, 1).astype(np.float32) if top > 0 else np.zeros_like(pos)


def _ramp(values: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """[0, 1] -> RGB float, piecewise linear through evenly spaced ``anchors``."""
    pos = np.clip(values, 0, 1) * (len(anchors) - 1)
    low = np.minimum(pos.astype(np.intp), len(anchors) - 2)
    frac = (pos - low)[..., None]
    return anchors[low] * (1 - frac) + anchors[low + 1] * frac


def heat_rgba(shown: np.ndarray) -> np.ndarray:
    """A display map (``display_map``) as (H, W, 4) uint8: coloured by value, and as opaque as it is strong, so the
    tissue stays visible where the map is weak."""
    shown = np.clip(np.asarray(shown, np.float32), 0, 1)
    alpha = np.clip(shown * 1.5, 0, 1)[..., None] * 255
    return np.concatenate([_ramp(shown, HEAT), alpha], axis=-1).round().astype(np.uint8)


def difference_rgba(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Where attention was lost (blue) and gained (red) between two display maps; (H, W, 4) uint8, as opaque as the
    change is large (the image shows where the map did not change)."""
    diff = np.clip(np.asarray(after, np.float32) - np.asarray(before, np.float32), -1, 1)
    alpha = np.clip(np.abs(diff) * 2, 0, 1)[..., None] * 255
    return np.concatenate([_ramp((diff + 1) / 2, DIVERGING), alpha], axis=-1).round().astype(np.uint8)


def overlay(image: np.ndarray, rgba: np.ndarray, opacity: float = 0.6) -> np.ndarray:
    """``rgba`` laid over the (H, W, 3) uint8 ``image`` at ``opacity`` (times each pixel's own alpha)."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255 * float(np.clip(opacity, 0, 1))
    out = image.astype(np.float32) * (1 - alpha) + rgba[..., :3].astype(np.float32) * alpha
    return out.round().astype(np.uint8)


def overlay_png(image: np.ndarray, shown: np.ndarray, opacity: float = 0.6, min_side: int = 256) -> bytes:
    """The map over the image as PNG bytes, enlarged (nearest neighbour: pixels stay visible) to ``min_side``."""
    picture = Image.fromarray(overlay(image, heat_rgba(shown), opacity))
    scale = max(1, -(-min_side // max(picture.size)))
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def top_mask(shown: np.ndarray, fraction: float = TOP_FRACTION) -> np.ndarray:
    """The ``fraction`` of pixels where the map is strongest (ties at the cut are kept)."""
    flat = np.asarray(shown, np.float32).ravel()
    k = max(1, int(round(fraction * flat.size)))
    cut = np.partition(flat, flat.size - k)[flat.size - k]
    return (np.asarray(shown) >= cut) & (np.asarray(shown) > 0)


def centre_of_mass(shown: np.ndarray) -> tuple[float, float] | None:
    """(x, y) in pixels of the map's mass; None for an empty map."""
    m = np.clip(np.asarray(shown, np.float64), 0, None)
    total = m.sum()
    if total <= 0:
        return None
    ys, xs = np.indices(m.shape)
    return float((xs * m).sum() / total), float((ys * m).sum() / total)


def compare_maps(before: np.ndarray, after: np.ndarray) -> dict:
    """How ``after`` differs from ``before`` (raw maps of one image, e.g. original and adversarial; the mass is their
    positive part):
    rank_correlation (Spearman), top_overlap (intersection over union of their top 10 % pixels), mass_moved (the
    share of the map's mass that changed place: half the L1 distance of the two maps scaled to sum 1), the centres
    of mass (x, y) and how far it moved (pixels), and the 4 x 4 cells that lost and gained the most mass."""
    a, b = np.asarray(before, np.float64), np.asarray(after, np.float64)
    ta, tb = top_mask(a), top_mask(b)
    union = int((ta | tb).sum())
    na, nb = _unit(a), _unit(b)
    ca, cb = centre_of_mass(a), centre_of_mass(b)
    shift = None if ca is None or cb is None else float(np.hypot(cb[0] - ca[0], cb[1] - ca[1]))
    lost, gained = _cells(nb - na) if na is not None and nb is not None else (None, None)
    return {
        "rank_correlation": spearman(a, b),
        "top_overlap": float((ta & tb).sum() / union) if union else 1.0,
        "mass_moved": float(0.5 * np.abs(na - nb).sum()) if na is not None and nb is not None else None,
        "centre_before": ca,
        "centre_after": cb,
        "centre_shift_px": shift,
        "cell_lost": lost,
        "cell_gained": gained,
    }


def _unit(m: np.ndarray) -> np.ndarray | None:
    m = np.clip(m, 0, None)
    total = m.sum()
    return m / total if total > 0 else None


def _cells(diff: np.ndarray, grid: int = 4) -> tuple[dict, dict]:
    """The grid cells with the largest loss and gain of mass: {"row", "col", "x", "y", "width", "height", "mass"}."""
    rows = np.array_split(np.arange(diff.shape[0]), grid)
    cols = np.array_split(np.arange(diff.shape[1]), grid)
    cells = [
        {"row": i, "col": j, "x": int(c[0]), "y": int(r[0]), "width": len(c), "height": len(r),
         "mass": float(diff[r[0] : r[-1] + 1, c[0] : c[-1] + 1].sum())}
        for i, r in enumerate(rows) for j, c in enumerate(cols) if len(r) and len(c)
    ]  # fmt: skip
    return min(cells, key=lambda c: c["mass"]), max(cells, key=lambda c: c["mass"])


def sanity_check(raw: np.ndarray, randomised: np.ndarray, threshold: float = SANITY_THRESHOLD) -> dict:
    """Adebayo et al.'s model-randomisation test: the rank correlation of the map with the map of the randomised
    model, and whether it stays at or below ``threshold`` (passed)."""
    rho = spearman(raw, randomised)
    if _flat(np.asarray(raw, np.float64).ravel()):  # nothing to rank: a flat map would "pass" against anything
        return {"rank_correlation": rho, "threshold": float(threshold), "passed": False, "inconclusive": True}
    return {"rank_correlation": rho, "threshold": float(threshold), "passed": bool(rho <= threshold)}


def sanity_text(sanity: dict | None) -> str:
    """'passes the randomisation check (rank correlation 0.12 with a randomised model)', or why it fails."""
    if not sanity:
        return "randomisation check not run"
    rho, limit = sanity["rank_correlation"], sanity["threshold"]
    if sanity.get("inconclusive"):
        return "randomisation check inconclusive: the map is flat (no evidence to rank), so it shows nothing learned"
    if sanity["passed"]:
        return f"passes the randomisation check (rank correlation {rho:.2f} with a randomised model, <= {limit:g})"
    return (
        f"FAILS the randomisation check: rank correlation {rho:.2f} with a randomised model (> {limit:g}); "
        "the map shows the image more than what the model learned"
    )


def attention_moved(cmp: dict) -> bool:
    """The map changed place (``compare_maps``' result): its order across the pixels changed (rank correlation below
    0.5), or most of its top 10 % pixels are new (overlap below 0.5), or most of its mass moved."""
    mass = cmp["mass_moved"]
    return cmp["rank_correlation"] < 0.5 or cmp["top_overlap"] < 0.5 or (mass is not None and mass > 0.5)


def moved_text(cmp: dict) -> str:
    """The attack's effect on the map in one sentence."""
    rho, overlap = cmp["rank_correlation"], cmp["top_overlap"]
    parts = [f"rank correlation {rho:.2f}", f"top-10% overlap {overlap:.0%}"]
    if cmp["mass_moved"] is not None:
        parts.append(f"{cmp['mass_moved']:.0%} of the map's mass moved")
    if cmp["centre_shift_px"] is not None:
        (x0, y0), (x1, y1) = cmp["centre_before"], cmp["centre_after"]
        parts.append(f"its centre moved {cmp['centre_shift_px']:.1f} px, ({x0:.0f}, {y0:.0f}) -> ({x1:.0f}, {y1:.0f})")
    verdict = "the attack moved the model's attention" if attention_moved(cmp) else "the attention stayed in place"
    return f"{verdict}: {'; '.join(parts)}"
