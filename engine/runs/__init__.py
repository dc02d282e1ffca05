"""The run folder, HistoGuard's on-disk contract (``folder``), its writer's lock (``lock``) and log (``log``), and
the labelled images a run's split or a dataset gives an evaluation (``images``). Torch-free."""
