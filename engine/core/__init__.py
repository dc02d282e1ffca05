"""Foundations every layer may use, with no heavy imports (no torch, onnxruntime, scikit-learn, matplotlib):
errors, progress and cancel, configuration, eps, atomic file I/O, process settings, the edition, the catalogue
of attacks, and the metrics."""
