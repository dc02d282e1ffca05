"""Open a whole-slide image with OpenSlide and describe it: size, pyramid levels, microns per pixel.

OpenSlide (``openslide-python`` with the ``openslide-bin`` wheel, so nothing is installed system-wide)
reads the vendor formats (.svs, .ndpi, .mrxs, .scn, ...) and tiled pyramidal TIFFs; a plain PNG/JPEG or
untiled TIFF opens as a one-level slide through OpenSlide's image fallback (Pillow), which decodes it whole,
so such a picture is limited to Pillow's bomb limit (about 179 million pixels) and a bigger one is refused
with the advice to convert it to a tiled pyramid. A pyramid is never read whole: callers ask for regions of
a level (``read_region``) or a thumbnail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from engine.core.errors import SlideError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlideInfo:
    path: str
    vendor: str
    dimensions: tuple[int, int]  # width, height at level 0
    level_dimensions: tuple[tuple[int, int], ...]
    level_downsamples: tuple[float, ...]
    mpp: tuple[float, float] | None  # microns per pixel at level 0 (x, y), None when the file does not say
    objective_power: float | None
    properties: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def level_count(self) -> int:
        return len(self.level_dimensions)


def open_slide(path: str | Path):
    """An ``openslide.OpenSlide`` (or ImageSlide for plain images); SlideError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise SlideError(f"{path}: no such slide file; choose a .svs, .ndpi, .mrxs, .tiff, .png or .jpg file")
    try:
        import openslide
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise SlideError(
            "reading whole slides needs openslide-python and openslide-bin; install them with pip"
        ) from exc
    from PIL import Image

    try:
        return openslide.open_slide(str(path))
    except Image.DecompressionBombError as exc:
        raise SlideError(
            f"{path}: a plain picture this large ({exc}) would be decoded whole into memory; convert it to a tiled "
            "pyramidal TIFF, e.g. `vips tiffsave IN OUT.tif --tile --pyramid --compression jpeg`, and open that"
        ) from exc
    except (openslide.OpenSlideError, OSError, ValueError) as exc:
        raise SlideError(
            f"{path}: not a slide OpenSlide can read ({exc}); convert it to a tiled pyramidal TIFF or check "
            "that the file is complete"
        ) from exc


def slide_info(slide, path: str | Path = "") -> SlideInfo:
    """What the user is shown about a slide: size, levels, mpp and objective power when the file has them."""
    props = dict(slide.properties)
    return SlideInfo(
        path=str(path),
        vendor=props.get("openslide.vendor", "image"),
        dimensions=tuple(slide.dimensions),
        level_dimensions=tuple(tuple(d) for d in slide.level_dimensions),
        level_downsamples=tuple(float(d) for d in slide.level_downsamples),
        mpp=_mpp(props),
        objective_power=_float(props.get("openslide.objective-power")),
        properties=props,
    )


def _mpp(props: dict[str, str]) -> tuple[float, float] | None:
    x, y = _float(props.get("openslide.mpp-x")), _float(props.get("openslide.mpp-y"))
    if x and y and x > 0 and y > 0:
        return x, y
    return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None
