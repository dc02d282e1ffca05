"""Whole-slide images: open a slide pyramid (reader), find its tissue (tissue), tile it at the model's scale
(grid), predict it tile by tile with ONNX (predict), map how easily each tile's call flips (robust, needs
torch) and write heatmaps, CSV and QuPath GeoJSON (export)."""

from engine.slides.reader import SlideInfo, open_slide, slide_info
from engine.slides.tissue import otsu_threshold, tissue_mask

__all__ = ["SlideInfo", "open_slide", "otsu_threshold", "slide_info", "tissue_mask"]
