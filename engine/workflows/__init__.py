"""What the CLI commands and the app's tasks run in the full edition (PyTorch): the study's experiment, training
one model, evaluating and exporting a checkpoint, white-box attacks of images and sets, the slide robustness
map, and writing a run's report. Each takes its settings as the frozen configs of ``engine.core.config``,
reports progress and honours cancel. The torch-free counterparts (prediction, the black-box attack, INT8) are
in ``engine.deploy``."""
