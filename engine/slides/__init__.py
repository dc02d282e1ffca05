"""Whole-slide images (issue 7): open a slide pyramid, find its tissue, and (later) tile, predict and map it."""

from engine.slides.reader import SlideInfo, open_slide, slide_info
from engine.slides.tissue import otsu_threshold, tissue_mask

__all__ = ["SlideInfo", "open_slide", "otsu_threshold", "slide_info", "tissue_mask"]
