"""Reusable widgets, one per file (image views, heatmaps, curves, progress)."""
