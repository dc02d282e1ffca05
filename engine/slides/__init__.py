"""Whole-slide images, torch-free: open a slide pyramid (reader), find its tissue (tissue), tile it at the model's
scale (grid), predict it tile by tile with ONNX (predict) and write heatmaps, CSV and QuPath GeoJSON (export).
The robustness map, a white-box attack, is ``engine.workflows.slide_robustness`` (full edition)."""

from engine.slides.reader import SlideInfo, open_slide, slide_info
from engine.slides.tissue import otsu_threshold, tissue_mask

__all__ = ["SlideInfo", "open_slide", "otsu_threshold", "slide_info", "tissue_mask"]
