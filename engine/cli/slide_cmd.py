"""``histoguard slide``: a whole-slide image predicted tile by tile (heatmap, tiles CSV, QuPath GeoJSON,
slide.json), optionally with overlapping tiles, test-time augmentation and the robustness map."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine import api
from engine.cli.text import fmt
from engine.core.config import AttackConfig
from engine.slides.grid import MAX_OVERLAP
from engine.slides.tta import TTA_MODES


def _overlap(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a fraction of a tile, e.g. 0.5") from None
    if not 0.0 <= value <= MAX_OVERLAP:
        raise argparse.ArgumentTypeError(f"{value:g} is outside 0..{MAX_OVERLAP:g} (0: side by side, 0.5: half a tile)")
    return value


def add_tile_options(p: argparse.ArgumentParser) -> None:
    """The ``slide`` options that decide how tiles are laid out and looked at."""
    p.add_argument(
        "--overlap", type=_overlap, default=0.0, metavar="FRACTION",
        help="fraction of a tile that neighbouring tiles share (default 0: side by side). 0.5 puts a tile every half "
        "tile (about 4x the tiles); the heatmap then has half-tile cells, each the mean of the tiles over it",
    )  # fmt: skip
    p.add_argument(
        "--tta", choices=TTA_MODES, default="none",
        help="test-time augmentation: average each tile's probabilities over its 4 flips ('flips') or its 8 flips "
        "and 90-degree turns ('d4'); that many times the inference (default none)",
    )  # fmt: skip


def cmd_slide(a, progress) -> int:
    from engine.core.edition import DIAGNOSE, edition, needs_full_edition
    from engine.core.errors import ConfigError
    from engine.slides.export import robustness_record

    if a.robustness != "none" and edition() == DIAGNOSE:  # before the prediction, not after it
        raise ConfigError(needs_full_edition(f"`histoguard slide --robustness {a.robustness}`"))
    attack = AttackConfig(a.robustness, a.max_eps / 255, steps=a.steps) if a.robustness != "none" else None
    pred = api.predict_slide(
        a.slide, a.model, model_mpp=a.model_mpp, slide_mpp=a.slide_mpp, min_tissue=a.min_tissue, overlap=a.overlap,
        tta=a.tta, batch_size=a.batch_size, device=a.device, on_progress=progress,
    )  # fmt: skip
    settings = None
    if attack is not None:
        settings = robustness_record(attack)
        pred.flip_eps = api.slide_robustness(
            a.slide, a.model, pred, attack, limit=a.robust_limit, batch_size=a.batch_size, device=a.device,
            on_progress=progress,
        )  # fmt: skip
    files = api.write_slide_outputs(pred, a.out, a.model, robustness=settings)
    s, info = pred.summary(top=1), pred.info
    mpp = f"{info.mpp[0]:.3f} µm/px" if info.mpp else "no mpp"
    print(f"{Path(a.slide).name}: {info.dimensions[0]} x {info.dimensions[1]} px, {info.level_count} levels, {mpp}")
    print(f"scale: {info.scale.describe()}")
    frac = s["positive_fraction"]
    print(
        f"{s['tissue_tiles']} tissue tiles of {pred.tile_size} px; {s['positive_tiles']} predicted {pred.positive}"
        + (f" ({frac:.1%})" if frac is not None else "")
    )
    if pred.stride or pred.tta != "none":
        print(pred.tiling_text())
    if attack is not None:
        r = s["robustness"]
        at2, at8 = fmt(r["flipped_at_2_255_fraction"], ".1%"), fmt(r["flipped_at_8_255_fraction"], ".1%")
        print(
            f"robustness ({a.robustness.upper()}, up to {a.max_eps}/255) of {r['tiles_computed']} tiles: median flip "
            f"eps {fmt(r['median_flip_eps_255'], 'g')}/255; flipped at <= 2/255: {at2}, at <= 8/255: {at8}; "
            f"not flipped: {r['not_flipped']}"
        )
    print(f"written: {', '.join(str(p) for p in files.values())}")
    return 0
